package provider

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/storage"
)

// Token exchange (RFC 8693): a client that holds a person's access token
// (an app's backend, a resource server calling another API for the person)
// gets a token for one API that names it (storage.API.ExchangeFrom), with
// no more than the subject token carries and the client may ask of that
// API, never living longer than the subject token, and saying who acts
// (act, §4.1). fosite v0.49 has no such grant: this is tonearm's own
// TokenEndpointHandler, composed beside fosite's like the device grant.

// TokenExchangeGrant is RFC 8693's grant type (§2.1).
const TokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"

// Token type identifiers (RFC 8693 §3). Only access tokens are exchanged
// and issued: an ID token is a statement to its client, not a credential
// for an API, and a refresh token never leaves the client it was issued to.
const (
	AccessTokenType  = "urn:ietf:params:oauth:token-type:access_token"
	RefreshTokenType = "urn:ietf:params:oauth:token-type:refresh_token"
)

// tokenExchange is the handler of TokenExchangeGrant.
type tokenExchange struct {
	p      *Provider
	helper *oauth2.HandleHelper
	config fosite.Configurator
}

var _ fosite.TokenEndpointHandler = (*tokenExchange)(nil)

func newTokenExchange(access *AccessTokenStrategy, store *fositestore.Adapter, config *fosite.Config) *tokenExchange {
	return &tokenExchange{config: config,
		helper: &oauth2.HandleHelper{AccessTokenStrategy: access, AccessTokenStorage: store, Config: config}}
}

// CanSkipClientAuth: the exchanging client always authenticates (§2.1
// leaves client authentication to the server; a public client proves
// nothing about who acts).
func (x *tokenExchange) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (x *tokenExchange) CanHandleTokenEndpointRequest(_ context.Context, req fosite.AccessRequester) bool {
	return req.GetGrantTypes().ExactOne(TokenExchangeGrant)
}

// exchangeKey carries what an exchanged access token says beyond a token
// of its request: the subject token's sub, and act.
type exchangeKey struct{}

type exchangeClaims struct {
	sub string
	act map[string]any
}

func exchangedOf(ctx context.Context) (exchangeClaims, bool) {
	x, ok := ctx.Value(exchangeKey{}).(exchangeClaims)
	return x, ok
}

// exchangeRequest is a checked exchange, kept on the request's session
// between handling and issuing (fosite calls the two with the same request).
type exchangeRequest struct {
	sub           string
	act           map[string]any
	api           string
	subjectClient string
}

// exchangeSession is the issued token's session: the subject token's
// (the person, how and when they signed in: acr, amr, auth_time carried
// over unchanged) with the exchange it came from.
type exchangeSession struct {
	*openid.DefaultSession
	exchange exchangeRequest
}

// openID is the wrapped session (DPoP binds through it).
func (s *exchangeSession) openID() *openid.DefaultSession { return s.DefaultSession }

func (s *exchangeSession) Clone() fosite.Session {
	return &exchangeSession{DefaultSession: s.DefaultSession.Clone().(*openid.DefaultSession), exchange: s.exchange}
}

// invalidSubject is §2.2.2's answer for a subject or actor token that is
// invalid for any reason or unacceptable by policy: invalid_request (RFC
// 8693 §2.2.2 says MUST; invalid_grant is not what it asks for).
func invalidSubject(format string, args ...any) error {
	return fosite.ErrInvalidRequest.WithHintf(format, args...)
}

// HandleTokenEndpointRequest checks the exchange (RFC 8693 §2.1) and grants
// the new token's scopes and audience.
func (x *tokenExchange) HandleTokenEndpointRequest(ctx context.Context, req fosite.AccessRequester) error {
	if !x.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	p, form, client := x.p, req.GetRequestForm(), req.GetClient()
	if client.IsPublic() {
		return fosite.ErrUnauthorizedClient.WithHint("Only a confidential client, authenticating with its credentials, may exchange tokens.")
	}
	if p.users == nil {
		return fosite.ErrUnauthorizedClient.WithHint("Token exchange is not available on this server.")
	}
	if t := form.Get("requested_token_type"); t != "" && t != AccessTokenType {
		return fosite.ErrInvalidRequest.WithHintf("Only access tokens are issued (requested_token_type %s).", AccessTokenType)
	}
	subjectToken, subjectType := form.Get("subject_token"), form.Get("subject_token_type")
	switch {
	case subjectToken == "" || subjectType == "":
		return fosite.ErrInvalidRequest.WithHint("The subject_token and subject_token_type parameters are required (RFC 8693 §2.1).")
	case subjectType == RefreshTokenType:
		return fosite.ErrInvalidRequest.WithHint("A refresh token cannot be exchanged: it never leaves the client it was issued to.")
	case subjectType != AccessTokenType:
		return fosite.ErrInvalidRequest.WithHintf("Unsupported subject_token_type: only %s is exchanged.", AccessTokenType)
	}
	// The subject token as introspection sees it: issued here, live, not
	// revoked. Whatever is wrong with it is invalid_request (§2.2.2).
	use, subject, err := p.OAuth2.IntrospectToken(ctx, subjectToken, fosite.AccessToken, NewSession())
	if err != nil {
		if errors.Is(err, storage.ErrUnavailable) {
			return err
		}
		return invalidSubject("The subject_token is not an access token issued by this server, or it expired or was revoked.")
	}
	if use != fosite.AccessToken {
		return invalidSubject("A refresh token cannot be exchanged: it never leaves the client it was issued to.")
	}
	userID, subjectClient := subject.GetSession().GetSubject(), subject.GetClient().GetID()
	sess, ok := subject.GetSession().(*openid.DefaultSession)
	if !ok || userID == "" || userID == subjectClient || sess.Claims == nil || sess.Claims.AuthTime.IsZero() {
		// Client credentials: the token names no person who signed in,
		// and no one is impersonated.
		return invalidSubject("The subject_token names no person who signed in (a client's own token cannot be exchanged).")
	}
	if u, err := p.users.GetUser(ctx, userID); err != nil || u.Disabled {
		if errors.Is(err, storage.ErrUnavailable) {
			return err
		}
		return invalidSubject("The subject_token's account can no longer sign in.")
	}
	// The requesting client must be one the token was meant for: the
	// client it was issued to, or a resource server of an API in its
	// audience (its introspectors). A token for another audience that the
	// client came by otherwise is refused.
	if !p.MayIntrospect(ctx, client.GetID(), subjectClient, subject.GetGrantedAudience()) {
		return invalidSubject("The subject_token was neither issued to this client nor meant for an API it serves.")
	}
	claims, err := p.access.ParseAccessToken(ctx, subjectToken)
	if err != nil {
		return invalidSubject("The subject_token is not an access token issued by this server.")
	}
	if err := x.checkActor(ctx, form.Get("actor_token"), form.Get("actor_token_type"), client.GetID()); err != nil {
		return err
	}
	api, err := x.target(ctx, form, client.GetID())
	if err != nil {
		return err
	}
	scopes, err := exchangeScopes(api, req.GetRequestedScopes(), subject.GetGrantedScopes(), client.GetScopes())
	if err != nil {
		return err
	}
	next := x.nextSession(ctx, sess, claims, client.GetID(), api.ID, subjectClient)
	req.SetSession(next)
	req.SetID(NewRequestID())
	for _, s := range scopes {
		req.GrantScope(s)
	}
	req.GrantAudience(api.ID)
	return nil
}

// nextSession is the exchanged token's session: the subject token's
// person and sign-in, act naming the exchanging client (§4.1), an expiry
// no later than the subject's, and no DPoP key of its own yet.
func (x *tokenExchange) nextSession(ctx context.Context, sess *openid.DefaultSession, claims map[string]any, clientID, apiID, subjectClient string) *exchangeSession {
	// §4.1: act names the current actor, the one before it nested inside.
	act := map[string]any{"sub": clientID}
	if prev, ok := claims["act"].(map[string]any); ok {
		act["act"] = prev
	}
	sub, _ := claims["sub"].(string)
	next := &exchangeSession{DefaultSession: sess.Clone().(*openid.DefaultSession),
		exchange: exchangeRequest{sub: sub, act: act, api: apiID, subjectClient: subjectClient}}
	// acr as the subject token says it: an access token's stored session
	// is lean (fositestore) and keeps only the sign-in time. The token's
	// bytes are the ones this server signed (its row is keyed by their
	// hash), so its payload is as good as the row.
	if acr, ok := claims["acr"].(string); ok {
		next.Claims.AuthenticationContextClassReference = acr
	}
	// Never longer-lived than the subject token.
	exp := x.p.access.now().UTC().Add(x.config.GetAccessTokenLifespan(ctx))
	if subjectExp := sess.GetExpiresAt(fosite.AccessToken); !subjectExp.IsZero() && subjectExp.Before(exp) {
		exp = subjectExp
	}
	next.ExpiresAt = map[fosite.TokenType]time.Time{fosite.AccessToken: exp}
	// The subject token's DPoP key is its app's, which the exchanging
	// client does not hold: the new token is bound only to the proof the
	// exchange itself presents (RFC 9449 §5), if any.
	BindToKey(next, "")
	return next
}

// target is the one API the exchange names by resource (RFC 8707) or
// audience: a registered API that takes exchanged tokens (invalid_target,
// §2.2.2) and names clientID among the clients that may exchange for it
// (unauthorized_client).
func (x *tokenExchange) target(ctx context.Context, form url.Values, clientID string) (storage.API, error) {
	var targets []string
	for _, t := range append(slices.Clone(form["resource"]), fosite.GetAudiences(form)...) {
		if !slices.Contains(targets, t) {
			targets = append(targets, t)
		}
	}
	switch len(targets) {
	case 0:
		return storage.API{}, fosite.ErrInvalidRequest.WithHint("Name the API the token is for with resource or audience.")
	case 1:
	default:
		return storage.API{}, invalidTarget("One exchange gives a token for one API; %d were named.", len(targets))
	}
	ix, err := x.p.indexFor(ctx, nil, targets)
	if err != nil {
		return storage.API{}, err
	}
	api, ok := ix.byID[targets[0]]
	if ok && !slices.Contains(api.ExchangeFrom, clientID) {
		// Named moments ago (another replica, the command line)?
		all, version, err := x.p.apis.Fresh(ctx)
		if err != nil {
			return storage.API{}, err
		}
		ix = buildIndex(all)
		x.p.scopes.Store(&builtIndex{version: version, index: ix})
		api, ok = ix.byID[targets[0]]
	}
	switch {
	case !ok:
		return storage.API{}, invalidTarget("The resource %q is not a registered API.", targets[0])
	case len(api.ExchangeFrom) == 0:
		return storage.API{}, invalidTarget("The API %q takes no exchanged tokens.", api.ID)
	case !slices.Contains(api.ExchangeFrom, clientID):
		return storage.API{}, fosite.ErrUnauthorizedClient.WithHintf("The API %q does not name this client among those that may exchange tokens for it.", api.ID)
	}
	return api, nil
}

// exchangeScopes is what the new token carries: the scopes asked for
// (default: every scope of the API the subject token carries), each a
// scope of the API, carried by the subject token (what the person granted)
// and registered for the requesting client (what it may ask of the API).
func exchangeScopes(api storage.API, asked, carried, registered []string) ([]string, error) {
	own := func(s string) bool {
		return slices.ContainsFunc(api.Scopes, func(sc storage.APIScope) bool { return sc.Name == s })
	}
	if len(asked) == 0 {
		var out []string
		for _, s := range carried {
			if own(s) && slices.Contains(registered, s) {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			return nil, fosite.ErrInvalidScope.WithHintf("The subject_token carries no scope of the API %q that this client is registered for.", api.ID)
		}
		return out, nil
	}
	var out []string
	for _, s := range asked {
		switch {
		case !own(s):
			return nil, fosite.ErrInvalidScope.WithHintf("The scope %q is not a scope of the API %q.", s, api.ID)
		case !slices.Contains(carried, s):
			return nil, fosite.ErrInvalidScope.WithHintf("The subject_token does not carry the scope %q.", s)
		case !slices.Contains(registered, s):
			return nil, fosite.ErrInvalidScope.WithHintf("This client is not registered for the scope %q.", s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// checkActor checks the optional actor token (delegation, §2.1): with one,
// its type is given and it is a live access token of the requesting client
// itself (its own client-credentials token, or one issued to it). The
// actor is then the client, whom act names in any case.
func (x *tokenExchange) checkActor(ctx context.Context, token, typ, clientID string) error {
	switch {
	case token == "" && typ == "":
		return nil
	case token == "" || typ == "":
		return fosite.ErrInvalidRequest.WithHint("actor_token and actor_token_type go together (RFC 8693 §2.1).")
	case typ != AccessTokenType:
		return fosite.ErrInvalidRequest.WithHintf("Unsupported actor_token_type: only %s.", AccessTokenType)
	}
	use, actor, err := x.p.OAuth2.IntrospectToken(ctx, token, fosite.AccessToken, NewSession())
	if err != nil {
		if errors.Is(err, storage.ErrUnavailable) {
			return err
		}
		return invalidSubject("The actor_token is not an access token issued by this server, or it expired or was revoked.")
	}
	if use != fosite.AccessToken || actor.GetClient().GetID() != clientID {
		return invalidSubject("The actor_token was not issued to this client: a client acts only as itself.")
	}
	return nil
}

// PopulateTokenEndpointResponse issues the exchanged access token (§2.2.1)
// and records the exchange, in one transaction: no token without its
// event. No refresh token: a new exchange is the way to a fresh token.
func (x *tokenExchange) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !x.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	sess, ok := req.GetSession().(*exchangeSession)
	if !ok {
		return fosite.ErrServerError.WithDebug("token exchange without its session")
	}
	store := x.p.store
	tx, err := store.BeginTX(ctx)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	tx = context.WithValue(tx, exchangeKey{}, exchangeClaims{sub: sess.exchange.sub, act: sess.exchange.act})
	// The row stores the plain session (fositestore decodes it into an
	// openid.DefaultSession).
	req.SetSession(sess.DefaultSession)
	if _, err := x.helper.IssueAccessToken(tx, x.config.GetAccessTokenLifespan(ctx), req, resp); err != nil {
		_ = store.Rollback(tx)
		return fosite.ErrServerError.WithWrap(err)
	}
	detail := map[string]any{"api": sess.exchange.api, "scopes": []string(req.GetGrantedScopes()), "subjectClient": sess.exchange.subjectClient}
	if err := audit.Record(tx, store, x.p.access.now(), audit.TokenExchanged, sess.GetSubject(), req.GetClient().GetID(), detail); err != nil {
		_ = store.Rollback(tx)
		return fosite.ErrServerError.WithWrap(err)
	}
	if err := store.Commit(tx); err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	resp.SetExtra("issued_token_type", AccessTokenType)
	return nil
}
