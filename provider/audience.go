package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/storage"
)

// APIDirectory lists the APIs (the built-in one first), cached; the version
// changes when the list does. Fresh reads the list from the database now:
// a scope or resource the cache does not know may be an API registered
// moments ago (by the command line, or on another replica).
type APIDirectory interface {
	Cached(ctx context.Context) ([]storage.API, uint64, error)
	Fresh(ctx context.Context) ([]storage.API, uint64, error)
}

// UserDirectory reads the users whose claims access tokens release.
type UserDirectory interface {
	GetUser(ctx context.Context, id string) (storage.User, error)
}

// builtinOnly is the directory without registered APIs.
type builtinOnly struct{ api storage.API }

func (b builtinOnly) Cached(context.Context) ([]storage.API, uint64, error) {
	return []storage.API{b.api}, 0, nil
}

func (b builtinOnly) Fresh(ctx context.Context) ([]storage.API, uint64, error) { return b.Cached(ctx) }

// ErrInvalidTarget is RFC 8707's error for a resource that is not a
// registered API or whose scopes were not granted.
var ErrInvalidTarget = &fosite.RFC6749Error{
	ErrorField: "invalid_target", CodeField: 400,
	DescriptionField: "The requested resource is invalid, unknown, or malformed.",
}

func invalidTarget(format string, args ...any) error {
	return ErrInvalidTarget.WithHintf(format, args...)
}

// Resources returns the RFC 8707 resource parameters of a request form.
func Resources(form url.Values) []string { return form["resource"] }

// scopeIndex maps the APIs: id → API, scope → owning API id.
type scopeIndex struct {
	byID  map[string]storage.API
	owner map[string]string
	order []string
}

// index returns the scope index of the current API list, built once per
// version of it (every token request reads it).
func (p *Provider) index(ctx context.Context) (scopeIndex, error) {
	all, version, err := p.apis.Cached(ctx)
	if err != nil {
		return scopeIndex{}, err
	}
	if cur := p.scopes.Load(); cur != nil && cur.version == version {
		return cur.index, nil
	}
	ix := buildIndex(all)
	p.scopes.Store(&builtIndex{version: version, index: ix})
	return ix, nil
}

// indexFor returns the scope index, read afresh from the database when
// the cached one does not know a scope or resource asked for: an API
// created moments ago must not have its scope granted as if it were
// nobody's (a token with the scope but not the audience).
func (p *Provider) indexFor(ctx context.Context, scopes, resources []string) (scopeIndex, error) {
	ix, err := p.index(ctx)
	if err != nil || !ix.misses(scopes, resources) {
		return ix, err
	}
	all, version, err := p.apis.Fresh(ctx)
	if err != nil {
		return scopeIndex{}, err
	}
	ix = buildIndex(all)
	p.scopes.Store(&builtIndex{version: version, index: ix})
	return ix, nil
}

// misses reports whether scopes or resources name something the index
// does not know.
func (ix scopeIndex) misses(scopes, resources []string) bool {
	for _, s := range scopes {
		if ix.owner[s] == "" && !has(SupportedScopes, s) {
			return true
		}
	}
	for _, r := range resources {
		if _, ok := ix.byID[r]; !ok {
			return true
		}
	}
	return false
}

type builtIndex struct {
	version uint64
	index   scopeIndex
}

func buildIndex(all []storage.API) scopeIndex {
	ix := scopeIndex{byID: map[string]storage.API{}, owner: map[string]string{}}
	for _, a := range all {
		ix.byID[a.ID] = a
		ix.order = append(ix.order, a.ID)
		for _, s := range a.Scopes {
			ix.owner[s.Name] = a.ID
		}
	}
	return ix
}

// audienceFor decides what a token for scopes may say: with resources
// (RFC 8707), each must be a registered API with at least one of its scopes
// among scopes, the audience is the resources, and only their scopes (and
// built-in ones) stay; without, the audience is every API whose scopes are
// among scopes. An empty audience means the client id (GenerateAccessToken).
func (ix scopeIndex) audienceFor(scopes, resources []string) (aud, kept []string, err error) {
	if len(resources) == 0 {
		for _, id := range ix.order {
			for _, s := range scopes {
				if ix.owner[s] == id {
					aud = append(aud, id)
					break
				}
			}
		}
		return aud, ix.granted(scopes), nil
	}
	for _, res := range resources {
		if _, err := url.Parse(res); err != nil || !strings.Contains(res, ":") || strings.Contains(res, "#") {
			return nil, nil, invalidTarget("The resource %q is not an absolute URI without a fragment.", res)
		}
		if _, ok := ix.byID[res]; !ok {
			return nil, nil, invalidTarget("The resource %q is not a registered API.", res)
		}
		granted := false
		for _, s := range scopes {
			granted = granted || ix.owner[s] == res
		}
		if !granted {
			return nil, nil, invalidTarget("None of the scopes of the resource %q was granted.", res)
		}
		if !has(aud, res) {
			aud = append(aud, res)
		}
	}
	for _, s := range scopes {
		if o := ix.owner[s]; (o == "" && has(SupportedScopes, s)) || has(aud, o) {
			kept = append(kept, s)
		}
	}
	return aud, kept, nil
}

// granted drops the scopes no known API owns and that are not built in: a
// scope of a deleted API, or one never defined, is never granted.
func (ix scopeIndex) granted(scopes []string) []string {
	var out []string
	for _, s := range scopes {
		if ix.owner[s] != "" || has(SupportedScopes, s) {
			out = append(out, s)
		}
	}
	return out
}

// Audience returns the audience and the scopes a request for scopes and
// resources would be granted, or invalid_target.
func (p *Provider) Audience(ctx context.Context, scopes, resources []string) (aud, kept []string, err error) {
	ix, err := p.indexFor(ctx, scopes, resources)
	if err != nil {
		return nil, nil, err
	}
	return ix.audienceFor(scopes, resources)
}

// AppScopesAllowed checks the scopes an app registered by a developer
// asks for: the built-in user scopes (never account or admin) and the
// scopes of APIs open to apps, as the APIs stand now (an API closed since
// the app registered no longer grants it its scopes).
func (p *Provider) AppScopesAllowed(ctx context.Context, scopes []string) error {
	ix, err := p.indexFor(ctx, scopes, nil)
	if err != nil {
		return err
	}
	for _, s := range scopes {
		if s == ScopeAccount || s == ScopeAdmin {
			return fosite.ErrInvalidScope.WithHintf("Apps registered by developers cannot ask for the %s scope.", s)
		}
		if id, ok := ix.owner[s]; ok && !ix.byID[id].OpenToApps {
			return fosite.ErrInvalidScope.WithHintf("The scope %s belongs to an API that is not open to apps registered by developers.", s)
		}
	}
	return nil
}

// MayIntrospect reports whether client caller may see a token issued to
// client owner for the audience aud (RFC 7662 §4 leaves it to the server):
// its own tokens, and tokens meant for an API that names caller among its
// introspectors (its resource servers).
func (p *Provider) MayIntrospect(ctx context.Context, caller, owner string, aud []string) bool {
	if caller == "" {
		return false
	}
	if caller == owner {
		return true
	}
	names := func(ix scopeIndex) bool {
		for _, a := range aud {
			if api, ok := ix.byID[a]; ok && has(api.Introspectors, caller) {
				return true
			}
		}
		return false
	}
	if ix, err := p.index(ctx); err == nil && names(ix) {
		return true
	}
	// A refusal reads the APIs afresh: the introspector may have been
	// named moments ago (on another replica, or by the command line).
	// Only authenticated clients get this far.
	all, version, err := p.apis.Fresh(ctx)
	if err != nil {
		return false
	}
	ix := buildIndex(all)
	p.scopes.Store(&builtIndex{version: version, index: ix})
	return names(ix)
}

// ScopeDescriptions maps every API scope to its description.
func (p *Provider) ScopeDescriptions(ctx context.Context) map[string]string {
	out := map[string]string{}
	all, _, err := p.apis.Cached(ctx)
	if err != nil {
		return out
	}
	for _, a := range all {
		for _, s := range a.Scopes {
			if s.Description != "" {
				out[s.Name] = s.Description
			} else {
				out[s.Name] = s.Name
			}
		}
	}
	return out
}

// Grant grants an authorization or client-credentials request the scopes
// it may have and the audience they and its resource parameters give
// (see audienceFor). Scopes of APIs outside the requested resources are not
// granted.
func (p *Provider) Grant(ctx context.Context, ar fosite.Requester, scopes, resources []string) error {
	ix, err := p.indexFor(ctx, scopes, resources)
	if err != nil {
		return err
	}
	aud, kept, err := ix.audienceFor(scopes, resources)
	if err != nil {
		return err
	}
	for _, s := range kept {
		ar.GrantScope(s)
	}
	for _, a := range aud {
		ar.GrantAudience(a)
	}
	return nil
}

// Narrow applies the resource parameters of a token request that reuses a
// grant (authorization code, refresh token): each must be in the grant's
// audience, and the access token issued with the returned context names
// only them and carries only their scopes (and built-in ones). scopes is
// the set the request already narrowed to (nil: the grant's). The grant
// itself, and a refresh token issued with it, keep everything.
func (p *Provider) Narrow(ctx context.Context, ar fosite.AccessRequester, scopes, resources []string) (context.Context, []string, error) {
	if len(resources) == 0 {
		return ctx, scopes, nil
	}
	for _, res := range resources {
		if !ar.GetGrantedAudience().Has(res) {
			return ctx, nil, invalidTarget("The resource %q was not part of this grant.", res)
		}
	}
	if scopes == nil {
		scopes = ar.GetGrantedScopes()
	}
	ix, err := p.index(ctx)
	if err != nil {
		return ctx, nil, err
	}
	aud, kept, err := ix.audienceFor(scopes, resources)
	if err != nil {
		return ctx, nil, err
	}
	ctx = fositestore.WithAccessScopes(ctx, kept)
	ctx = fositestore.WithAccessAudience(ctx, aud)
	return ctx, kept, nil
}

// releasedClaims are the user claims the APIs in aud release into an access
// token for subject: role and listenbrainz_name from the account, custom
// keys from the user's custom claims. Nothing when no API asks, so most
// tokens cost no lookup; never the ListenBrainz token.
func (p *Provider) releasedClaims(ctx context.Context, subject, clientID string, aud []string) (map[string]any, error) {
	if p.users == nil || subject == "" || subject == clientID {
		return nil, nil
	}
	ix, err := p.index(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, id := range aud {
		for _, c := range ix.byID[id].Claims {
			if !has(names, c) {
				names = append(names, c)
			}
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	u, err := p.users.GetUser(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("provider: claims of %s: %w", subject, err)
	}
	var custom map[string]any
	if len(u.Claims) > 0 {
		_ = json.Unmarshal(u.Claims, &custom)
	}
	out := map[string]any{}
	for _, n := range names {
		switch n {
		case "role":
			out[n] = u.Role
		case "listenbrainz_name":
			if u.ListenBrainzName != "" {
				out[n] = u.ListenBrainzName
			}
		case "listenbrainz_token":
			// never
		default:
			if v, ok := custom[n]; ok {
				out[n] = v
			}
		}
	}
	return out, nil
}

// discoveryCache holds the discovery document built for one version of the
// API list (scopes_supported lists their scopes). Readers load it without a
// lock: it is fetched at high rates by every relying party.
type discoveryCache struct {
	doc atomic.Pointer[builtDiscovery]
}

type builtDiscovery struct {
	version uint64
	body    []byte
}

// Discovery returns the OpenID Provider metadata document, with every
// API's scopes in scopes_supported; it is rebuilt only when the APIs change.
func (p *Provider) Discovery(ctx context.Context) []byte {
	all, version, err := p.apis.Cached(ctx)
	cur := p.disco.doc.Load()
	if cur != nil && (err != nil || cur.version == version) {
		return cur.body
	}
	scopes := append([]string(nil), SupportedScopes...)
	for _, a := range all {
		for _, s := range a.Scopes {
			if !has(scopes, s.Name) {
				scopes = append(scopes, s.Name)
			}
		}
	}
	body, berr := discoveryDocument(p.issuer, scopes, p.registration, p.uiLocales)
	if berr != nil {
		if cur != nil {
			return cur.body
		}
		return nil
	}
	p.disco.doc.Store(&builtDiscovery{version: version, body: body})
	return body
}
