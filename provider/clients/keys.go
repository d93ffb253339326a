package clients

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/tonearm-idp/tonearm/storage"
)

// The metadata of a client that proves itself with its own keys
// (private_key_jwt, RFC 7523 and OpenID Connect Core §9), signs its
// authorization requests (RFC 9101) or gets pairwise subjects (OpenID
// Connect Core §8): one rule for every path that registers or edits a
// client (CLI, admin API, console, /developer, RFC 7591/7592, apply).

// Token endpoint authentication methods (RFC 7591 §2 names).
const (
	AuthNone              = "none"
	AuthSecretBasic       = "client_secret_basic"
	AuthSecretPost        = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
	maxJWKSBytes          = 64 << 10
	maxJWKSKeys           = 20
	maxRequestURIs        = 20
	minRSABits            = 2048
	requestURIsField      = "request_uris"
	sectorIdentifierField = "sector_identifier_uri"
)

// RequestObjectAlgs are the request_object_signing_alg values a client may
// register ("" any of the signing ones; "none" unsigned objects only).
var RequestObjectAlgs = []string{"none", "RS256", "PS256", "ES256", "EdDSA"}

// SectorCheck checks a pairwise client's sector_identifier_uri against its
// redirect URIs (OpenID Connect Core §8.1: the document it names must list
// every one of them); it is called for every pairwise client, with uri ""
// when it names none (then its redirect URIs must have one host). nil
// checks the URI's syntax only.
type SectorCheck func(ctx context.Context, uri string, redirectURIs []string) error

// Option configures a Registry.
type Option func(*Registry)

// WithIssuer tells the registry the server's issuer: while it is on a
// loopback host (development, tests) a client's jwks_uri, request_uris
// and sector_identifier_uri may be http on loopback too; otherwise they
// are https only, since tonearm fetches them.
func WithIssuer(issuer string) Option {
	return func(r *Registry) {
		u, err := url.Parse(issuer)
		r.loopbackIssuer = err == nil && isLoopbackHost(u.Hostname())
	}
}

// WithSectorCheck sets the check of sector_identifier_uri's content.
func WithSectorCheck(check SectorCheck) Option {
	return func(r *Registry) { r.sectorCheck = check }
}

// AuthMethod is the token endpoint authentication method c uses: the
// one it registered, or the default for its kind.
func AuthMethod(c storage.Client) string {
	switch {
	case c.TokenEndpointAuthMethod != "":
		return c.TokenEndpointAuthMethod
	case c.Public:
		return AuthNone
	}
	return AuthSecretBasic
}

// validateKeys checks the Keys of spec (redirects: its checked redirect
// URIs) and returns them as they are stored.
func (r *Registry) validateKeys(ctx context.Context, spec Spec, redirects []string) (Keys, error) {
	k := spec.Keys
	switch k.TokenEndpointAuthMethod {
	case "":
	case AuthNone:
		if !spec.Public {
			return Keys{}, invalid("token_endpoint_auth_method none is for public clients; a confidential client uses client_secret_basic, client_secret_post or private_key_jwt")
		}
	case AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT:
		if spec.Public {
			return Keys{}, invalid("a public client authenticates with none: %s is for confidential clients", k.TokenEndpointAuthMethod)
		}
	default:
		return Keys{}, invalid("token_endpoint_auth_method must be none, client_secret_basic, client_secret_post or private_key_jwt")
	}
	k.JWKS = strings.TrimSpace(k.JWKS)
	if k.JWKS != "" && k.JWKSURI != "" {
		return Keys{}, invalid("give the client's keys as jwks or jwks_uri, not both")
	}
	if k.TokenEndpointAuthMethod == AuthPrivateKeyJWT && k.JWKS == "" && k.JWKSURI == "" {
		return Keys{}, invalid("a private_key_jwt client needs its public keys: jwks (a JWK Set) or jwks_uri")
	}
	if k.JWKS != "" {
		canonical, err := checkJWKS(k.JWKS)
		if err != nil {
			return Keys{}, err
		}
		if err := checkKeyUse(canonical); err != nil {
			return Keys{}, err
		}
		k.JWKS = canonical
	}
	if k.JWKSURI != "" {
		if err := r.clientURL(k.JWKSURI, "jwks_uri", false); err != nil {
			return Keys{}, err
		}
	}
	k.RequestURIs = dedupe(k.RequestURIs)
	if len(k.RequestURIs) > maxRequestURIs {
		return Keys{}, invalid("at most %d request URIs", maxRequestURIs).On(requestURIsField)
	}
	for _, u := range k.RequestURIs {
		// OpenID Connect Dynamic Registration §2: a request_uris entry
		// may carry a fragment (the object's hash).
		if err := r.clientURL(u, requestURIsField, true); err != nil {
			return Keys{}, err
		}
	}
	if k.RequestURIs == nil {
		k.RequestURIs = []string{}
	}
	if k.RequestObjectSigningAlg != "" && !slices.Contains(RequestObjectAlgs, k.RequestObjectSigningAlg) {
		return Keys{}, invalid("request_object_signing_alg must be one of %s", strings.Join(RequestObjectAlgs, ", "))
	}
	return r.validateSubject(ctx, k, redirects)
}

// validateSubject checks subject_type and sector_identifier_uri.
func (r *Registry) validateSubject(ctx context.Context, k Keys, redirects []string) (Keys, error) {
	switch k.SubjectType {
	case "":
		k.SubjectType = storage.SubjectPublic
	case storage.SubjectPublic, storage.SubjectPairwise:
	default:
		return Keys{}, invalid("subject_type must be public or pairwise")
	}
	if k.SectorIdentifierURI != "" {
		if k.SubjectType != storage.SubjectPairwise {
			return Keys{}, invalid("sector_identifier_uri is for pairwise subjects (subject_type pairwise)").On(sectorIdentifierField)
		}
		if err := r.clientURL(k.SectorIdentifierURI, sectorIdentifierField, false); err != nil {
			return Keys{}, err
		}
	}
	if k.SubjectType == storage.SubjectPairwise && r.sectorCheck != nil {
		if err := r.sectorCheck(ctx, k.SectorIdentifierURI, redirects); err != nil {
			return Keys{}, err
		}
	}
	return k, nil
}

// clientURL is the rule for the URLs tonearm fetches for a client
// (jwks_uri, request_uris, sector_identifier_uri): absolute https URLs
// without user info, at most MaxURILength characters; http only on a
// loopback host while the issuer itself is loopback. fragmentOK: a
// fragment is allowed (request_uris).
func (r *Registry) clientURL(raw, field string, fragmentOK bool) error {
	bad := func(why string) error {
		return invalid("%s %q %s", field, shortURI(raw), why).On(field)
	}
	if n := utf8.RuneCountInString(raw); n > MaxURILength {
		return bad("is too long: at most 2,000 characters")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return bad("is not an absolute URL with a host")
	case u.User != nil:
		return bad("must not contain a user name or password (user:password@)")
	case !fragmentOK && (u.Fragment != "" || strings.Contains(raw, "#")):
		return bad("must not contain a fragment")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()) && r.loopbackIssuer:
		return nil
	}
	return bad("must be an https URL")
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// privateMembers are the JWK members only a private or symmetric key has
// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// checkJWKS checks a client's JWK Set (RFC 7517 §5): public signing keys
// only (RSA of at least 2048 bits, EC P-256, Ed25519), no private or
// symmetric key (a private key pasted by mistake is refused, never
// stored), kids unique, at most 20 keys and 64 KiB. It returns the set as
// compact JSON with its members sorted, so the same keys are stored
// (and compared) the same way whichever surface registered them.
func checkJWKS(doc string) (string, error) {
	if len(doc) > maxJWKSBytes {
		return "", invalid("jwks is %d bytes: at most 64 KiB", len(doc))
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(doc), &raw); err != nil || raw.Keys == nil {
		return "", invalid("jwks must be a JWK Set: a JSON object with a \"keys\" array (RFC 7517 §5)")
	}
	switch {
	case len(raw.Keys) == 0:
		return "", invalid("jwks has no keys")
	case len(raw.Keys) > maxJWKSKeys:
		return "", invalid("jwks has %d keys: at most %d", len(raw.Keys), maxJWKSKeys)
	}
	// Before go-jose reads them: a private key must be named as such,
	// not as a key that cannot be read.
	for i, members := range raw.Keys {
		if members["kty"] == "oct" {
			return "", invalid("jwks key %d is a symmetric (oct) key: register public keys only", i+1)
		}
		for _, m := range privateMembers {
			if _, ok := members[m]; ok {
				return "", invalid("jwks key %d holds a private key (%q): register the public key only, and keep the private key with the app", i+1, m)
			}
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(doc), &set); err != nil {
		return "", invalid("jwks holds a key that cannot be read: %s", strings.TrimPrefix(err.Error(), "go-jose/go-jose: "))
	}
	kids := map[string]bool{}
	for i, key := range set.Keys {
		if key.KeyID != "" {
			if kids[key.KeyID] {
				return "", invalid("jwks has two keys with kid %q: each kid must be unique", key.KeyID)
			}
			kids[key.KeyID] = true
		}
		if err := checkPublicKey(i+1, key.Key); err != nil {
			return "", err
		}
	}
	var sorted any
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&sorted); err != nil {
		return "", invalid("jwks must be a JWK Set")
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(sorted); err != nil {
		return "", invalid("jwks must be a JWK Set")
	}
	return strings.TrimSpace(out.String()), nil
}

// checkPublicKey admits the key types tonearm verifies (RS256, PS256,
// ES256, EdDSA).
func checkPublicKey(n int, key any) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return invalid("jwks key %d is an RSA key of %d bits: at least %d", n, k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return invalid("jwks key %d is on curve %s: only P-256 (ES256) is supported", n, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return invalid("jwks key %d is not a public RSA, EC P-256 or Ed25519 key", n)
	}
	return nil
}

// keepSubject holds an update to the client's subject type: "" keeps it,
// and another one is refused, since every person's sub at the client
// would change (OpenID Connect Core §8: a sub never changes).
func keepSubject(cur storage.Client, spec *Keys) error {
	now := cur.SubjectType
	if now == "" {
		now = storage.SubjectPublic
	}
	if spec.SubjectType == "" {
		spec.SubjectType = now
	}
	if spec.SubjectType != now {
		return invalid("the subject type of a client cannot change (%s to %s): the sub of every person it knows would change; register a new client instead", now, spec.SubjectType)
	}
	return nil
}

// NeedsSecret reports whether c authenticates with a secret it does not
// have (turned from private_key_jwt to a secret method): it cannot sign
// in until its operator gives it one (tonearm clients rotate-secret).
func NeedsSecret(c storage.Client) bool {
	m := AuthMethod(c)
	return (m == AuthSecretBasic || m == AuthSecretPost) && len(c.SecretHash) == 0
}

// KeysOf is c's Keys as every surface shows them: its authentication
// method (AuthMethod), request URIs ([] for none) and subject type
// (public when unset).
func KeysOf(c storage.Client) Keys {
	k := Keys{TokenEndpointAuthMethod: AuthMethod(c), JWKS: c.JWKS, JWKSURI: c.JWKSURI, RequestURIs: c.RequestURIs,
		RequestObjectSigningAlg: c.RequestObjectSigningAlg, SubjectType: c.SubjectType, SectorIdentifierURI: c.SectorIdentifierURI}
	if k.RequestURIs == nil {
		k.RequestURIs = []string{}
	}
	if k.SubjectType == "" {
		k.SubjectType = storage.SubjectPublic
	}
	return k
}

// RawJWKS is k's JWK Set as JSON to embed in a document (nil: none).
func (k Keys) RawJWKS() json.RawMessage {
	if k.JWKS == "" {
		return nil
	}
	return json.RawMessage(k.JWKS)
}
