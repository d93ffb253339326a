// Package connectors signs people in through other providers: MusicBrainz
// (OAuth2 and its userinfo) and any OpenID provider (discovery, code flow
// with PKCE, state and nonce, the ID token verified). Connectors are
// stored in the database; this package validates them, seals their client
// secrets and talks to the upstreams, each call under a deadline. It knows
// nothing of accounts or pages.
package connectors

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
)

// CallbackPath is where upstreams send people back:
// {issuer}/connectors/{id}/callback.
const CallbackPath = "/connectors/{id}/callback"

// DefaultMusicBrainzURL is the MusicBrainz server a musicbrainz connector
// talks to unless told otherwise.
const DefaultMusicBrainzURL = "https://musicbrainz.org"

// UpstreamTimeout bounds every call to an upstream.
const UpstreamTimeout = 10 * time.Second

// Identity is who an upstream says the person is. (Issuer, Subject) is
// the key: the upstream's issuer (or MusicBrainz base URL) and its stable
// ID for the person.
type Identity struct {
	Issuer, Subject string
	// Username is the name the upstream knows the person by (for
	// MusicBrainz, the MetaBrainz username); Email and EmailVerified as
	// the upstream asserts them.
	Username, Email, Name string
	EmailVerified         bool
}

// Errors of a round trip, worded for the sign-in page by the caller.
var (
	// ErrDenied: the person (or the upstream) refused at the upstream.
	ErrDenied = errors.New("connectors: the upstream refused the sign-in")
	// ErrUpstream: the upstream could not be reached or answered badly.
	ErrUpstream = errors.New("connectors: the upstream could not be used")
	// ErrRejected: the upstream's answer failed a check (signature,
	// issuer, audience, expiry, nonce).
	ErrRejected = errors.New("connectors: the upstream's answer was refused")
)

// invalid is a connector definition the registry refused; the message is
// safe to show.
func invalid(format string, args ...any) error { return fault.Errorf(fault.Invalid, format, args...) }

// Store is what the registry needs from storage: the connectors and the
// audit events it records with each change (in the change's transaction).
type Store interface {
	audit.TxStore
	CreateConnector(ctx context.Context, c storage.Connector) error
	GetConnector(ctx context.Context, id string) (storage.Connector, error)
	ListConnectors(ctx context.Context) ([]storage.Connector, error)
	UpdateConnector(ctx context.Context, id string, update func(storage.Connector) (storage.Connector, error)) (storage.Connector, error)
	DeleteConnector(ctx context.Context, id string) error
}

// Spec is a connector as an admin defines it.
type Spec struct {
	ID, Kind, Name string
	ClientID       string
	ClientSecret   string // clear; sealed before it is stored ("" on update: unchanged)
	Issuer         string // oidc
	BaseURL        string // musicbrainz ("" = DefaultMusicBrainzURL)
	Scopes         []string
}

// Registry manages connectors and opens their upstreams.
type Registry struct {
	store  Store
	box    *seal.Box
	issuer string
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	discovery map[string]cachedProvider // oidc discovery by issuer
}

// New returns a registry. issuer is tonearm's own (callbacks hang off
// it); client may be nil (a client with UpstreamTimeout is used).
func New(store Store, box *seal.Box, issuer string, client *http.Client, now func() time.Time) (*Registry, error) {
	if store == nil || box == nil || issuer == "" {
		return nil, errors.New("connectors: New needs a store, a box and the issuer")
	}
	if client == nil {
		client = &http.Client{Timeout: UpstreamTimeout}
	}
	if now == nil {
		now = time.Now
	}
	return &Registry{store: store, box: box, issuer: strings.TrimRight(issuer, "/"), client: client, now: now, discovery: map[string]cachedProvider{}}, nil
}

// CallbackURL is the redirect URI to register at the upstream.
func (r *Registry) CallbackURL(id string) string {
	return r.issuer + strings.Replace(CallbackPath, "{id}", url.PathEscape(id), 1)
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// UpstreamURL checks an upstream's URL: https, or http on a loopback
// address (a provider on the same machine, or a test).
func UpstreamURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return invalid("%s must be an absolute https URL without query or fragment", field)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
			return nil
		}
	}
	return invalid("%s must be an https URL (http only on a loopback address)", field)
}

func (r *Registry) validate(s *Spec) error {
	s.Name, s.ClientID, s.Issuer, s.BaseURL = strings.TrimSpace(s.Name), strings.TrimSpace(s.ClientID), strings.TrimRight(strings.TrimSpace(s.Issuer), "/"), strings.TrimRight(strings.TrimSpace(s.BaseURL), "/")
	if !idPattern.MatchString(s.ID) {
		return invalid("id must be 1–63 lower-case letters, digits, '-' or '_', starting with a letter or digit")
	}
	if s.Name == "" || len(s.Name) > 100 {
		return invalid("name is required (at most 100 characters): it is shown as \"Continue with {name}\"")
	}
	if s.ClientID == "" || len(s.ClientID) > 255 {
		return invalid("clientId is required: tonearm's client ID at the upstream")
	}
	if len(s.ClientSecret) > 1024 {
		return invalid("the client secret is too long")
	}
	for _, sc := range s.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\r\n\"\\") {
			return invalid("scope %q is not a valid scope", sc)
		}
	}
	switch s.Kind {
	case storage.ConnectorMusicBrainz:
		if s.Issuer != "" {
			return invalid("issuer is for oidc connectors; a musicbrainz connector takes baseUrl")
		}
		if s.BaseURL == "" {
			s.BaseURL = DefaultMusicBrainzURL
		}
		return UpstreamURL("baseUrl", s.BaseURL)
	case storage.ConnectorOIDC:
		if s.BaseURL != "" {
			return invalid("baseUrl is for musicbrainz connectors; an oidc connector takes issuer")
		}
		if s.Issuer == "" {
			return invalid("issuer is required for an oidc connector")
		}
		return UpstreamURL("issuer", s.Issuer)
	default:
		return invalid("kind must be musicbrainz or oidc")
	}
}

func secretContext(id string) string { return "connector-secret:" + id }

// Create validates and stores a connector (its secret sealed).
func (r *Registry) Create(ctx context.Context, s Spec) (storage.Connector, error) {
	if err := r.validate(&s); err != nil {
		return storage.Connector{}, err
	}
	if s.ClientSecret == "" {
		return storage.Connector{}, invalid("a client secret is required (clientSecret; --client-secret-stdin on the command line)")
	}
	sealed, err := r.box.Seal([]byte(s.ClientSecret), secretContext(s.ID))
	if err != nil {
		return storage.Connector{}, err
	}
	now := r.now().UTC().Truncate(time.Microsecond)
	c := storage.Connector{ID: s.ID, Kind: s.Kind, Name: s.Name, ClientID: s.ClientID, ClientSecret: sealed, Issuer: s.Issuer,
		BaseURL: s.BaseURL, Scopes: s.Scopes, CreatedAt: now, UpdatedAt: now}
	if c.Scopes == nil {
		c.Scopes = []string{}
	}
	created := audit.Change{Type: audit.ConnectorCreated, Detail: map[string]any{"connector": c.ID, "kind": c.Kind}}
	if err := audit.Apply(ctx, r.store, r.now(), created, func(ctx context.Context) error { return r.store.CreateConnector(ctx, c) }); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			// As a duplicate client or API is: 409 (RFC 9110 §15.5.10).
			return storage.Connector{}, fault.Errorf(fault.Conflict, "a connector with the id %q exists", s.ID)
		}
		return storage.Connector{}, err
	}
	return c, nil
}

// Update applies change to a connector's spec (its ID and kind stay; an
// empty secret keeps the stored one) and records connector.changed with
// the fields that changed, by the admin API's names (a client secret given
// is "secret": "set"; never a value). A change that leaves the connector
// as it is writes and records nothing and returns the stored connector.
func (r *Registry) Update(ctx context.Context, id string, change func(*Spec)) (c storage.Connector, err error) {
	changed := audit.Change{Type: audit.ConnectorChanged, Detail: map[string]any{"connector": id}}
	err = audit.ApplyDiff(ctx, r.store, r.now(), changed, func(ctx context.Context) (map[string]any, error) {
		var detail map[string]any
		stored, err := r.store.UpdateConnector(ctx, id, func(old storage.Connector) (storage.Connector, error) {
			c = old
			next, more, err := r.rewrite(id, change)(old)
			if err != nil {
				return old, err
			}
			if detail = more; detail == nil {
				return old, audit.ErrUnchanged
			}
			return next, nil
		})
		if err == nil {
			c = stored
		}
		return detail, err
	})
	if err != nil {
		return storage.Connector{}, err
	}
	r.forget(c.Issuer)
	return c, nil
}

// rewrite is the read-modify-write of Update: change applied to the stored
// spec, checked, the new secret sealed; with the event's detail naming
// what changed (nil: nothing did, and updatedAt stays).
func (r *Registry) rewrite(id string, change func(*Spec)) func(storage.Connector) (storage.Connector, map[string]any, error) {
	return func(old storage.Connector) (storage.Connector, map[string]any, error) {
		s := Spec{ID: old.ID, Kind: old.Kind, Name: old.Name, ClientID: old.ClientID, Issuer: old.Issuer, BaseURL: old.BaseURL, Scopes: old.Scopes}
		change(&s)
		s.ID, s.Kind = old.ID, old.Kind
		if err := r.validate(&s); err != nil {
			return old, nil, err
		}
		next := old
		next.Name, next.ClientID, next.Issuer, next.BaseURL, next.Scopes = s.Name, s.ClientID, s.Issuer, s.BaseURL, s.Scopes
		if next.Scopes == nil {
			next.Scopes = []string{}
		}
		detail := map[string]any{}
		if fields := connectorChanges(old, next); len(fields) > 0 {
			detail["fields"] = fields
		}
		if s.ClientSecret != "" {
			// The sealed value cannot be compared without opening it; a
			// secret given is a change (it is sealed afresh).
			sealed, err := r.box.Seal([]byte(s.ClientSecret), secretContext(id))
			if err != nil {
				return old, nil, err
			}
			next.ClientSecret = sealed
			detail["secret"] = "set"
		}
		if len(detail) == 0 {
			return old, nil, nil
		}
		next.UpdatedAt = r.now().UTC().Truncate(time.Microsecond)
		return next, detail, nil
	}
}

// connectorChanges names the fields that differ between a and b, as the
// admin API spells them.
func connectorChanges(a, b storage.Connector) []string {
	var out []string
	for _, f := range []struct {
		name    string
		changed bool
	}{
		{"name", a.Name != b.Name}, {"clientId", a.ClientID != b.ClientID}, {"issuer", a.Issuer != b.Issuer},
		{"baseUrl", a.BaseURL != b.BaseURL}, {"scopes", !slices.Equal(a.Scopes, b.Scopes)},
	} {
		if f.changed {
			out = append(out, f.name)
		}
	}
	return out
}

// Get returns a connector; storage.ErrNotFound.
func (r *Registry) Get(ctx context.Context, id string) (storage.Connector, error) {
	return r.store.GetConnector(ctx, id)
}

// List returns every connector.
func (r *Registry) List(ctx context.Context) ([]storage.Connector, error) {
	return r.store.ListConnectors(ctx)
}

// Delete removes a connector and its links; storage.ErrNotFound.
func (r *Registry) Delete(ctx context.Context, id string) error {
	deleted := audit.Change{Type: audit.ConnectorDeleted, Detail: map[string]any{"connector": id}}
	return audit.Apply(ctx, r.store, r.now(), deleted, func(ctx context.Context) error { return r.store.DeleteConnector(ctx, id) })
}

// Round is one sign-in's round trip to an upstream: what the callback
// must check (state, nonce) and prove (the PKCE verifier).
type Round struct {
	State, Nonce, Verifier string
}

// Start returns the URL that sends the person to the upstream.
func (r *Registry) Start(ctx context.Context, c storage.Connector, round Round) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, UpstreamTimeout)
	defer cancel()
	up, err := r.upstream(ctx, c)
	if err != nil {
		return "", err
	}
	return up.authURL(round), nil
}

// Finish checks the upstream's answer on the callback (query of the
// callback URL) and returns the person's identity.
func (r *Registry) Finish(ctx context.Context, c storage.Connector, round Round, query url.Values) (Identity, error) {
	if e := query.Get("error"); e != "" {
		if e == "access_denied" {
			return Identity{}, ErrDenied
		}
		return Identity{}, fmt.Errorf("%w: the upstream answered %q", ErrUpstream, e)
	}
	code := query.Get("code")
	if code == "" {
		return Identity{}, fmt.Errorf("%w: no code in the answer", ErrRejected)
	}
	if iss := query.Get("iss"); iss != "" && c.Kind == storage.ConnectorOIDC && iss != c.Issuer {
		// RFC 9207: an answer from another issuer (mix-up attack).
		return Identity{}, fmt.Errorf("%w: the answer names issuer %q", ErrRejected, iss)
	}
	ctx, cancel := context.WithTimeout(ctx, UpstreamTimeout)
	defer cancel()
	up, err := r.upstream(ctx, c)
	if err != nil {
		return Identity{}, err
	}
	return up.exchange(ctx, code, round)
}

type upstream interface {
	authURL(round Round) string
	exchange(ctx context.Context, code string, round Round) (Identity, error)
}

func (r *Registry) upstream(ctx context.Context, c storage.Connector) (upstream, error) {
	secret, err := r.box.Open(c.ClientSecret, secretContext(c.ID))
	if err != nil {
		return nil, fmt.Errorf("connectors: opening the client secret of %s: %w", c.ID, err)
	}
	switch c.Kind {
	case storage.ConnectorMusicBrainz:
		return newMusicBrainz(c, string(secret), r.CallbackURL(c.ID), r.client), nil
	case storage.ConnectorOIDC:
		return r.newOIDC(ctx, c, string(secret))
	}
	return nil, fmt.Errorf("connectors: unknown kind %q", c.Kind)
}
