// Package fositestore adapts storage.Storage to the storage interfaces of
// the fosite handlers tonearm composes. It stores hashes of token
// signatures, never tokens, and only the request parameters worth keeping.
package fositestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fositestorage "github.com/ory/fosite/storage"

	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// Store is what the adapter needs from storage.
type Store interface {
	GetClient(ctx context.Context, id string) (storage.Client, error)
	CreateOAuthRequest(ctx context.Context, r storage.OAuthRequest) error
	CreateOAuthRequests(ctx context.Context, rs []storage.OAuthRequest) error
	GetOAuthRequest(ctx context.Context, kind, signature string) (storage.OAuthRequest, error)
	GetOAuthRequestsBySignature(ctx context.Context, signature string, kinds []string) ([]storage.OAuthRequest, error)
	DeleteOAuthRequest(ctx context.Context, kind, signature string) error
	TakeOAuthRequest(ctx context.Context, kind, signature string) (storage.OAuthRequest, error)
	DeactivateOAuthRequest(ctx context.Context, kind, signature string) error
	OpenOAuthRequest(ctx context.Context, kind, signature string, expiresAt time.Time) error
	SpendOAuthRequest(ctx context.Context, kind, signature, alsoDelete string) error
	RotateOAuthRequestFamily(ctx context.Context, kind, signature, requestID string, now, rotatedAfter time.Time) error
	AddEvent(ctx context.Context, e storage.Event) error
	DeactivateOAuthRequestsByRequestID(ctx context.Context, kind, requestID string) (int64, error)
	DeleteOAuthRequestsByRequestID(ctx context.Context, kind, requestID string) (int64, error)
	BeginTx(ctx context.Context) (context.Context, error)
	CommitTx(ctx context.Context) error
	RollbackTx(ctx context.Context) error
}

// Client is a registered client as fosite sees it, with tonearm's extras.
type Client struct {
	fosite.DefaultClient
	FirstParty             bool
	AllowNoPKCE            bool
	RequirePAR             bool
	RequireDPoP            bool
	PostLogoutRedirectURIs []string
	// Display metadata for the login and consent pages.
	Name, LogoURI, ClientURI, PolicyURI, TosURI string
	// IDTokenAlg signs its ID tokens (RS256 or ES256).
	IDTokenAlg string
	// Registration says how an app registered by a developer was
	// registered (storage.Registered…; "": by an admin).
	Registration string
	// TokenEndpointAuthMethod is how it authenticates (RFC 7591 names;
	// "" the default for its kind). JWKS (a JSON Web Key Set document)
	// or JWKSURI holds its public keys, for private_key_jwt and request
	// objects.
	TokenEndpointAuthMethod string
	JWKS, JWKSURI           string
	// RequestURIs are its registered request_uri URLs (RFC 9101);
	// RequestObjectSigningAlg is "" (any), "none" (unsigned only) or one.
	RequestURIs             []string
	RequestObjectSigningAlg string
	// SubjectType is storage.SubjectPublic or SubjectPairwise;
	// SectorIdentifierURI names a pairwise client's sector (OIDC Core §8.1).
	SubjectType, SectorIdentifierURI string
	// oldSecret is the hash of a rotated-out secret still accepted until
	// oldSecretExpires (clients rotate-secret --keep-old).
	oldSecret        []byte
	oldSecretExpires time.Time
}

var _ fosite.ClientWithSecretRotation = (*Client)(nil)

// GetRotatedHashes implements fosite.ClientWithSecretRotation: the old
// secret while it is kept, checked at each use (the client may be cached).
func (c *Client) GetRotatedHashes() [][]byte {
	if len(c.oldSecret) == 0 || !time.Now().Before(c.oldSecretExpires) {
		return nil
	}
	return [][]byte{c.oldSecret}
}

// Lifespans give rows an expiry when the session carries none, so the
// cleaner can always remove them.
type Lifespans struct {
	AuthorizeCode time.Duration
	AccessToken   time.Duration
	RefreshToken  time.Duration
	// RefreshGrace is how long after its rotation a refresh token is still
	// answered like its first use (TONEARM_REFRESH_GRACE; 0: strict).
	RefreshGrace time.Duration
}

// Adapter implements fosite's storage interfaces.
type Adapter struct {
	store      Store
	newSession func() fosite.Session
	lifespans  Lifespans
	now        func() time.Time

	// Clients are read on every token request, often twice (client
	// authentication, then the stored request). A short-lived cache of
	// known clients saves those round trips; a deleted client's tokens are
	// deleted with it at once, and its credentials stop working within
	// ClientCacheTTL. Unknown IDs are never cached, so made-up IDs cannot
	// fill memory.
	clientMu    sync.RWMutex
	clientCache map[string]cachedClient
}

// Compile-time checks: compose only type-asserts at run time.
var (
	_ fosite.Storage                     = (*Adapter)(nil)
	_ oauth2.CoreStorage                 = (*Adapter)(nil)
	_ oauth2.TokenRevocationStorage      = (*Adapter)(nil)
	_ openid.OpenIDConnectRequestStorage = (*Adapter)(nil)
	_ pkce.PKCERequestStorage            = (*Adapter)(nil)
	_ fosite.PARStorage                  = (*Adapter)(nil)
	_ fositestorage.Transactional        = (*Adapter)(nil)
)

// Rollback implements fosite's storage.Transactional.
func (a *Adapter) Rollback(ctx context.Context) error { return a.store.RollbackTx(ctx) }

// New returns an adapter. newSession makes the empty session that stored
// session JSON is decoded into when fosite passes none (revocation does).
func New(store Store, newSession func() fosite.Session, lifespans Lifespans) (*Adapter, error) {
	if store == nil || newSession == nil {
		return nil, errors.New("fositestore: store and newSession are required")
	}
	return &Adapter{store: store, newSession: newSession, lifespans: lifespans, now: time.Now, clientCache: map[string]cachedClient{}}, nil
}

// ToFositeClient converts a stored client.
func ToFositeClient(c storage.Client) *Client {
	return &Client{
		DefaultClient: fosite.DefaultClient{
			ID:            c.ID,
			Secret:        c.SecretHash,
			RedirectURIs:  c.RedirectURIs,
			GrantTypes:    c.GrantTypes,
			ResponseTypes: c.ResponseTypes,
			Scopes:        c.Scopes,
			Audience:      c.Audience,
			Public:        c.Public,
		},
		oldSecret: c.OldSecretHash, oldSecretExpires: c.OldSecretExpiresAt, IDTokenAlg: c.IDTokenAlg,
		Registration:           c.Registration,
		FirstParty:             c.FirstParty && c.Registration == "",
		AllowNoPKCE:            c.AllowNoPKCE,
		RequirePAR:             c.RequirePAR,
		RequireDPoP:            c.RequireDPoP,
		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		Name:                   c.Name, LogoURI: c.LogoURI, ClientURI: c.ClientURI, PolicyURI: c.PolicyURI, TosURI: c.TosURI,
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod, JWKS: c.JWKS, JWKSURI: c.JWKSURI,
		RequestURIs: c.RequestURIs, RequestObjectSigningAlg: c.RequestObjectSigningAlg,
		SubjectType: c.SubjectType, SectorIdentifierURI: c.SectorIdentifierURI,
	}
}

// GetClient implements fosite.ClientManager.
func (a *Adapter) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	now := a.now()
	a.clientMu.RLock()
	e, ok := a.clientCache[id]
	a.clientMu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.client, nil
	}
	c, err := a.store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && c.Disabled) {
		// A disabled client is refused as if it did not exist.
		a.ForgetClient(id)
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	fc := ToFositeClient(c)
	a.clientMu.Lock()
	a.clientCache[id] = cachedClient{client: fc, expires: now.Add(ClientCacheTTL)}
	a.clientMu.Unlock()
	return fc, nil
}

// WithClock sets the adapter's clock (tests).
func (a *Adapter) WithClock(now func() time.Time) {
	if now != nil {
		a.now = now
	}
}

// ForgetClient drops a client from the cache (after it was deleted here).
func (a *Adapter) ForgetClient(id string) {
	a.clientMu.Lock()
	delete(a.clientCache, id)
	a.clientMu.Unlock()
}

// ClientAssertionJWTValid implements fosite.ClientManager. tonearm accepts
// no client assertions (private_key_jwt): fosite refuses them before this is
// reached, so no JTI is ever recorded.
func (a *Adapter) ClientAssertionJWTValid(context.Context, string) error { return nil }

// SetClientAssertionJWT implements fosite.ClientManager; see above.
func (a *Adapter) SetClientAssertionJWT(context.Context, string, time.Time) error { return nil }

// keptParameters are the request parameters later steps read back: the
// redirect URI check, PKCE, the ID token (nonce, max_age, prompt), scope and
// audience. Everything else (client secrets, codes, passwords, tokens) is
// dropped before storage.
var keptParameters = []string{
	"redirect_uri", "response_type", "scope", "audience", "nonce", "max_age", "prompt",
	"id_token_hint", "acr_values", "code_challenge", "code_challenge_method", "grant_type", "client_id",
}

func sanitizeForm(form url.Values) string {
	out := url.Values{}
	for _, k := range keptParameters {
		if v, ok := form[k]; ok {
			out[k] = v
		}
	}
	return out.Encode()
}

// hashSignature keys rows by SHA-256 of the signature fosite hands over (or
// of the raw code for OpenID sessions).
func hashSignature(sig string) string {
	h := sha256.Sum256([]byte(sig))
	return hex.EncodeToString(h[:])
}

func (a *Adapter) fallbackLifespan(kind string) time.Duration {
	switch kind {
	case storage.KindPAR:
		return PARLifespan
	case storage.KindAccessToken:
		return a.lifespans.AccessToken
	case storage.KindRefreshToken:
		return a.lifespans.RefreshToken
	default:
		return a.lifespans.AuthorizeCode
	}
}

func tokenType(kind string) fosite.TokenType {
	switch kind {
	case storage.KindPAR:
		return fosite.PushedAuthorizeRequestContext
	case storage.KindAccessToken:
		return fosite.AccessToken
	case storage.KindRefreshToken:
		return fosite.RefreshToken
	default:
		return fosite.AuthorizeCode
	}
}

func (a *Adapter) create(ctx context.Context, kind, signature, accessSig string, req fosite.Requester) error {
	sess := req.GetSession()
	if sess == nil {
		return errors.New("fositestore: request without a session")
	}
	raw, err := encodeSession(kind, sess)
	if err != nil {
		return fmt.Errorf("fositestore: encode session: %w", err)
	}
	expires := sess.GetExpiresAt(tokenType(kind))
	if expires.IsZero() {
		expires = req.GetRequestedAt().Add(a.fallbackLifespan(kind))
	}
	if expires.IsZero() || expires.Year() < 2000 {
		expires = a.now().Add(a.fallbackLifespan(kind))
	}
	r := storage.OAuthRequest{
		Kind:            kind,
		Signature:       hashSignature(signature),
		RequestID:       req.GetID(),
		RequestedAt:     req.GetRequestedAt(),
		ClientID:        req.GetClient().GetID(),
		Subject:         sess.GetSubject(),
		GrantedScopes:   req.GetGrantedScopes(),
		GrantedAudience: req.GetGrantedAudience(),
		Session:         raw,
		Active:          true,
		ExpiresAt:       expires,
	}
	if kind != storage.KindAccessToken {
		// An access token is only ever read back for what it grants; the
		// request's parameters matter to codes and refresh tokens.
		r.Scopes, r.Audience, r.Form = req.GetRequestedScopes(), req.GetRequestedAudience(), sanitizeForm(req.GetRequestForm())
	}
	if kind == storage.KindPAR {
		r.Form = parForm(req)
		// The row goes with the request_uri (expires_in); opening it
		// extends it for the interaction (openPAR).
		r.ExpiresAt = r.RequestedAt.Add(PARLifespan)
	}
	if accessSig != "" {
		r.AccessSignature = hashSignature(accessSig)
	}
	if os, ok := sess.(*openid.DefaultSession); ok && os.Claims != nil {
		r.SID, _ = os.Claims.Extra["sid"].(string)
	}
	return a.write(ctx, r)
}

// load rebuilds a fosite request. The session JSON is decoded into session
// (or a new one); the client is reloaded so a deleted client's tokens die.
func (a *Adapter) load(ctx context.Context, kind, signature string, session fosite.Session) (*fosite.Request, bool, error) {
	req, r, err := a.loadRow(ctx, kind, signature, session)
	return req, r.Active, err
}

// loadRow is load that also returns the stored row.
func (a *Adapter) loadRow(ctx context.Context, kind, signature string, session fosite.Session) (*fosite.Request, storage.OAuthRequest, error) {
	r, err := a.getRow(ctx, kind, hashSignature(signature))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, r, fosite.ErrNotFound
	}
	if err != nil {
		return nil, r, err
	}
	client, err := a.GetClient(ctx, r.ClientID)
	if err != nil {
		return nil, r, err
	}
	if session == nil {
		session = a.newSession()
	}
	if err := decodeSession(r.Session, session); err != nil {
		return nil, r, fmt.Errorf("fositestore: decode session: %w", err)
	}
	if os, ok := session.(*openid.DefaultSession); ok && os.Subject == "" {
		// A lean access-token session leaves the subject and the expiry
		// to the row.
		os.Subject = r.Subject
		if os.Claims != nil {
			os.Claims.Subject = r.Subject
		}
		if os.GetExpiresAt(fosite.AccessToken).IsZero() {
			os.SetExpiresAt(fosite.AccessToken, r.ExpiresAt)
		}
	}
	form, err := url.ParseQuery(r.Form)
	if err != nil {
		return nil, r, fmt.Errorf("fositestore: decode form: %w", err)
	}
	req := &fosite.Request{
		ID:                r.RequestID,
		RequestedAt:       r.RequestedAt,
		Client:            client,
		RequestedScope:    fosite.Arguments(r.Scopes),
		GrantedScope:      fosite.Arguments(r.GrantedScopes),
		Form:              form,
		Session:           session,
		RequestedAudience: fosite.Arguments(r.Audience),
		GrantedAudience:   fosite.Arguments(r.GrantedAudience),
	}
	return req, r, nil
}

// CreateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
func (a *Adapter) CreateAuthorizeCodeSession(ctx context.Context, code string, req fosite.Requester) error {
	return a.create(ctx, storage.KindAuthorizeCode, code, "", req)
}

// GetAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage. A used
// code returns its request together with ErrInvalidatedAuthorizeCode, which
// makes fosite revoke the tokens it produced.
func (a *Adapter) GetAuthorizeCodeSession(ctx context.Context, code string, session fosite.Session) (fosite.Requester, error) {
	req, active, err := a.load(ctx, storage.KindAuthorizeCode, code, session)
	if err != nil {
		return nil, err
	}
	if !active {
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	return req, nil
}

// InvalidateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
// Only one of two concurrent exchanges of a code gets past it. The code's
// PKCE challenge (keyed by the same signature) ends with it: it is kept
// until the code is spent, see DeletePKCERequestSession.
func (a *Adapter) InvalidateAuthorizeCodeSession(ctx context.Context, code string) error {
	forget(ctx)
	err := a.store.SpendOAuthRequest(ctx, storage.KindAuthorizeCode, hashSignature(code), storage.KindPKCE)
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrInvalidatedAuthorizeCode
	}
	return err
}

type accessScopesKey struct{}

// WithAccessScopes narrows the scopes of the access token issued with ctx
// (a refresh request asking for fewer scopes); the refresh token issued
// with it keeps the original scopes, as RFC 6749 §6 requires.
func WithAccessScopes(ctx context.Context, scopes []string) context.Context {
	return context.WithValue(ctx, accessScopesKey{}, scopes)
}

// AccessScopes returns the narrowed access-token scopes carried by ctx.
func AccessScopes(ctx context.Context) ([]string, bool) {
	s, ok := ctx.Value(accessScopesKey{}).([]string)
	return s, ok
}

type accessAudienceKey struct{}

// WithAccessAudience narrows the audience of the access token issued with
// ctx (RFC 8707 resource parameters of a token request); the grant and its
// refresh token keep theirs.
func WithAccessAudience(ctx context.Context, aud []string) context.Context {
	return context.WithValue(ctx, accessAudienceKey{}, aud)
}

// AccessAudience returns the narrowed access-token audience carried by ctx.
func AccessAudience(ctx context.Context) ([]string, bool) {
	a, ok := ctx.Value(accessAudienceKey{}).([]string)
	return a, ok
}

// CreateAccessTokenSession implements oauth2.AccessTokenStorage.
func (a *Adapter) CreateAccessTokenSession(ctx context.Context, signature string, req fosite.Requester) error {
	scopes, narrowScopes := AccessScopes(ctx)
	aud, narrowAud := AccessAudience(ctx)
	if narrowScopes || narrowAud {
		narrowed := *(req.Sanitize(nil).(*fosite.Request))
		narrowed.Form = req.GetRequestForm()
		if narrowScopes {
			narrowed.GrantedScope = fosite.Arguments(scopes)
		}
		if narrowAud {
			narrowed.GrantedAudience = fosite.Arguments(aud)
		}
		req = &narrowed
	}
	return a.create(ctx, storage.KindAccessToken, signature, "", req)
}

// GetAccessTokenSession implements oauth2.AccessTokenStorage.
func (a *Adapter) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, active, err := a.load(ctx, storage.KindAccessToken, signature, session)
	if err != nil {
		return nil, err
	}
	if !active {
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

// DeleteAccessTokenSession implements oauth2.AccessTokenStorage.
func (a *Adapter) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return a.store.DeleteOAuthRequest(ctx, storage.KindAccessToken, hashSignature(signature))
}

// CreateRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (a *Adapter) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, req fosite.Requester) error {
	return a.create(ctx, storage.KindRefreshToken, signature, accessSignature, req)
}

// GetRefreshTokenSession implements oauth2.RefreshTokenStorage. A used
// (rotated) token returns its request with ErrInactiveToken: fosite then
// treats it as reuse and revokes the family — unless it was rotated within
// the refresh grace period (a client that lost the first answer retries),
// when it is answered like the first use.
func (a *Adapter) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, row, err := a.loadRow(ctx, storage.KindRefreshToken, signature, session)
	if err != nil {
		return nil, err
	}
	if !row.Active && !a.inGrace(row.RotatedAt) {
		// fosite revokes the family next; operators see it happened.
		if err := audit.Record(ctx, a.store, a.now(), audit.RefreshReuse, row.Subject, row.ClientID, nil); err != nil {
			return nil, err
		}
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

// inGrace reports whether a token rotated at t may still be used.
func (a *Adapter) inGrace(t time.Time) bool {
	return a.lifespans.RefreshGrace > 0 && !t.IsZero() && a.now().Sub(t) < a.lifespans.RefreshGrace
}

// DeleteRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (a *Adapter) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return a.store.DeleteOAuthRequest(ctx, storage.KindRefreshToken, hashSignature(signature))
}

// RotateRefreshToken implements oauth2.RefreshTokenStorage: the presented
// refresh token is deactivated with a conditional update (of two concurrent
// refreshes one finds nothing to deactivate and fails), and the access
// tokens of the family are deleted.
func (a *Adapter) RotateRefreshToken(ctx context.Context, requestID, refreshSignature string) error {
	now := a.now()
	var rotatedAfter time.Time // zero: strict, no second use at all
	if a.lifespans.RefreshGrace > 0 {
		rotatedAfter = now.Add(-a.lifespans.RefreshGrace)
	}
	err := a.store.RotateOAuthRequestFamily(ctx, storage.KindRefreshToken, hashSignature(refreshSignature), requestID, now, rotatedAfter)
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrNotFound
	}
	return err
}

// RevokeRefreshToken implements oauth2.TokenRevocationStorage.
func (a *Adapter) RevokeRefreshToken(ctx context.Context, requestID string) error {
	_, err := a.store.DeactivateOAuthRequestsByRequestID(ctx, storage.KindRefreshToken, requestID)
	return err
}

// RevokeAccessToken implements oauth2.TokenRevocationStorage.
func (a *Adapter) RevokeAccessToken(ctx context.Context, requestID string) error {
	_, err := a.store.DeleteOAuthRequestsByRequestID(ctx, storage.KindAccessToken, requestID)
	return err
}

// CreateOpenIDConnectSession implements openid.OpenIDConnectRequestStorage;
// fosite keys it by the raw authorization code, which is hashed here.
func (a *Adapter) CreateOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) error {
	return a.create(ctx, storage.KindOpenID, code, "", req)
}

// GetOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (a *Adapter) GetOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) (fosite.Requester, error) {
	var session fosite.Session
	if req != nil {
		session = req.GetSession()
	}
	r, _, err := a.load(ctx, storage.KindOpenID, code, session)
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, openid.ErrNoSessionFound
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// DeleteOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (a *Adapter) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	if wasTaken(ctx, hashSignature(code)) {
		return nil // read by deleting it (see memo.take)
	}
	return a.store.DeleteOAuthRequest(ctx, storage.KindOpenID, hashSignature(code))
}

// CreatePKCERequestSession implements pkce.PKCERequestStorage.
func (a *Adapter) CreatePKCERequestSession(ctx context.Context, signature string, req fosite.Requester) error {
	return a.create(ctx, storage.KindPKCE, signature, "", req)
}

// GetPKCERequestSession implements pkce.PKCERequestStorage.
func (a *Adapter) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, _, err := a.load(ctx, storage.KindPKCE, signature, session)
	return req, err
}

// DeletePKCERequestSession implements pkce.PKCERequestStorage and keeps
// the challenge. fosite calls it before it checks the verifier: deleting
// here would let a second exchange of the same code, without any
// code_verifier, pass as a request that never had PKCE. The challenge
// lives as long as its code (InvalidateAuthorizeCodeSession ends both;
// housekeeping sweeps expired ones).
func (a *Adapter) DeletePKCERequestSession(context.Context, string) error {
	return nil
}
