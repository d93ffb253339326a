package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/provider/clientkeys"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/storage"
)

// ClientAssertionType is the client_assertion_type of private_key_jwt
// (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// PrivateKeyJWT is the token_endpoint_auth_method of clients that
// authenticate with an assertion signed by their own key (OIDC Core §9).
const PrivateKeyJWT = "private_key_jwt"

const (
	// maxAssertionLifetime bounds how far ahead an assertion's exp may lie,
	// so that a captured assertion is not good for long and its jti need
	// not be remembered for long. An hour is what common clients sign
	// (zitadel/oidc's client, for one).
	maxAssertionLifetime = time.Hour
	// assertionSkew tolerates clocks a little apart (RFC 7523 §3 allows
	// "a small leeway"); the jti is kept as long (clientkeys.RememberUntil).
	assertionSkew = clientkeys.ClockSkew
	maxJTILength  = 256
)

// OneTimeStore records a key once across replicas (storage.Storage).
type OneTimeStore interface {
	UseOnce(ctx context.Context, key string, now, expiresAt time.Time) error
}

// assertionAuth authenticates private_key_jwt clients (RFC 7523 §3, OIDC
// Core §9) with tonearm's guarded fetcher and go-jose v4, in place of
// fosite's own check (go-jose v3 without EdDSA, an unguarded HTTP client
// for jwks_uri, and its audience list is the token endpoint alone).
type assertionAuth struct {
	issuer string
	store  *fositestore.Adapter
	keys   *clientkeys.Keys
	once   OneTimeStore
	now    func() time.Time
}

// clientAuthentication is the one client authentication of the token,
// introspection (with an assertion), revocation, PAR and device
// authorization endpoints: an assertion is checked here, anything else by
// fosite (secrets, public clients), with a re-read of a stale cached client.
func clientAuthentication(f *fosite.Fosite, a *assertionAuth) fosite.ClientAuthenticationStrategy {
	secrets := rereadingClientAuthentication(f, a.store)
	return func(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
		if form.Has("client_assertion_type") || form.Has("client_assertion") {
			return a.authenticate(ctx, r, form)
		}
		client, err := secrets(ctx, r, form)
		if err == nil && authMethod(client) == PrivateKeyJWT {
			// It has no secret, so fosite should never pass it; a client
			// registered for private_key_jwt authenticates no other way.
			return nil, invalidClient("This client authenticates with private_key_jwt: send a client_assertion.")
		}
		return client, err
	}
}

func authMethod(c fosite.Client) string {
	if fc, ok := c.(*fositestore.Client); ok {
		return fc.TokenEndpointAuthMethod
	}
	return ""
}

func invalidClient(hint string) error { return fosite.ErrInvalidClient.WithHint(hint) }

// errOneMethod: RFC 6749 §2.3 allows one authentication method per request.
var errOneMethod = invalidClient("Authenticate with a client_assertion alone, not also with a client secret or an Authorization header (RFC 6749 §2.3).")

// authenticate checks a client assertion; the jti is spent only once
// everything else holds, so a refused request spends nothing.
func (a *assertionAuth) authenticate(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	if a.once == nil || a.keys == nil {
		return nil, invalidClient("Client assertions are not enabled on this server.")
	}
	if form.Get("client_assertion_type") != ClientAssertionType {
		return nil, invalidClient("client_assertion_type must be " + ClientAssertionType + ".")
	}
	raw := form.Get("client_assertion")
	if raw == "" {
		return nil, invalidClient("The client_assertion is missing.")
	}
	if r.URL.Query().Has("client_assertion") {
		return nil, invalidClient("The client_assertion belongs in the request body, not in the URL.")
	}
	if form.Has("client_secret") {
		return nil, errOneMethod
	}
	basicID, basicSecret, basic := r.BasicAuth()
	if (basic && basicSecret != "") || (!basic && r.Header.Get("Authorization") != "") {
		return nil, errOneMethod
	}
	id, err := assertedClientID(raw)
	if err != nil {
		return nil, err
	}
	if named := form.Get("client_id"); named != "" && named != id {
		return nil, invalidClient("The client_id does not match the assertion's sub.")
	}
	if basic {
		// A Basic header with an empty password only names the client.
		if named, uerr := url.QueryUnescape(basicID); uerr != nil || named != id {
			return nil, invalidClient("The client named in the Authorization header does not match the assertion's sub.")
		}
	}
	client, claims, err := a.verify(ctx, r, id, raw)
	if err != nil && fosite.ErrorToRFC6749Error(err).ErrorField == fosite.ErrInvalidClient.ErrorField &&
		a.store.RereadCachedClient(ctx, id) {
		// Its method or keys may have changed moments ago (on another
		// replica, or by the command line): try the fresh copy once.
		client, claims, err = a.verify(ctx, r, id, raw)
	}
	if err != nil {
		return nil, err
	}
	// RFC 7523 §3 item 7: a jti is used once, remembered across replicas
	// until the assertion is refused as expired anyway: exp plus the
	// clock skew checkClaims allows (until exp alone, a replay in that
	// last minute would pass).
	switch err := a.once.UseOnce(ctx, "assertion:"+id+":"+claims.ID, a.now(), clientkeys.RememberUntil(claims.Expiry.Time())); {
	case errors.Is(err, storage.ErrAlreadyExists):
		return nil, invalidClient("This client_assertion was used before: sign a new one, with a new jti, for each request.")
	case err != nil:
		return nil, fosite.ErrServerError.WithWrap(err)
	}
	return client, nil
}

// AssertedClientID is the client a request's client_assertion names (its
// sub), unverified: for choosing defaults before the client authenticates,
// never as proof ("" when there is none).
func AssertedClientID(form url.Values) string {
	id, err := assertedClientID(form.Get("client_assertion"))
	if err != nil {
		return ""
	}
	return id
}

// assertedClientID reads, before any check, whom the assertion claims to
// be: its sub (= iss), which names the client whose keys must verify it.
func assertedClientID(raw string) (string, error) {
	payload, err := clientkeys.UnverifiedPayload(raw)
	if err != nil {
		return "", invalidClient("The client_assertion is not a JWT signed with RS256, PS256, ES256 or EdDSA (Ed25519).")
	}
	var c jwt.Claims
	if err := json.Unmarshal(payload, &c); err != nil || c.Subject == "" {
		return "", invalidClient("The client_assertion has no sub naming the client.")
	}
	return c.Subject, nil
}

// verify checks the client, the signature and the claims, all but the jti's
// single use.
func (a *assertionAuth) verify(ctx context.Context, r *http.Request, id, raw string) (fosite.Client, *jwt.Claims, error) {
	c, err := a.store.GetClient(ctx, id)
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, nil, invalidClient("The client in the assertion's sub is unknown.")
	}
	if err != nil {
		return nil, nil, fosite.ErrServerError.WithWrap(err)
	}
	fc, ok := c.(*fositestore.Client)
	if !ok || fc.TokenEndpointAuthMethod != PrivateKeyJWT {
		return nil, nil, invalidClient("This client is not registered for private_key_jwt and cannot authenticate with a client_assertion.")
	}
	payload, err := a.keys.Verify(ctx, fc, raw, nil)
	if err != nil {
		return nil, nil, keyError(err)
	}
	var claims jwt.Claims
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, nil, invalidClient("The client_assertion's claims are not a JSON object of JWT claims.")
	}
	if err := a.checkClaims(r, id, &claims); err != nil {
		return nil, nil, err
	}
	return fc, &claims, nil
}

// keyError words a failed signature check for the client.
func keyError(err error) error {
	var fetch *clientkeys.FetchError
	switch {
	case errors.As(err, &fetch):
		return invalidClient("The client's jwks_uri could not be used: " + fetch.Reason + ".")
	case errors.Is(err, clientkeys.ErrBadJWS):
		return invalidClient("The client_assertion is not a JWT signed with RS256, PS256, ES256 or EdDSA (Ed25519).")
	case errors.Is(err, clientkeys.ErrNoMatchingKey):
		return invalidClient("No registered key of the client matches the assertion's kid and alg.")
	case errors.Is(err, clientkeys.ErrBadSignature):
		return invalidClient("The client_assertion's signature does not verify with the client's keys.")
	default:
		return invalidClient(err.Error())
	}
}

// checkClaims applies RFC 7523 §3 and OIDC Core §9 to a verified assertion.
func (a *assertionAuth) checkClaims(r *http.Request, id string, c *jwt.Claims) error {
	now := a.now()
	switch {
	case c.Issuer != id || c.Subject != id:
		return invalidClient("The assertion's iss and sub must both be the client_id.")
	case !a.audienceOK(r, c.Audience):
		return invalidClient("The assertion's aud must contain the token endpoint URL or the issuer.")
	case c.Expiry == nil:
		return invalidClient("The assertion has no exp.")
	case clientkeys.Expired(now, c.Expiry.Time()):
		return invalidClient("The assertion has expired.")
	case c.Expiry.Time().After(now.Add(maxAssertionLifetime + assertionSkew)):
		return invalidClient("The assertion's exp is more than an hour ahead.")
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(assertionSkew)):
		return invalidClient("The assertion is not valid yet (nbf).")
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(assertionSkew)):
		return invalidClient("The assertion was issued in the future (iat).")
	case c.ID == "" || len(c.ID) > maxJTILength:
		return invalidClient("The assertion needs a jti (at most 256 characters).")
	}
	return nil
}

// assertionEndpoints are the endpoints an assertion may also name as its
// audience when presented there.
var assertionEndpoints = map[string]bool{TokenPath: true, PARPath: true, IntrospectPath: true, RevokePath: true, DeviceAuthorizationPath: true}

// audienceOK: OIDC Core §9 names the token endpoint; RFC 7523 §3 allows
// the issuer; the endpoint the assertion is presented to (PAR,
// introspection, revocation, device authorization) identifies tonearm too.
func (a *assertionAuth) audienceOK(r *http.Request, aud jwt.Audience) bool {
	base := strings.TrimRight(a.issuer, "/")
	accepted := []string{a.issuer, base, base + TokenPath}
	if assertionEndpoints[r.URL.Path] {
		accepted = append(accepted, base+r.URL.Path)
	}
	for _, want := range accepted {
		if aud.Contains(want) {
			return true
		}
	}
	return false
}
