// Package clients registers OAuth2 clients: validation, secret generation
// and the keyed hash their secrets are stored and checked with.
package clients

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// SecretHasher hashes client secrets with HMAC-SHA256 under a server key.
// Generated secrets carry 256 bits of entropy, so a slow password hash
// would add nothing but latency to every client authentication; the key
// means a stolen database alone does not allow offline guessing of weaker,
// operator-chosen secrets. It implements fosite.Hasher.
//
// A keyed hash cannot be moved to a new key without the value it hides, so
// after TONEARM_SECRET is rotated the hashes made under the previous
// secret keep being compared under its key too (previous).
type SecretHasher struct {
	key      []byte
	previous [][]byte
	// rekey replaces a stored hash that matched only under a previous key
	// by the current key's (nil: left as it is).
	rekey func(ctx context.Context, old, current []byte)
}

// OnPreviousKey sets what the hasher calls when a value matched a stored
// hash only under a previous key: with that hash and the value's hash
// under the current key, so the stored one can be replaced and the value
// keeps matching once the previous secret is dropped. (A keyed hash cannot
// be moved without the value; this is the moment the value is known.)
func (h *SecretHasher) OnPreviousKey(rekey func(ctx context.Context, old, current []byte)) {
	h.rekey = rekey
}

// NewSecretHasher returns a hasher keyed by key (32 bytes) that also
// accepts hashes made under the previous keys.
func NewSecretHasher(key []byte, previous ...[]byte) (*SecretHasher, error) {
	if len(key) < 32 {
		return nil, errors.New("clients: secret hasher key must be at least 32 bytes")
	}
	for _, k := range previous {
		if len(k) < 32 {
			return nil, errors.New("clients: secret hasher key must be at least 32 bytes")
		}
	}
	return &SecretHasher{key: key, previous: previous}, nil
}

// Hashes returns data's hash under the current key, then under each
// previous key: a value looked up by its hash is looked up by each.
func (h *SecretHasher) Hashes(data []byte) [][]byte {
	out := make([][]byte, 0, 1+len(h.previous))
	for _, k := range append([][]byte{h.key}, h.previous...) {
		m := hmac.New(sha256.New, k)
		m.Write(data)
		out = append(out, m.Sum(nil))
	}
	return out
}

// Hash implements fosite.Hasher.
func (h *SecretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	m := hmac.New(sha256.New, h.key)
	m.Write(data)
	return m.Sum(nil), nil
}

// ErrSecretMismatch is returned by Compare for a wrong secret.
var ErrSecretMismatch = errors.New("clients: secret does not match")

// Compare implements fosite.Hasher in constant time.
// Every key is tried, so the time taken does not tell under which key the
// hash was made.
func (h *SecretHasher) Compare(ctx context.Context, hash, data []byte) error {
	sums := h.Hashes(data)
	match := -1
	for i, sum := range sums {
		if hmac.Equal(hash, sum) && match < 0 {
			match = i
		}
	}
	if len(hash) == 0 || match < 0 {
		return ErrSecretMismatch
	}
	if match > 0 {
		h.stale(ctx, hash, sums[0])
	}
	return nil
}

func (h *SecretHasher) stale(ctx context.Context, old, current []byte) {
	if h.rekey != nil {
		h.rekey(ctx, old, current)
	}
}

// Store is what the registry needs from storage: the clients, their
// developers, and the audit events it records with each change (in the
// change's transaction).
type Store interface {
	audit.TxStore
	CreateClient(ctx context.Context, c storage.Client) error
	GetClient(ctx context.Context, id string) (storage.Client, error)
	UpdateClient(ctx context.Context, id string, update func(storage.Client) (storage.Client, error)) (storage.Client, error)
	ListClients(ctx context.Context) ([]storage.Client, error)
	DeleteClient(ctx context.Context, id string) error
	Users
}

// ScopeDirectory tells which scopes registered APIs define, and which of
// them apps registered by developers may ask for.
type ScopeDirectory interface {
	ScopeDefined(ctx context.Context, scope string) (bool, error)
	ScopeOpenToApps(ctx context.Context, scope string) (bool, error)
}

// Registry creates, lists and deletes clients.
type Registry struct {
	store  Store
	hasher *SecretHasher
	now    func() time.Time
	// apiScopes (optional) admits the scopes APIs define.
	apiScopes ScopeDirectory
	// loopbackIssuer: the issuer is on a loopback host (WithIssuer).
	loopbackIssuer bool
	sectorCheck    SectorCheck
	sectorOf       SectorOf
}

// AdmitAPIScopes lets clients hold the scopes registered APIs define.
func (r *Registry) AdmitAPIScopes(d ScopeDirectory) { r.apiScopes = d }

// NewRegistry returns a Registry.
func NewRegistry(store Store, hasher *SecretHasher, opts ...Option) (*Registry, error) {
	if store == nil || hasher == nil {
		return nil, errors.New("clients: store and hasher are required")
	}
	r := &Registry{store: store, hasher: hasher, now: time.Now}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// DeviceCodeGrant is the Device Authorization Grant (RFC 8628).
const DeviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"

// Supported values.
var (
	GrantTypes     = []string{"authorization_code", "refresh_token", "client_credentials", DeviceCodeGrant}
	KnownScopes    = []string{"openid", "profile", "email", "listenbrainz", "offline_access", "roles", "account", "admin"}
	DefaultScopes  = []string{"openid", "profile", "email", "listenbrainz", "offline_access"}
	DefaultGrants  = []string{"authorization_code", "refresh_token"}
	minSecretBytes = 32
)

// Spec describes a client to create.
type Spec struct {
	ID                     string
	Secret                 string // empty: generate one (confidential clients)
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string // empty: authorization_code + refresh_token
	Scopes                 []string // empty: DefaultScopes
	Public                 bool
	FirstParty             bool
	// AllowNoPKCE: a legacy confidential client that cannot send PKCE.
	AllowNoPKCE bool
	// RequirePAR: authorization requests must be pushed (RFC 9126).
	RequirePAR bool
	// RequireDPoP: token requests must carry a DPoP proof (RFC 9449).
	RequireDPoP bool
	// BackchannelLogoutURI receives OpenID Connect Back-Channel Logout
	// tokens (https, or http on loopback; no fragment).
	BackchannelLogoutURI string
	// IDTokenAlg signs its ID tokens: RS256 (default) or ES256.
	IDTokenAlg string
	Display
	Keys
	// Disabled, on Update, disables or enables the client in the same
	// write (nil: as it is).
	Disabled *bool
}

// Keys is how a client proves itself and signs its requests, and which
// subject identifiers it gets (RFC 7591 / OIDC Dynamic Registration names).
type Keys struct {
	// TokenEndpointAuthMethod: "" (the default for its kind),
	// client_secret_basic, client_secret_post, private_key_jwt or none.
	TokenEndpointAuthMethod string
	// JWKS is a JSON Web Key Set document of public keys; JWKSURI where
	// to fetch one instead (at most one of them).
	JWKS, JWKSURI string
	// RequestURIs are the request_uri URLs it may use (RFC 9101).
	RequestURIs []string
	// RequestObjectSigningAlg: "" any supported, "none" unsigned only.
	RequestObjectSigningAlg string
	// SubjectType: "" (the default for how it is registered), public or
	// pairwise; SectorIdentifierURI for pairwise (OIDC Core §8.1).
	SubjectType, SectorIdentifierURI string
}

// Display is what the login and consent pages show of a client.
type Display struct {
	Name      string // shown instead of the ID
	LogoURI   string // https: or a data:image/ URI; never fetched by tonearm
	ClientURI string // the app's home page
	PolicyURI string // its privacy policy
	TosURI    string // its terms of service
}

// maxDataLogo bounds a logo given inline as a data: URI.
const maxDataLogo = 64 << 10

var dataLogo = regexp.MustCompile(`^data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/]+={0,2}$`)

func (d Display) validate() error {
	if n := utf8.RuneCountInString(d.Name); n > 100 || !utf8.ValidString(d.Name) || strings.IndexFunc(d.Name, unicode.IsControl) >= 0 {
		// Messages name no one path's field (a CLI flag, a JSON member, a
		// form box): every path shows them.
		return invalid("the name must be at most 100 printable characters")
	}
	if d.LogoURI != "" {
		if strings.HasPrefix(d.LogoURI, "data:") {
			if len(d.LogoURI) > maxDataLogo || !dataLogo.MatchString(d.LogoURI) {
				return invalid("the logo must be an https URL or a base64 data:image/ URI (png, jpeg, gif, webp or svg+xml) of at most 64 KiB")
			}
		} else if err := webURL(d.LogoURI, true); err != nil {
			return invalid("the logo must be an https URL or a base64 data:image/ URI (png, jpeg, gif, webp or svg+xml) of at most 64 KiB")
		}
	}
	for _, f := range []struct{ what, value string }{{"home page", d.ClientURI}, {"privacy policy", d.PolicyURI}, {"terms of service", d.TosURI}} {
		if f.value != "" && webURL(f.value, false) != nil {
			return invalid("the %s URL must be an absolute https URL (http only on loopback), at most 2,000 characters", f.what)
		}
	}
	return nil
}

// invalid is a refused Spec (fault.Invalid); the message is safe to print.
// Its Field names the metadata at fault when it is a URI the logout or
// redirect rules refused, in RFC 7591 / OpenID Connect names
// ("redirect_uris" is RFC 7591's invalid_redirect_uri;
// "post_logout_redirect_uris", "backchannel_logout_uri").
func invalid(format string, args ...any) *fault.Error {
	return fault.Errorf(fault.Invalid, format, args...)
}

// ErrExists: the client ID is taken.
var ErrExists = fault.New(fault.Conflict, "a client with this ID already exists").Saying("A client with this ID already exists")

// ErrNotFound: no such client.
var ErrNotFound = fault.New(fault.NotFound, "no such client").Saying("No such client")

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$`)

// validate checks spec (but its ID and secret) and returns the client it
// describes, without a secret.
func (r *Registry) validate(ctx context.Context, spec Spec) (storage.Client, error) {
	grants := dedupe(spec.GrantTypes)
	if len(grants) == 0 {
		grants = append([]string(nil), DefaultGrants...)
	}
	for _, g := range grants {
		if !contains(GrantTypes, g) {
			return storage.Client{}, invalid("unsupported grant type %q (supported: %s)", g, strings.Join(GrantTypes, ", "))
		}
	}
	if spec.AllowNoPKCE && spec.Public {
		return storage.Client{}, invalid("a public client must use PKCE: allowing a client without PKCE is only for legacy confidential clients")
	}
	if spec.Public && contains(grants, "client_credentials") {
		return storage.Client{}, invalid("a public client cannot use client_credentials: it has no secret")
	}
	if contains(grants, "refresh_token") && !contains(grants, "authorization_code") && !contains(grants, DeviceCodeGrant) {
		return storage.Client{}, invalid("refresh_token needs authorization_code or the device code grant")
	}
	scopes, err := r.clientScopes(ctx, spec)
	if err != nil {
		return storage.Client{}, err
	}
	redirects := dedupe(spec.RedirectURIs)
	if contains(grants, "authorization_code") && len(redirects) == 0 {
		return storage.Client{}, invalid("at least one redirect URI is required for authorization_code")
	}
	for _, u := range redirects {
		if err := validateRedirectURI(u); err != nil {
			return storage.Client{}, err
		}
		if privateUse(u) && !spec.Public {
			return storage.Client{}, redirectInvalid("redirect URI %q: a private-use scheme is for native apps (public clients); use https, or http on loopback", u)
		}
	}
	if err := validateBackchannelURI(spec.BackchannelLogoutURI); err != nil {
		return storage.Client{}, err
	}
	if err := spec.Display.validate(); err != nil {
		return storage.Client{}, err
	}
	postLogout := dedupe(spec.PostLogoutRedirectURIs)
	for _, u := range postLogout {
		if err := validatePostLogoutURI(u); err != nil {
			return storage.Client{}, err
		}
		// The same rule as the redirect URIs': the browser goes there
		// just the same, and only a native app can receive it.
		if privateUse(u) && !spec.Public {
			return storage.Client{}, invalid("post-logout redirect URI %q: a private-use scheme is for native apps (public clients); use https, or http on loopback", u).
				On("post_logout_redirect_uris")
		}
	}
	if redirects == nil {
		redirects = []string{}
	}
	if postLogout == nil {
		postLogout = []string{}
	}
	keys, err := r.validateKeys(ctx, spec, redirects)
	if err != nil {
		return storage.Client{}, err
	}
	alg, err := idTokenAlg(spec.IDTokenAlg)
	if err != nil {
		return storage.Client{}, err
	}
	c := storage.Client{
		IDTokenAlg: alg,
		ID:         spec.ID, RedirectURIs: redirects, PostLogoutRedirectURIs: postLogout, GrantTypes: grants,
		ResponseTypes: []string{"code"}, Scopes: scopes, Audience: []string{},
		Public: spec.Public, FirstParty: spec.FirstParty, AllowNoPKCE: spec.AllowNoPKCE, RequirePAR: spec.RequirePAR,
		RequireDPoP:          spec.RequireDPoP,
		BackchannelLogoutURI: spec.BackchannelLogoutURI,
		Name:                 strings.TrimSpace(spec.Name), LogoURI: spec.LogoURI, ClientURI: spec.ClientURI, PolicyURI: spec.PolicyURI, TosURI: spec.TosURI,
		TokenEndpointAuthMethod: keys.TokenEndpointAuthMethod, JWKS: keys.JWKS, JWKSURI: keys.JWKSURI,
		RequestURIs: keys.RequestURIs, RequestObjectSigningAlg: keys.RequestObjectSigningAlg,
		SubjectType: keys.SubjectType, SectorIdentifierURI: keys.SectorIdentifierURI,
	}
	if !contains(grants, "authorization_code") {
		c.ResponseTypes = []string{}
	}
	return c, nil
}

// clientScopes checks the scopes of spec (none: DefaultScopes): the
// built-in ones and those APIs define.
func (r *Registry) clientScopes(ctx context.Context, spec Spec) ([]string, error) {
	scopes := dedupe(spec.Scopes)
	if len(scopes) == 0 {
		scopes = append([]string(nil), DefaultScopes...)
	}
	for _, s := range scopes {
		if contains(KnownScopes, s) {
			continue
		}
		defined := false
		if r.apiScopes != nil {
			var err error
			if defined, err = r.apiScopes.ScopeDefined(ctx, s); err != nil {
				return nil, err
			}
		}
		if !defined {
			return nil, invalid("unknown scope %q: use a built-in scope (%s) or define it for an API with: tonearm apis create --id URI --scope %s=description",
				s, strings.Join(KnownScopes, " "), s)
		}
	}
	if contains(scopes, "admin") && spec.Public {
		// A public client's tokens can be obtained by anyone who can run it.
		return nil, invalid("the admin scope is only for confidential clients")
	}
	return scopes, nil
}

// idTokenAlg is the algorithm of a client's ID tokens ("": RS256).
func idTokenAlg(alg string) (string, error) {
	switch alg {
	case "":
		return "RS256", nil
	case "RS256", "ES256":
		return alg, nil
	}
	return "", invalid("the ID token algorithm must be RS256 or ES256")
}

// Create validates spec and registers the client. It returns the stored
// client and the clear secret (generated when spec.Secret is empty), which
// is shown once and never stored.
func (r *Registry) Create(ctx context.Context, spec Spec) (storage.Client, string, error) {
	if !idPattern.MatchString(spec.ID) {
		return storage.Client{}, "", invalid("client ID must be 1–128 characters of letters, digits and . _ ~ -, starting with a letter or digit")
	}
	c, err := r.validate(ctx, spec)
	if err != nil {
		return storage.Client{}, "", err
	}
	c.CreatedAt = r.now().UTC()
	secret := spec.Secret
	if spec.Public {
		if secret != "" {
			return storage.Client{}, "", invalid("a public client has no secret: give a secret or make the client public, not both")
		}
	} else if c.TokenEndpointAuthMethod == AuthPrivateKeyJWT {
		// It proves itself with its keys: there is no secret to leak.
		if secret != "" {
			return storage.Client{}, "", invalid("a private_key_jwt client has no secret: give a secret or keys, not both")
		}
	} else {
		if secret == "" {
			b := make([]byte, minSecretBytes)
			if _, err := rand.Read(b); err != nil {
				return storage.Client{}, "", err
			}
			secret = base64.RawURLEncoding.EncodeToString(b)
		} else if len(secret) < minSecretBytes {
			return storage.Client{}, "", invalid("a client secret must be at least %d characters; omit it to generate one", minSecretBytes)
		}
		c.SecretHash, _ = r.hasher.Hash(ctx, []byte(secret))
	}
	created := audit.Change{Type: audit.ClientCreated, Client: c.ID}
	if err := r.apply(ctx, created, func(ctx context.Context) error { return r.store.CreateClient(ctx, c) }); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return storage.Client{}, "", ErrExists
		}
		return storage.Client{}, "", err
	}
	return c, secret, nil
}

// Kind names what sort of client c is: "confidential" or "public", then
// ",first-party" when it skips the consent page.
func Kind(c storage.Client) string {
	kind := "confidential"
	if c.Public {
		kind = "public"
	}
	if c.FirstParty {
		kind += ",first-party"
	}
	return kind
}

// Check validates spec as Create would (but the ID's uniqueness and the
// secret) and returns the client it describes: what a registration would
// store, for comparing with what is stored.
func (r *Registry) Check(ctx context.Context, spec Spec) (storage.Client, error) {
	if !idPattern.MatchString(spec.ID) {
		return storage.Client{}, invalid("client ID %q must be 1–128 characters of letters, digits and . _ ~ -", spec.ID)
	}
	return r.validate(ctx, spec)
}

// SecretMatches reports whether secret is the client's current secret.
func (r *Registry) SecretMatches(ctx context.Context, c storage.Client, secret string) bool {
	return len(c.SecretHash) > 0 && r.hasher.Compare(ctx, c.SecretHash, []byte(secret)) == nil
}

// SpecOf is the Spec a stored client was made from (without its secret),
// the base an update starts from.
func SpecOf(c storage.Client) Spec {
	return Spec{
		ID: c.ID, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, GrantTypes: c.GrantTypes,
		Scopes: c.Scopes, Public: c.Public, FirstParty: c.FirstParty, AllowNoPKCE: c.AllowNoPKCE, RequirePAR: c.RequirePAR,
		RequireDPoP: c.RequireDPoP, BackchannelLogoutURI: c.BackchannelLogoutURI, IDTokenAlg: c.IDTokenAlg,
		Display: Display{Name: c.Name, LogoURI: c.LogoURI, ClientURI: c.ClientURI, PolicyURI: c.PolicyURI, TosURI: c.TosURI},
		Keys: Keys{TokenEndpointAuthMethod: c.TokenEndpointAuthMethod, JWKS: c.JWKS, JWKSURI: c.JWKSURI, RequestURIs: c.RequestURIs,
			RequestObjectSigningAlg: c.RequestObjectSigningAlg, SubjectType: c.SubjectType, SectorIdentifierURI: c.SectorIdentifierURI},
	}
}

// Update changes a client: change edits the Spec of the stored client and
// the result is checked as a new one would be. The secret stays (see
// RotateSecret); a client cannot turn public or confidential (delete and
// create it again).
func (r *Registry) Update(ctx context.Context, id string, change func(*Spec)) (storage.Client, error) {
	cur, err := r.Get(ctx, id)
	if err != nil {
		return storage.Client{}, err
	}
	spec := SpecOf(cur)
	change(&spec)
	if spec.Public != cur.Public {
		return storage.Client{}, invalid("a client cannot change between public and confidential: delete it and create it again")
	}
	// A secret given with the update (tonearm clients update ID --secret S)
	// replaces the current one in the same write, as SetSecret does: the
	// old one ends at once.
	if err := keepSubject(cur, &spec.Keys); err != nil {
		return storage.Client{}, err
	}
	var newHash []byte
	if spec.Secret != "" {
		if cur.Public {
			return storage.Client{}, invalid("a public client has no secret")
		}
		if spec.TokenEndpointAuthMethod == AuthPrivateKeyJWT {
			return storage.Client{}, invalid("a private_key_jwt client has no secret: give a secret or keys, not both")
		}
		if len(spec.Secret) < minSecretBytes {
			return storage.Client{}, invalid("a client secret must be at least %d characters", minSecretBytes)
		}
		if newHash, err = r.hasher.Hash(ctx, []byte(spec.Secret)); err != nil {
			return storage.Client{}, err
		}
	}
	next, err := r.validate(ctx, spec)
	if err != nil {
		return storage.Client{}, err
	}
	return r.updateClient(ctx, id, audit.Change{Type: audit.ClientChanged, Client: id}, func(old storage.Client) (storage.Client, error) {
		if err := r.keepSector(old, next); err != nil {
			return old, err
		}
		next.SecretHash, next.OldSecretHash, next.OldSecretExpiresAt = old.SecretHash, old.OldSecretHash, old.OldSecretExpiresAt
		if newHash != nil || next.TokenEndpointAuthMethod == AuthPrivateKeyJWT {
			// A client turning to private_key_jwt loses its secret in
			// the same write: nothing is left to leak or to accept.
			next.SecretHash, next.OldSecretHash, next.OldSecretExpiresAt = newHash, nil, time.Time{}
		}
		next.Owner, next.Registration, next.RegistrationTokenHash, next.Disabled = old.Owner, old.Registration, old.RegistrationTokenHash, old.Disabled
		if spec.Disabled != nil {
			next.Disabled = *spec.Disabled
		}
		return next, nil
	})
}

// Get returns one client.
func (r *Registry) Get(ctx context.Context, id string) (storage.Client, error) {
	c, err := r.store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Client{}, ErrNotFound
	}
	return c, err
}

// List returns every client.
func (r *Registry) List(ctx context.Context) ([]storage.Client, error) {
	return r.store.ListClients(ctx)
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		for _, f := range strings.Fields(s) {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
