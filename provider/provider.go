// Package provider composes tonearm's OAuth2 / OpenID Connect protocol from
// fosite handlers: authorization code with PKCE, refresh tokens, client
// credentials, introspection, revocation and OpenID Connect ID tokens, with
// RS256 ID tokens and ES256 RFC 9068 JWT access tokens signed by keys from
// provider/keys. HTTP lives in web; this package decides what tokens say.
package provider

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/tonearm-idp/tonearm/provider/clientkeys"
	"github.com/tonearm-idp/tonearm/provider/device"
	"github.com/tonearm-idp/tonearm/provider/dpop"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/provider/keys"
)

// Endpoint paths, relative to the issuer.
const (
	DiscoveryPath  = "/.well-known/openid-configuration"
	JWKSPath       = "/.well-known/jwks.json"
	AuthorizePath  = "/oauth2/authorize"
	TokenPath      = "/oauth2/token"
	UserinfoPath   = "/oauth2/userinfo"
	IntrospectPath = "/oauth2/introspect"
	RevokePath     = "/oauth2/revoke"
	LogoutPath     = "/oauth2/logout"
	PARPath        = "/oauth2/par"
	// DeviceAuthorizationPath starts the Device Authorization Grant;
	// DevicePath is the page where a person enters the user code.
	DeviceAuthorizationPath = "/oauth2/device/auth"
	DevicePath              = "/device"
	// RegisterPath is Dynamic Client Registration (RFC 7591); an app's
	// registration_client_uri (RFC 7592) is RegisterPath/{client_id}.
	RegisterPath = "/oauth2/register"
)

// Lifespans of what the provider issues.
type Lifespans struct {
	AuthorizeCode time.Duration
	AccessToken   time.Duration
	IDToken       time.Duration
	RefreshToken  time.Duration
}

// DefaultLifespans are short for what travels (codes, access and ID tokens)
// and long for the refresh token, which rotates on every use.
var DefaultLifespans = Lifespans{
	AuthorizeCode: 10 * time.Minute,
	AccessToken:   time.Hour,
	IDToken:       time.Hour,
	RefreshToken:  30 * 24 * time.Hour,
}

// MaxSignedLifetime is the longest a token signed by a key stays valid: a
// rotated-out key must stay published at least this long.
func (l Lifespans) MaxSignedLifetime() time.Duration {
	if l.IDToken > l.AccessToken {
		return l.IDToken
	}
	return l.AccessToken
}

// Config wires a Provider.
type Config struct {
	Issuer string
	Store  *fositestore.Adapter
	Keys   *keys.Manager
	// HMACSecret keys authorization codes and refresh tokens (≥ 32 bytes).
	HMACSecret []byte
	// PreviousHMACSecrets are HMACSecret under earlier TONEARM_SECRET
	// values: codes and refresh tokens they keyed still verify.
	PreviousHMACSecrets [][]byte
	SecretsHasher       fosite.Hasher
	Lifespans           Lifespans
	// APIs lists the registered resource servers (nil: only tonearm's own).
	APIs APIDirectory
	// Users reads the accounts whose claims APIs release (nil: none).
	Users UserDirectory
	// Devices, when set, serves the Device Authorization Grant (RFC 8628);
	// it needs Users.
	Devices *device.Codes
	// Registration: discovery names the registration endpoint (RFC 7591
	// dynamic registration is on).
	Registration bool
	// UILocales are the languages of the pages, default first
	// (discovery's ui_locales_supported; nil: not listed).
	UILocales []string
	// ClientKeys verifies what clients sign (nil: a key set over a fetcher
	// that allows loopback only when the issuer is loopback).
	ClientKeys *clientkeys.Keys
	// UsedOnce records the jti of each client assertion across replicas
	// (nil: private_key_jwt is refused).
	UsedOnce OneTimeStore
	// Subjects computes each client's sub for a person (pairwise
	// subjects, see LoadSubjects).
	Subjects *Subjects
	// DPoP checks DPoP proofs (RFC 9449) at the token endpoint and the
	// resources (required).
	DPoP *dpop.Verifier
}

// Provider is the composed protocol.
type Provider struct {
	OAuth2    fosite.OAuth2Provider
	store     *fositestore.Adapter
	idSigner  *Signer
	access    *AccessTokenStrategy
	issuer    string
	apiID     string // tonearm's own API, an audience like any other
	keys      *keys.Manager
	lifespans Lifespans
	apis      APIDirectory
	users     UserDirectory
	disco     discoveryCache
	// registration: discovery names the registration endpoint.
	registration bool
	uiLocales    []string
	clientKeys   *clientkeys.Keys
	scopes       atomic.Pointer[builtIndex]
	devices      *device.Codes
	subjects     *Subjects
	dpop         *dpop.Verifier
}

// PARRequestURIPrefix starts every request_uri of a pushed request.
const PARRequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// New composes the provider.
func New(c Config) (*Provider, error) {
	if c.Store == nil || c.Keys == nil || c.SecretsHasher == nil || len(c.HMACSecret) < 32 || c.Subjects == nil || c.DPoP == nil {
		return nil, errors.New("provider: Store, Keys, SecretsHasher, Subjects, DPoP and a 32-byte HMACSecret are required")
	}
	iss, err := url.Parse(c.Issuer)
	if err != nil || iss.Scheme == "" || iss.Host == "" {
		return nil, errors.New("provider: issuer must be an absolute URL")
	}
	if c.Lifespans == (Lifespans{}) {
		c.Lifespans = DefaultLifespans
	}
	issuer := strings.TrimRight(c.Issuer, "/")
	fc := &fosite.Config{
		AccessTokenLifespan:            c.Lifespans.AccessToken,
		RefreshTokenLifespan:           c.Lifespans.RefreshToken,
		AuthorizeCodeLifespan:          c.Lifespans.AuthorizeCode,
		IDTokenLifespan:                c.Lifespans.IDToken,
		IDTokenIssuer:                  c.Issuer,
		AccessTokenIssuer:              c.Issuer,
		TokenURL:                       issuer + TokenPath,
		GlobalSecret:                   c.HMACSecret[:32],
		RotatedGlobalSecrets:           rotated(c.PreviousHMACSecrets),
		ClientSecretsHasher:            c.SecretsHasher,
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:       acceptGrantedAudience,
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		// No minimum length for nonce (fosite's 0 means 8); fosite's
		// authorization endpoint demands 8 characters of state whatever
		// this says, which web/protocol works around (RFC 6749 sets no
		// minimum; OAuth 2.1 makes state optional with PKCE).
		MinParameterEntropy:        -1,
		RefreshTokenScopes:         []string{"offline_access"},
		SendDebugMessagesToClients: false,
		OmitRedirectScopeParam:     false,
		// Pushed authorization requests (RFC 9126): request_uri values
		// are URNs, short-lived; a client may be registered to require
		// them (checked at the authorization endpoint).
		PushedAuthorizeRequestURIPrefix: PARRequestURIPrefix,
		PushedAuthorizeContextLifespan:  fositestore.PARLifespan,
	}
	idSigner := &Signer{keys: c.Keys, alg: keys.RS256}
	access := &AccessTokenStrategy{
		HMAC:     compose.NewOAuth2HMACStrategy(fc),
		Keys:     c.Keys,
		Issuer:   c.Issuer,
		Lifespan: c.Lifespans.AccessToken,
		Subjects: c.Subjects,
	}
	strategy := &compose.CommonStrategy{
		CoreStrategy:               access,
		OpenIDConnectTokenStrategy: subjectIDTokens{&openid.DefaultStrategy{Signer: idSigner, Config: fc}, c.Subjects},
		Signer:                     idSigner,
	}
	// Order matters: PKCE and OpenID handlers extend the code handler.
	oauth2 := compose.Compose(fc, c.Store, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2PKCEFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.PushedAuthorizeHandlerFactory,
	)
	c.ClientKeys = tokenEndpointOwn(c, oauth2, fc)
	var devices *deviceGrant
	if c.Devices != nil {
		if c.Users == nil {
			return nil, errors.New("provider: the device grant needs Users")
		}
		devices = newDeviceGrant(c.Devices, access, c.Store, strategy.OpenIDConnectTokenStrategy, fc)
		fc.TokenEndpointHandlers = append(fc.TokenEndpointHandlers, devices)
	}
	exchange := newTokenExchange(access, c.Store, fc)
	fc.TokenEndpointHandlers = append(fc.TokenEndpointHandlers, exchange)
	p := &Provider{OAuth2: oauth2, store: c.Store, idSigner: idSigner, access: access, issuer: c.Issuer,
		apiID: APIIdentifier(c.Issuer), keys: c.Keys, lifespans: c.Lifespans, apis: c.APIs, users: c.Users,
		registration: c.Registration, uiLocales: c.UILocales, clientKeys: c.ClientKeys, subjects: c.Subjects, dpop: c.DPoP}
	if p.apis == nil {
		p.apis = builtinOnly{BuiltinAPI(c.Issuer)}
	}
	access.ExtraClaims = p.releasedClaims
	exchange.p = p
	if devices != nil {
		devices.p = p
		p.devices = c.Devices
	}
	if _, err := discoveryDocument(c.Issuer, SupportedScopes, c.Registration, c.UILocales); err != nil {
		return nil, err
	}
	return p, nil
}

// tokenEndpointOwn puts tonearm's own client authentication (private_key_jwt
// with the guarded fetcher) and quiet handlers into fosite's token
// endpoint, and returns the client key sets it uses (c's, or new ones).
func tokenEndpointOwn(c Config, oauth2 fosite.OAuth2Provider, fc *fosite.Config) *clientkeys.Keys {
	keys := c.ClientKeys
	if keys == nil {
		keys = clientkeys.NewKeys(clientkeys.NewFetcher(clientkeys.FetchOptions{AllowLoopbackHTTP: clientkeys.IsLoopbackURL(c.Issuer)}))
	}
	if f, ok := oauth2.(*fosite.Fosite); ok {
		fc.ClientAuthenticationStrategy = clientAuthentication(f, &assertionAuth{
			issuer: c.Issuer, store: c.Store, keys: keys, once: c.UsedOnce, now: time.Now})
	}
	for i, h := range fc.TokenEndpointHandlers {
		fc.TokenEndpointHandlers[i] = quietTokenHandler{h}
	}
	return keys
}

// ConsumePAR ends a pushed authorization request once its interaction has
// ended (a code or an error went back to the client): its request_uri works
// no more.
func (p *Provider) ConsumePAR(ctx context.Context, form url.Values) error {
	uri := form.Get("request_uri")
	if !strings.HasPrefix(uri, PARRequestURIPrefix) {
		return nil
	}
	return p.store.ConsumePARSession(ctx, uri)
}

// NewAuthorizeResponse is fosite's, with the code, its PKCE challenge and
// its OpenID session written together: one commit instead of three (on
// SQLite each commit is a write to the log that every other request waits
// behind), and never a code without its challenge. A code alone (the code
// flow) is collected and written as one statement when fosite is done
// (one round trip instead of five); a hybrid response, which also issues
// tokens, keeps a transaction around all it writes.
func (p *Provider) NewAuthorizeResponse(ctx context.Context, ar fosite.AuthorizeRequester, session fosite.Session) (fosite.AuthorizeResponder, error) {
	p.setClientSubject(session, ar.GetClient())
	if ar.GetResponseTypes().ExactOne("code") {
		cctx := p.store.Collect(ctx)
		resp, err := p.OAuth2.NewAuthorizeResponse(cctx, ar, session)
		if err != nil {
			return nil, err
		}
		if err := p.store.Flush(cctx); err != nil {
			return nil, fosite.ErrServerError.WithWrap(err)
		}
		return resp, nil
	}
	txCtx, err := p.store.BeginTX(ctx)
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err)
	}
	resp, err := p.OAuth2.NewAuthorizeResponse(txCtx, ar, session)
	if err != nil {
		_ = p.store.Rollback(txCtx)
		return nil, err
	}
	if err := p.store.Commit(txCtx); err != nil {
		return nil, fosite.ErrServerError.WithWrap(err)
	}
	return resp, nil
}

// OpenPAR opens the pushed request behind requestURI for the browser that
// brings it first, as clientID. A request_uri pushed by another client is
// refused and left alone (its owner may still use it); one opened before
// is refused: it belongs to the browser that opened it, which proves so
// with its own binding (see web/protocol) and never comes here again.
func (p *Provider) OpenPAR(ctx context.Context, requestURI, clientID string) error {
	ar, err := p.store.GetPARSession(ctx, requestURI)
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		return fosite.ErrInvalidRequestURI.WithHint("The request_uri is unknown or expired.")
	case err != nil:
		// An outage (storage.ErrUnavailable, kept in the chain) is a 503
		// page, not a dead link: the person reloads once it is back.
		return fosite.ErrServerError.WithWrap(err)
	}
	if ar.GetClient() == nil || ar.GetClient().GetID() != clientID {
		return fosite.ErrInvalidRequestURI.WithHint("The request_uri was pushed by another client.")
	}
	switch err := p.store.OpenPARSession(ctx, requestURI); {
	case errors.Is(err, fositestore.ErrPAROpened):
		return fosite.ErrInvalidRequestURI.WithHint("The request_uri was opened in another browser.")
	case errors.Is(err, fosite.ErrNotFound):
		return fosite.ErrInvalidRequestURI.WithHint("The request_uri is unknown or expired.")
	case err != nil:
		return fosite.ErrServerError.WithWrap(err)
	}
	return nil
}

// RefreshClientOnMiss drops clientID from the client cache when its cached
// registration lacks a scope, the redirect URI or the grant type a request
// asks for: the client may have been changed moments ago (by the command
// line, or on another replica), and fosite then reads it afresh instead of
// refusing from a stale copy.
func (p *Provider) RefreshClientOnMiss(ctx context.Context, clientID string, scopes []string, redirectURI, grantType string) {
	if clientID == "" {
		return
	}
	c, err := p.store.GetClient(ctx, clientID)
	if err != nil {
		return // unknown clients are never cached
	}
	// Token exchange is allowed by the target API's policy, not by the
	// client's grant types: its absence there is no sign of a stale copy.
	miss := grantType != "" && grantType != TokenExchangeGrant && !fosite.Arguments(c.GetGrantTypes()).Has(grantType)
	for _, s := range scopes {
		miss = miss || !fosite.Arguments(c.GetScopes()).Has(s)
	}
	if redirectURI != "" && !fosite.Arguments(c.GetRedirectURIs()).Has(redirectURI) {
		miss = true
	}
	if miss {
		p.store.ForgetClient(clientID)
	}
}

// ClientCredentialsScopes is what a client-credentials request without a
// scope is granted: the client's registered scopes but those that need a
// person (RFC 6749 §3.3 lets the server pick a documented default; a token
// with no scope and no audience is good for nothing).
func (p *Provider) ClientCredentialsScopes(ctx context.Context, clientID string) []string {
	c, err := p.store.GetClient(ctx, clientID)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range c.GetScopes() {
		if s != "openid" && s != "offline_access" {
			out = append(out, s)
		}
	}
	return out
}

// SpendCode ends an authorization code whose exchange failed (a wrong or
// missing code_verifier, a wrong redirect_uri…): a code is tried once.
// Without it a client could try again with whatever the first failure
// taught it; RFC 9700 §2.1.1 binds a code to its verifier.
func (p *Provider) SpendCode(ctx context.Context, code string) error {
	if code == "" {
		return nil
	}
	err := p.store.InvalidateAuthorizeCodeSession(ctx, p.access.AuthorizeCodeSignature(ctx, code))
	if errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		return nil // unknown, or spent already
	}
	return err
}

// rereadingClientAuthentication is fosite's client authentication (the
// token, introspection, revocation and PAR endpoints, and the device grant
// all go through it), but a client refused from a cached copy is read again
// from storage before invalid_client is answered: a secret rotated moments
// ago (tonearm clients rotate-secret, another replica) works at once
// instead of being refused until the cache expires.
func rereadingClientAuthentication(f *fosite.Fosite, store *fositestore.Adapter) fosite.ClientAuthenticationStrategy {
	return func(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
		client, err := f.DefaultClientAuthenticationStrategy(ctx, r, form)
		if err == nil || fosite.ErrorToRFC6749Error(err).ErrorField != fosite.ErrInvalidClient.ErrorField {
			return client, err
		}
		id := form.Get("client_id")
		if user, _, ok := r.BasicAuth(); ok {
			// RFC 6749 §2.3.1: Basic credentials are form-encoded.
			id = user
			if unescaped, uerr := url.QueryUnescape(user); uerr == nil {
				id = unescaped
			}
		}
		if id == "" || !store.RereadCachedClient(ctx, id) {
			return client, err
		}
		return f.DefaultClientAuthenticationStrategy(ctx, r, form)
	}
}

// RereadCachedClient re-reads a client that just failed to authenticate,
// bypassing the cache, and reports whether its credentials changed (then
// authenticating again is worth it); see fositestore.
func (p *Provider) RereadCachedClient(ctx context.Context, id string) bool {
	return p.store.RereadCachedClient(ctx, id)
}

// AuthenticateClient authenticates the client of a request as the token
// endpoint does (Basic, client_secret_post, private_key_jwt, or a public
// client's client_id).
func (p *Provider) AuthenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	f, ok := p.OAuth2.(*fosite.Fosite)
	if !ok {
		return nil, errors.New("provider: client authentication is not available")
	}
	return f.AuthenticateClient(ctx, r, form)
}

// WithClock sets the clock on which the expiry of authorization codes and
// access tokens is checked (tests: a clock moved past a lifetime instead of
// a real wait). fosite stamps expiry on the real clock, so a clock moved
// ahead expires what was issued before the move and also what is issued
// after it: only tests that move it after issuing set it. Call it before
// the provider serves.
func (p *Provider) WithClock(now func() time.Time) {
	if now != nil {
		p.access.Now = now
	}
}

// Devices returns the device authorizations (nil when the grant is off).
func (p *Provider) Devices() *device.Codes { return p.devices }

// ClientKeys verifies JWSs signed by clients with their registered keys,
// fetching jwks_uri through the guarded fetcher.
func (p *Provider) ClientKeys() *clientkeys.Keys { return p.clientKeys }

// Issuer returns the issuer URL.
func (p *Provider) Issuer() string { return p.issuer }

// JWKS returns the public key set and its entity tag.
func (p *Provider) JWKS() ([]byte, string) { return p.keys.JWKS() }

// NewSession returns an empty session for fosite to fill from storage.
func NewSession() *openid.DefaultSession {
	return &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{Extra: map[string]interface{}{}},
		Headers: &jwt.Headers{Extra: map[string]interface{}{}},
	}
}

// NewFositeSession is NewSession as a fosite.Session, for the storage
// adapter.
func NewFositeSession() fosite.Session { return NewSession() }

// VerifyAccessToken checks a bearer access token (signature, expiry and
// that it was not revoked) and returns the request it was issued for.
func (p *Provider) VerifyAccessToken(ctx context.Context, token string) (fosite.AccessRequester, error) {
	use, ar, err := p.OAuth2.IntrospectToken(ctx, token, fosite.AccessToken, NewSession())
	if err != nil {
		return nil, err
	}
	if use != fosite.AccessToken {
		return nil, fosite.ErrRequestUnauthorized
	}
	return ar, nil
}

// Client returns a registered client, or fosite.ErrNotFound.
func (p *Provider) Client(ctx context.Context, id string) (*fositestore.Client, error) {
	c, err := p.store.GetClient(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.(*fositestore.Client), nil
}

// ErrInvalidIDToken: an id_token_hint this provider did not sign.
var ErrInvalidIDToken = errors.New("provider: not an ID token signed by this provider")

// IDTokenHint is what an id_token_hint says.
type IDTokenHint struct {
	Subject  string
	Audience []string
	// SID is the browser session it was issued in, as tonearm knows it (a
	// pairwise client's sid mapped back, see SessionSID); "" for old
	// tokens and for a pairwise sid that names no session.
	SID string
}

// VerifyIDTokenHint verifies an ID token this provider signed, expired or
// not (RP-initiated logout accepts expired hints).
func (p *Provider) VerifyIDTokenHint(ctx context.Context, token string) (IDTokenHint, error) {
	t, err := p.idSigner.Decode(ctx, token)
	var ve *jwt.ValidationError
	if err != nil && !(errors.As(err, &ve) && ve.Errors&^jwt.ValidationErrorExpired == 0) {
		return IDTokenHint{}, ErrInvalidIDToken
	}
	if t == nil || t.Claims == nil || t.Claims["iss"] != p.issuer || !isIDToken(t) {
		return IDTokenHint{}, ErrInvalidIDToken
	}
	var h IDTokenHint
	h.Subject, _ = t.Claims["sub"].(string)
	h.SID, _ = t.Claims["sid"].(string)
	switch aud := t.Claims["aud"].(type) {
	case string:
		h.Audience = []string{aud}
	case []interface{}:
		for _, a := range aud {
			if s, ok := a.(string); ok {
				h.Audience = append(h.Audience, s)
			}
		}
	}
	if h.Subject == "" || len(h.Audience) == 0 {
		return IDTokenHint{}, ErrInvalidIDToken
	}
	h.SID = p.hintSessionSID(ctx, h.Audience[0], h.SID)
	return h, nil
}

// isIDToken tells an ID token from the other JWTs this provider signs: an
// access token (ES256, typ at+jwt, client_id and scope claims) and a logout
// token (signed with the same RS256 key, but typ logout+jwt and an events
// claim). Only an ID token may serve as an id_token_hint.
func isIDToken(t *jwt.Token) bool {
	if alg, _ := t.Header["alg"].(string); alg != keys.RS256 && alg != keys.ES256 {
		return false
	}
	if typ, ok := t.Header["typ"]; ok && typ != "JWT" {
		return false
	}
	for _, claim := range []string{"events", "scope", "client_id"} {
		if _, ok := t.Claims[claim]; ok {
			return false
		}
	}
	return true
}

// NewRequestID is the ID of a new authorization or client-credentials
// request, which its codes and tokens carry: a UUIDv7, ordered by time, so
// that the index of access tokens by request ID grows at its end instead
// of splitting pages all over (half its size).
func NewRequestID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// quietTokenHandler asks a token endpoint handler whether the request is
// its own before letting it populate the response. fosite asks every
// handler to populate every response, and each one the grant is not for
// answers with an error carrying a captured stack trace: five stack
// walks per token, about 5 % of a client-credentials request's CPU.
// Handling (HandleTokenEndpointRequest) already asks first.
type quietTokenHandler struct{ fosite.TokenEndpointHandler }

func (h quietTokenHandler) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, req, resp)
}

// rotated are fosite's RotatedGlobalSecrets: each previous secret cut to
// the 32 bytes fosite keys with, as GlobalSecret is.
func rotated(previous [][]byte) [][]byte {
	var out [][]byte
	for _, p := range previous {
		if len(p) >= 32 {
			out = append(out, p[:32])
		}
	}
	return out
}
