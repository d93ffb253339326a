// Package apis registers resource servers (APIs): their identifiers, the
// scopes each defines (one API owns a scope) and the user claims their
// access tokens carry. Token issuance, consent, discovery and client
// registration read them through a short-lived cache.
package apis

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// Store is what the registry needs from storage: the APIs, the clients
// holding their scopes, and the audit events it records with each change
// (in the change's transaction).
type Store interface {
	audit.TxStore
	CreateAPI(ctx context.Context, a storage.API) error
	GetAPI(ctx context.Context, id string) (storage.API, error)
	ListAPIs(ctx context.Context) ([]storage.API, error)
	DeleteAPI(ctx context.Context, id string) error
	UpdateAPI(ctx context.Context, id string, update func(storage.API) (storage.API, error)) (storage.API, error)
	ListClients(ctx context.Context) ([]storage.Client, error)
}

// CacheTTL bounds how long a replica may issue tokens from an API list
// that another replica has changed.
const CacheTTL = 5 * time.Second

// Limits.
const (
	MaxIDLen          = 200
	MaxNameLen        = 100
	MaxScopes         = 50
	MaxScopeLen       = 64
	MaxDescriptionLen = 200
	MaxClaims         = 20
	MaxIntrospectors  = 20 // and exchange-from clients
)

// Errors the transports answer by their fault.Kind.
var (
	ErrExists   = fault.New(fault.Conflict, "an API with this identifier already exists").Saying("An API with this identifier already exists")
	ErrNotFound = fault.New(fault.NotFound, "no such API").Saying("No such API")
)

// invalid is a refused spec; the message is safe to show.
func invalid(format string, args ...any) error { return fault.Errorf(fault.Invalid, format, args...) }

// scopeTaken: another API defines the scope.
func scopeTaken(scope, api string) error {
	return fault.Errorf(fault.Conflict, "the scope %q is already defined by the API %s (one API owns a scope)", scope, api)
}

// inUse: clients still hold scopes of the API.
func inUse(clients []string) error {
	return fault.Errorf(fault.Conflict, "clients still hold scopes of this API: %s; delete them or register them again without those scopes first", strings.Join(clients, ", "))
}

// BuiltinScopes are tonearm's own scopes that belong to no API: an API
// cannot define them.
var BuiltinScopes = []string{"openid", "profile", "email", "listenbrainz", "offline_access", "roles"}

// reservedClaims are registered JWT, OpenID Connect and tonearm claim names:
// an API cannot release a custom claim under them, nor can a user carry
// one. role and listenbrainz_name are released by name (from the account),
// listenbrainz_token never.
var reservedClaims = map[string]bool{}

func init() {
	for _, c := range strings.Fields(`iss sub aud exp nbf iat jti scope scp client_id auth_time nonce azp acr amr
		at_hash c_hash s_hash sid cnf act may_act typ events token_type username active
		name given_name family_name middle_name nickname preferred_username profile picture website email
		email_verified gender birthdate zoneinfo locale phone_number phone_number_verified address updated_at
		role listenbrainz_name listenbrainz_token`) {
		reservedClaims[c] = true
	}
}

// UserClaims are the account attributes an API may release by name.
var UserClaims = []string{"role", "listenbrainz_name"}

var claimKeyPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.:-]{0,63}$`)

// ValidateCustomClaimKey accepts a key for a user's custom claims: a short
// name that is not a registered claim name.
func ValidateCustomClaimKey(k string) error {
	if !claimKeyPattern.MatchString(k) {
		return invalid("claim key %q must be 1–64 letters, digits and _ . : -, starting with a letter", k)
	}
	if reservedClaims[k] {
		return invalid("claim key %q is a registered claim name and cannot be a custom claim", k)
	}
	return nil
}

// ValidScopeName applies RFC 6749 §3.3: printable ASCII without space,
// double quote or backslash.
func ValidScopeName(s string) bool {
	if s == "" || len(s) > MaxScopeLen {
		return false
	}
	for _, c := range []byte(s) {
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// ValidateResource checks an API identifier or an RFC 8707 resource: an
// absolute URI without a fragment.
func ValidateResource(id string) error {
	if id == "" || len(id) > MaxIDLen || !printable(id) || strings.ContainsAny(id, " \t") {
		return invalid("an API identifier must be an absolute URI of at most %d characters", MaxIDLen)
	}
	u, err := url.Parse(id)
	if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") || u.Fragment != "" || strings.Contains(id, "#") {
		return invalid("API identifier %q must be an absolute URI without a fragment, e.g. https://api.example.org/listens", id)
	}
	return nil
}

// Spec describes an API to register.
type Spec struct {
	ID     string
	Name   string
	Scopes []storage.APIScope
	Claims []string
	// Introspectors are the clients (the API's resource servers) that may
	// introspect tokens meant for the API (RFC 7662 §4).
	Introspectors []string
	// ExchangeFrom are the clients that may exchange a person's token for
	// a token to the API (RFC 8693; nobody when empty).
	ExchangeFrom []string
	// OpenToApps: apps registered by developers may ask for its scopes.
	OpenToApps bool
}

// Update changes a registered API; nil fields stay as they are.
type Update struct {
	Name          *string
	Scopes        *[]storage.APIScope
	Claims        *[]string
	Introspectors *[]string
	ExchangeFrom  *[]string
	OpenToApps    *bool
}

// Registry creates, lists and deletes APIs and caches them for the
// protocol. The built-in API (tonearm's own) is always there and cannot be
// deleted.
type Registry struct {
	store   Store
	builtin storage.API
	now     func() time.Time

	mu      sync.RWMutex
	cached  []storage.API
	expires time.Time
	version uint64
}

// NewRegistry returns a registry with the built-in API.
func NewRegistry(store Store, builtin storage.API, now func() time.Time) (*Registry, error) {
	if store == nil || builtin.ID == "" {
		return nil, errors.New("apis: a store and the built-in API are required")
	}
	if now == nil {
		now = time.Now
	}
	return &Registry{store: store, builtin: builtin, now: now}, nil
}

// Builtin returns tonearm's own API.
func (r *Registry) Builtin() storage.API { return r.builtin }

// Create validates spec and registers the API.
func (r *Registry) Create(ctx context.Context, spec Spec) (storage.API, error) {
	if err := ValidateResource(spec.ID); err != nil {
		return storage.API{}, err
	}
	if spec.ID == r.builtin.ID {
		return storage.API{}, invalid("%s is tonearm's own API", spec.ID)
	}
	a, err := r.validate(ctx, spec)
	if err != nil {
		return storage.API{}, err
	}
	a.CreatedAt = r.now().UTC().Truncate(time.Microsecond)
	err = r.apply(ctx, audit.APICreated, a.ID, func(ctx context.Context) error { return r.store.CreateAPI(ctx, a) })
	if err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			if _, gerr := r.store.GetAPI(ctx, spec.ID); gerr == nil {
				return storage.API{}, ErrExists
			}
			return storage.API{}, r.scopeRace(ctx, spec)
		}
		return storage.API{}, err
	}
	r.forget()
	return a, nil
}

// Check validates spec as Create would (but the ID's uniqueness) and
// returns the API it describes, for comparing with what is stored.
func (r *Registry) Check(ctx context.Context, spec Spec) (storage.API, error) {
	if err := ValidateResource(spec.ID); err != nil {
		return storage.API{}, err
	}
	a, err := r.validate(ctx, spec)
	a.ID = spec.ID
	return a, err
}

// Update changes a registered API: its name, scopes (a scope some client
// holds cannot go), claims, introspectors and exchange-from clients.
func (r *Registry) Update(ctx context.Context, id string, u Update) (storage.API, error) {
	if id == r.builtin.ID {
		return storage.API{}, invalid("tonearm's own API cannot be changed")
	}
	cur, err := r.Get(ctx, id)
	if err != nil {
		return storage.API{}, err
	}
	spec := Spec{ID: id, Name: cur.Name, Scopes: cur.Scopes, Claims: cur.Claims, Introspectors: cur.Introspectors, ExchangeFrom: cur.ExchangeFrom, OpenToApps: cur.OpenToApps}
	if u.OpenToApps != nil {
		spec.OpenToApps = *u.OpenToApps
	}
	if u.Name != nil {
		spec.Name = *u.Name
	}
	if u.Scopes != nil {
		spec.Scopes = *u.Scopes
	}
	if u.Claims != nil {
		spec.Claims = *u.Claims
	}
	if u.Introspectors != nil {
		spec.Introspectors = *u.Introspectors
	}
	if u.ExchangeFrom != nil {
		spec.ExchangeFrom = *u.ExchangeFrom
	}
	next, err := r.validate(ctx, spec)
	if err != nil {
		return storage.API{}, err
	}
	var dropped []string
	for _, old := range cur.Scopes {
		kept := false
		for _, n := range next.Scopes {
			kept = kept || n.Name == old.Name
		}
		if !kept {
			dropped = append(dropped, old.Name)
		}
	}
	if holders, err := r.holders(ctx, dropped); err != nil {
		return storage.API{}, err
	} else if len(holders) > 0 {
		return storage.API{}, inUse(holders)
	}
	out, err := r.rewrite(ctx, id, next)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.API{}, ErrNotFound
	case errors.Is(err, storage.ErrAlreadyExists):
		return storage.API{}, r.scopeRace(ctx, spec)
	case err != nil:
		return storage.API{}, err
	}
	r.forget()
	return out, nil
}

// scopeRace words a scope that another API claimed between validate and
// the write: the same 409 as when it was claimed before (scopeTaken, read
// again now that the other API is stored), so that losing a race answers
// what coming second answers.
func (r *Registry) scopeRace(ctx context.Context, spec Spec) error {
	r.forget()
	if _, err := r.validate(ctx, spec); fault.Is(err, fault.Conflict) || fault.Is(err, fault.Unavailable) {
		return err
	}
	return fault.Errorf(fault.Conflict, "one of these scopes was defined by another API just now (one API owns a scope); list the APIs and try again")
}

// validate checks spec (but its ID) against the registered APIs, the API
// itself excepted, and returns the API it describes.
func (r *Registry) validate(ctx context.Context, spec Spec) (storage.API, error) {
	if len(spec.Name) > MaxNameLen || !printable(spec.Name) {
		return storage.API{}, invalid("the name must be at most %d printable characters", MaxNameLen)
	}
	if len(spec.Scopes) == 0 || len(spec.Scopes) > MaxScopes {
		return storage.API{}, invalid("an API defines 1–%d scopes", MaxScopes)
	}
	all, err := r.all(ctx)
	if err != nil {
		return storage.API{}, err
	}
	owner := map[string]string{}
	for _, a := range all {
		if a.ID == spec.ID {
			continue
		}
		for _, s := range a.Scopes {
			owner[s.Name] = a.ID
		}
	}
	seen := map[string]bool{}
	for _, s := range spec.Scopes {
		switch {
		case !ValidScopeName(s.Name):
			return storage.API{}, invalid("scope %q: a scope name is 1–%d printable ASCII characters without spaces, quotes or backslashes (RFC 6749 §3.3)", s.Name, MaxScopeLen)
		case contains(BuiltinScopes, s.Name):
			return storage.API{}, invalid("scope %q is built in and belongs to no API", s.Name)
		case seen[s.Name]:
			return storage.API{}, invalid("scope %q is listed twice", s.Name)
		case len(s.Description) > MaxDescriptionLen || !printable(s.Description):
			return storage.API{}, invalid("scope %q: the description must be at most %d printable characters", s.Name, MaxDescriptionLen)
		case owner[s.Name] != "":
			return storage.API{}, scopeTaken(s.Name, owner[s.Name])
		}
		seen[s.Name] = true
	}
	claims := []string{}
	if len(spec.Claims) > MaxClaims {
		return storage.API{}, invalid("at most %d claims", MaxClaims)
	}
	for _, c := range spec.Claims {
		switch {
		case c == "listenbrainz_token":
			return storage.API{}, invalid("the ListenBrainz token is never put into an access token")
		case contains(UserClaims, c):
		default:
			if err := ValidateCustomClaimKey(c); err != nil {
				return storage.API{}, invalid("claim %q: release role, listenbrainz_name or a custom claim key that is not a registered claim name", c)
			}
		}
		if !contains(claims, c) {
			claims = append(claims, c)
		}
	}
	introspectors, err := r.clientList(ctx, spec.Introspectors, "introspector", "register the resource server as a client first")
	if err != nil {
		return storage.API{}, err
	}
	exchangeFrom, err := r.clientList(ctx, spec.ExchangeFrom, "exchange-from client", "register it as a client first")
	if err != nil {
		return storage.API{}, err
	}
	return storage.API{ID: spec.ID, Name: spec.Name, Scopes: spec.Scopes, Claims: claims, Introspectors: introspectors, ExchangeFrom: exchangeFrom, OpenToApps: spec.OpenToApps}, nil
}

// holders lists the clients registered with any of scopes, sorted.
func (r *Registry) holders(ctx context.Context, scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return nil, nil
	}
	clients, err := r.store.ListClients(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range clients {
		for _, s := range scopes {
			if contains(c.Scopes, s) {
				out = append(out, c.ID)
				break
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Get returns a registered API (or the built-in one).
func (r *Registry) Get(ctx context.Context, id string) (storage.API, error) {
	if id == r.builtin.ID {
		return r.builtin, nil
	}
	a, err := r.store.GetAPI(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.API{}, ErrNotFound
	}
	return a, err
}

// List returns the built-in API and every registered one, fresh.
func (r *Registry) List(ctx context.Context) ([]storage.API, error) {
	return r.all(ctx)
}

// Delete removes an API no client holds scopes of.
func (r *Registry) Delete(ctx context.Context, id string) error {
	var a storage.API
	var err error
	if id == r.builtin.ID {
		// Only a stored row shadowing the built-in API (see all) can go:
		// deleting it is how the operator clears the start-up warning.
		shadow, found, serr := r.Shadowing(ctx)
		if serr != nil {
			return serr
		}
		if !found {
			return invalid("tonearm's own API cannot be deleted")
		}
		a = shadow
	} else if a, err = r.Get(ctx, id); err != nil {
		return err
	}
	names := make([]string, len(a.Scopes))
	for i, sc := range a.Scopes {
		names[i] = sc.Name
	}
	holders, err := r.holders(ctx, names)
	if err != nil {
		return err
	}
	if len(holders) > 0 {
		return inUse(holders)
	}
	if err := r.apply(ctx, audit.APIDeleted, id, func(ctx context.Context) error { return r.store.DeleteAPI(ctx, id) }); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return ErrNotFound
		}
		return err
	}
	r.forget()
	return nil
}

// Cached returns every API (the built-in one first) from a cache at most
// CacheTTL old, and a version that changes when the list does.
func (r *Registry) Cached(ctx context.Context) ([]storage.API, uint64, error) {
	r.mu.RLock()
	if r.cached != nil && r.now().Before(r.expires) {
		c, v := r.cached, r.version
		r.mu.RUnlock()
		return c, v, nil
	}
	r.mu.RUnlock()
	all, err := r.all(ctx)
	if err != nil {
		return nil, 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !sameAPIs(r.cached, all) {
		r.version++
	}
	r.cached, r.expires = all, r.now().Add(CacheTTL)
	return r.cached, r.version, nil
}

// Fresh reads every API from the database now and caches the list (a
// miss in the cache: see provider.APIDirectory).
func (r *Registry) Fresh(ctx context.Context) ([]storage.API, uint64, error) {
	r.forget()
	return r.Cached(ctx)
}

// all is the one place every reader (token audiences, consent, discovery's
// scopes_supported, the admin list) gets the APIs from. A stored API whose
// id is the built-in one's is left out here rather than refused only at
// Create: such a row gets in through paths Create cannot see (the command
// line working out another issuer from its own environment, an API
// registered before the issuer changed to a URL whose /api it is), and
// whichever way it came, it must never put its scopes under tonearm's own
// audience. Shadowing reports it so start-up can warn; Delete removes it.
func (r *Registry) all(ctx context.Context) ([]storage.API, error) {
	stored, err := r.store.ListAPIs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]storage.API, 0, len(stored)+1)
	out = append(out, r.builtin)
	for _, a := range stored {
		if a.ID != r.builtin.ID {
			out = append(out, a)
		}
	}
	return out, nil
}

// Shadowing returns the stored API registered under the built-in API's id,
// if there is one (it is ignored; see all).
func (r *Registry) Shadowing(ctx context.Context) (storage.API, bool, error) {
	a, err := r.store.GetAPI(ctx, r.builtin.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.API{}, false, nil
	}
	return a, err == nil, err
}

func (r *Registry) forget() {
	r.mu.Lock()
	r.expires = time.Time{}
	r.mu.Unlock()
}

// ScopeDefined reports whether an API defines scope (for client
// registration).
func (r *Registry) ScopeDefined(ctx context.Context, scope string) (bool, error) {
	a, err := r.scopeAPI(ctx, scope)
	return a != nil, err
}

// ScopeOpenToApps reports whether scope is defined by an API open to
// apps registered by developers.
func (r *Registry) ScopeOpenToApps(ctx context.Context, scope string) (bool, error) {
	a, err := r.scopeAPI(ctx, scope)
	return a != nil && a.OpenToApps, err
}

// scopeAPI returns the API that defines scope, or nil.
func (r *Registry) scopeAPI(ctx context.Context, scope string) (*storage.API, error) {
	all, err := r.all(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		for _, s := range all[i].Scopes {
			if s.Name == scope {
				return &all[i], nil
			}
		}
	}
	return nil, nil
}

func sameAPIs(a, b []storage.API) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Name != b[i].Name || len(a[i].Scopes) != len(b[i].Scopes) || strings.Join(a[i].Claims, " ") != strings.Join(b[i].Claims, " ") ||
			strings.Join(a[i].Introspectors, " ") != strings.Join(b[i].Introspectors, " ") ||
			strings.Join(a[i].ExchangeFrom, " ") != strings.Join(b[i].ExchangeFrom, " ") || a[i].OpenToApps != b[i].OpenToApps {
			return false
		}
		for j := range a[i].Scopes {
			if a[i].Scopes[j] != b[i].Scopes[j] {
				return false
			}
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
