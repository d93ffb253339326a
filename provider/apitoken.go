package provider

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ory/fosite/handler/openid"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/storage"
)

// tonearm's own JSON APIs (/api/me, the User API's bearer calls,
// /api/admin/) are a resource server like any other: a token is good there
// only if it was issued for them (aud holds APIIdentifier) and carries the
// scope the endpoint needs. A token granted openid, profile, email or
// listenbrainz is for userinfo and nothing else of tonearm's.
const (
	// ScopeAccount lets a client act on the signed-in user's own account.
	ScopeAccount = "account"
	// ScopeAdmin lets a client administer tonearm: for a client-credentials
	// token of a client registered with it, or for a user's token while
	// the user is an active admin.
	ScopeAdmin = "admin"
)

// APIScopes are the scopes of tonearm's own API.
var APIScopes = []string{ScopeAccount, ScopeAdmin}

// APIIdentifier is tonearm's own API identifier for an issuer:
// {issuer}/api.
func APIIdentifier(issuer string) string { return strings.TrimRight(issuer, "/") + "/api" }

// APIIdentifier returns tonearm's own API identifier.
func (p *Provider) APIIdentifier() string { return p.apiID }

// builtinScopeDescriptions are tonearm's words for its own API's scopes
// (account, admin), marked for the catalogs: the consent page and the
// console translate them (ScopeLines, the APIs page).
var builtinScopeDescriptions = [...]string{
	locale.M("Manage your tonearm account: change your email, password and ListenBrainz link"),
	locale.M("Administer tonearm"),
}

// BuiltinAPI is tonearm's own API as a resource server among the others:
// identifier {issuer}/api, scopes account and admin.
func BuiltinAPI(issuer string) storage.API {
	return storage.API{
		ID: APIIdentifier(issuer), Name: "tonearm",
		Scopes: []storage.APIScope{
			{Name: ScopeAccount, Description: builtinScopeDescriptions[0]},
			{Name: ScopeAdmin, Description: builtinScopeDescriptions[1]},
		},
		Claims: []string{},
	}
}

// acceptGrantedAudience is fosite's audience check. fosite compares a
// request's fosite-specific "audience" parameter, and a refresh's inherited
// audience, with a per-client registration tonearm does not use: the
// audience comes from RFC 8707 resource parameters and the granted scopes,
// decided and checked by Grant and Narrow, and the "audience" parameter is
// never granted.
func acceptGrantedAudience(_, _ []string) error { return nil }

// Errors of VerifyAPIToken; none says more than the caller may know.
var (
	ErrAPITokenInvalid  = errors.New("provider: the access token is invalid, expired or revoked")
	ErrAPITokenScope    = errors.New("provider: the access token lacks the scope this call needs")
	ErrAPITokenAudience = errors.New("provider: the access token was not issued for tonearm's API")
)

// APIToken is a bearer token verified for tonearm's API.
type APIToken struct {
	ClientID string
	// Subject is the user, or the client itself (client credentials).
	Subject string
	// ClientSubject is the token's sub: the person as its client sees
	// them (a pairwise client's own identifier, OpenID Connect Core §8),
	// what a client may send back to name them.
	ClientSubject string
	Scopes        []string
	// AuthTime is when the user signed in; zero for client credentials.
	AuthTime time.Time
	// ACR is how strongly the user signed in: ACRMultiFactor after two
	// factors, "" after one (and for client credentials).
	ACR string
	// JKT is the key the token is bound to (cnf.jkt, RFC 9449 §6.1): ""
	// for a bearer token.
	JKT string
}

// HasScope reports whether the token carries scope.
func (t APIToken) HasScope(scope string) bool { return has(t.Scopes, scope) }

// VerifyAPIToken is the one check of a bearer token presented to tonearm's
// own APIs. The token is taken only whole: its signature verifies against a
// published key of ours, typ is at+jwt, iss is ours, it has not expired,
// aud contains APIIdentifier, scope carries at least one of anyOf, and its
// live row (found by the hash of the entire token, so not revoked) says the
// same client, subject, scopes and audience.
func (p *Provider) VerifyAPIToken(ctx context.Context, token string, anyOf ...string) (APIToken, error) {
	claims, err := p.access.ParseAccessToken(ctx, token)
	if err != nil {
		return APIToken{}, ErrAPITokenInvalid
	}
	scope, _ := claims["scope"].(string)
	scopes := strings.Fields(scope)
	var jkt string
	if cnf, ok := claims["cnf"].(map[string]any); ok {
		jkt, _ = cnf["jkt"].(string)
	}
	// A refused token still says its DPoP key: the caller checks the
	// binding first (RFC 9449 §7.1), so a stolen bound token is told it is
	// unusable without its key before it is told what it lacks.
	if !hasAny(scopes, anyOf) {
		return APIToken{JKT: jkt}, ErrAPITokenScope
	}
	if !audienceHas(claims["aud"], p.apiID) {
		return APIToken{JKT: jkt}, ErrAPITokenAudience
	}
	ar, err := p.VerifyAccessToken(ctx, token)
	if errors.Is(err, storage.ErrUnavailable) {
		return APIToken{}, err // not the token's fault: 503, not 401
	}
	if err != nil {
		return APIToken{}, ErrAPITokenInvalid
	}
	clientID := ar.GetClient().GetID()
	subject := ar.GetSession().GetSubject()
	// The token says sub as its client sees the person (pairwise or
	// not); the row holds the user, whom tonearm's APIs act for.
	sub := p.subjects.For(ar.GetClient(), subject)
	if subject == "" {
		subject, sub = clientID, clientID
	}
	if claims["client_id"] != clientID || claims["sub"] != sub ||
		!ar.GetGrantedAudience().Has(p.apiID) || !sameSet(ar.GetGrantedScopes(), scopes) {
		return APIToken{}, ErrAPITokenInvalid
	}
	// acr is read from the signed payload: the token was taken only whole
	// (its live row is keyed by the exact bytes this server signed).
	acr, _ := claims["acr"].(string)
	t := APIToken{ClientID: clientID, Subject: subject, ClientSubject: sub, Scopes: scopes, ACR: acr}
	t.JKT = jkt
	if s, ok := ar.GetSession().(*openid.DefaultSession); ok && s.Claims != nil {
		t.AuthTime = s.Claims.AuthTime
	}
	return t, nil
}

func hasAny(scopes, anyOf []string) bool {
	for _, s := range anyOf {
		if has(scopes, s) {
			return true
		}
	}
	return false
}

func audienceHas(aud any, id string) bool {
	switch a := aud.(type) {
	case string:
		return a == id
	case []any:
		for _, v := range a {
			if v == id {
				return true
			}
		}
	}
	return false
}

func sameSet(a, b []string) bool {
	for _, s := range a {
		if !has(b, s) {
			return false
		}
	}
	for _, s := range b {
		if !has(a, s) {
			return false
		}
	}
	return true
}
