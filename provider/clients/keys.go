package clients

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tonearm-idp/tonearm/provider/clientkeys"
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
	maxRequestURIs        = 20
	requestURIsField      = "request_uris"
	sectorIdentifierField = "sector_identifier_uri"
)

// RequestObjectAlgs are the request_object_signing_alg values a client may
// register ("" any of the signing ones; "none" unsigned objects only).
// EdDSA and Ed25519 (RFC 9864's name for it) accept objects under either.
var RequestObjectAlgs = []string{"none", "RS256", "PS256", "ES256", "EdDSA", "Ed25519"}

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

// SectorOf computes a pairwise client's sector (provider.Sector): the
// input of every sub it sees.
type SectorOf func(sectorIdentifierURI string, redirectURIs []string, clientID string) string

// WithSectorOf makes the registry refuse an update that would move a
// pairwise client to another sector (see keepSector).
func WithSectorOf(sector SectorOf) Option {
	return func(r *Registry) { r.sectorOf = sector }
}

// keepSector refuses an update of a pairwise client that changes its
// sector (a new redirect host, a new or removed sector_identifier_uri):
// every person's sub at the client is computed from it and would change
// (OpenID Connect Core §8: a sub never changes for a client), and the app
// would take each of them for a new person.
func (r *Registry) keepSector(cur, next storage.Client) error {
	if r.sectorOf == nil || cur.SubjectType != storage.SubjectPairwise {
		return nil
	}
	was := r.sectorOf(cur.SectorIdentifierURI, cur.RedirectURIs, cur.ID)
	now := r.sectorOf(next.SectorIdentifierURI, next.RedirectURIs, cur.ID)
	if was == now {
		return nil
	}
	const why = "this change would move the pairwise client from sector %s to %s, and so change the sub of every person it knows (OpenID Connect Core §8.1): "
	if strings.HasPrefix(was, "client:") {
		// A sector of its own (no single redirect host, or loopback
		// ones): no sector_identifier_uri can name it.
		return invalid(why+"keep its redirect URIs on loopback or on several hosts, or register a new client", was, now).On(sectorIdentifierField)
	}
	return invalid(why+"to keep the sector, register a sector_identifier_uri on host %s whose document lists the new redirect URIs", was, now, was).On(sectorIdentifierField)
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

// checkJWKS checks a client's JWK Set with the rule every key set meets,
// registered or fetched (clientkeys.CheckSet), and returns it as stored.
func checkJWKS(doc string) (string, error) {
	canonical, err := clientkeys.CheckSet(doc)
	if err != nil {
		return "", invalid("%s", err)
	}
	return canonical, nil
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
