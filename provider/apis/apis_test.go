package apis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/sqlitetest"
)

var builtin = storage.API{ID: "https://id.example/api", Name: "tonearm",
	Scopes: []storage.APIScope{{Name: "account"}, {Name: "admin"}}, Claims: []string{}}

// clock moves only when told.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newRegistry(t *testing.T) (*Registry, *sqlstore.Store, *clock) {
	t.Helper()
	store := sqlitetest.Open(t)
	c := &clock{t: time.Now()}
	r, err := NewRegistry(store, builtin, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return r, store, c
}

func scopes(names ...string) []storage.APIScope {
	out := make([]storage.APIScope, len(names))
	for i, n := range names {
		out[i] = storage.APIScope{Name: n, Description: "Read " + n}
	}
	return out
}

func TestNewRegistryRefusesMissingParts(t *testing.T) {
	t.Parallel()
	if _, err := NewRegistry(nil, builtin, nil); err == nil {
		t.Error("no store accepted")
	}
	if _, err := NewRegistry(sqlitetest.Open(t), storage.API{}, nil); err == nil {
		t.Error("no built-in API accepted")
	}
}

// TestCreateValidation: each refused spec says why, and nothing is stored.
func TestCreateValidation(t *testing.T) {
	t.Parallel()
	r, store, _ := newRegistry(t)
	ctx := context.Background()
	if err := store.CreateClient(ctx, storage.Client{ID: "rs", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ok := Spec{ID: "https://music.example/api", Name: "Music", Scopes: scopes("music.read")}
	long := strings.Repeat("x", MaxScopeLen+1)
	for name, c := range map[string]struct {
		mutate func(*Spec)
		want   string
	}{
		"relative identifier":     {func(s *Spec) { s.ID = "/api" }, "absolute URI"},
		"fragment":                {func(s *Spec) { s.ID = "https://music.example/api#x" }, "without a fragment"},
		"empty identifier":        {func(s *Spec) { s.ID = "" }, "absolute URI"},
		"spaces in identifier":    {func(s *Spec) { s.ID = "https://music.example/a b" }, "absolute URI"},
		"the built-in identifier": {func(s *Spec) { s.ID = builtin.ID }, "tonearm's own API"},
		"no scope":                {func(s *Spec) { s.Scopes = nil }, "1–50 scopes"},
		"a built-in scope":        {func(s *Spec) { s.Scopes = scopes("openid") }, "built in"},
		"a scope twice":           {func(s *Spec) { s.Scopes = scopes("a", "a") }, "listed twice"},
		"a scope with a space":    {func(s *Spec) { s.Scopes = scopes("a b") }, "RFC 6749 §3.3"},
		"a scope with a quote":    {func(s *Spec) { s.Scopes = scopes(`a"b`) }, "RFC 6749 §3.3"},
		"a scope too long":        {func(s *Spec) { s.Scopes = scopes(long) }, "RFC 6749 §3.3"},
		"a name too long":         {func(s *Spec) { s.Name = strings.Repeat("n", MaxNameLen+1) }, "the name"},
		"a control character":     {func(s *Spec) { s.Name = "Mu\x00sic" }, "the name"},
		"the ListenBrainz token":  {func(s *Spec) { s.Claims = []string{"listenbrainz_token"} }, "never put into an access token"},
		"a registered claim name": {func(s *Spec) { s.Claims = []string{"email"} }, "custom claim key"},
		"an unknown introspector": {func(s *Spec) { s.Introspectors = []string{"nobody"} }, "not a registered client"},
		"a description too long": {func(s *Spec) {
			s.Scopes = []storage.APIScope{{Name: "a", Description: strings.Repeat("d", MaxDescriptionLen+1)}}
		}, "description"},
	} {
		spec := ok
		spec.Scopes = append([]storage.APIScope(nil), ok.Scopes...)
		c.mutate(&spec)
		if _, err := r.Create(ctx, spec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
	if list, err := store.ListAPIs(ctx); err != nil || len(list) != 0 {
		t.Fatalf("refused specs stored %v (%v)", list, err)
	}
	// The valid spec: claims and introspectors are kept once each.
	ok.Claims, ok.Introspectors = []string{"role", "role", "team"}, []string{"rs", "rs"}
	a, err := r.Create(ctx, ok)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(a.Claims, " ") != "role team" || strings.Join(a.Introspectors, " ") != "rs" || a.CreatedAt.IsZero() {
		t.Fatalf("created = %+v", a)
	}
	if _, err := r.Create(ctx, ok); !errors.Is(err, ErrExists) {
		t.Fatalf("the same identifier again = %v", err)
	}
	// One API owns a scope.
	if _, err := r.Create(ctx, Spec{ID: "https://other.example", Scopes: scopes("music.read")}); err == nil || !strings.Contains(err.Error(), ok.ID) {
		t.Fatalf("a scope of another API = %v, want it to name %s", err, ok.ID)
	}
	// Check validates as Create does and returns the API it describes.
	if got, err := r.Check(ctx, ok); err != nil || got.ID != ok.ID || strings.Join(got.Claims, " ") != "role team" {
		t.Fatalf("Check = %+v %v", got, err)
	}
}

// TestScopesHeldByClients: a scope a client holds can be neither dropped
// nor deleted with its API; the message names the clients.
func TestScopesHeldByClients(t *testing.T) {
	t.Parallel()
	r, store, _ := newRegistry(t)
	ctx := context.Background()
	a, err := r.Create(ctx, Spec{ID: "https://music.example/api", Scopes: scopes("music.read", "music.write")})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateClient(ctx, storage.Client{ID: "player", Scopes: []string{"openid", "music.read"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	only := scopes("music.write")
	if _, err := r.Update(ctx, a.ID, Update{Scopes: &only}); err == nil || !strings.Contains(err.Error(), "player") {
		t.Fatalf("dropping a held scope = %v", err)
	}
	if err := r.Delete(ctx, a.ID); err == nil || !strings.Contains(err.Error(), "player") {
		t.Fatalf("deleting an API whose scope is held = %v", err)
	}
	// The unheld scope may go; the name changes with it.
	kept, name := scopes("music.read"), "Music"
	if got, err := r.Update(ctx, a.ID, Update{Scopes: &kept, Name: &name}); err != nil || len(got.Scopes) != 1 || got.Name != "Music" {
		t.Fatalf("dropping an unheld scope = %+v %v", got, err)
	}
	if err := store.DeleteClient(ctx, "player"); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted API = %v", err)
	}
	if err := r.Delete(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice = %v", err)
	}
	if _, err := r.Update(ctx, "https://nothing.example", Update{Name: &name}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("updating an unknown API = %v", err)
	}
}

// TestBuiltinAPI: tonearm's own API is always listed first and cannot be
// changed or deleted; a stored row under its id is ignored and reported,
// and deleting it is how the operator clears it.
func TestBuiltinAPI(t *testing.T) {
	t.Parallel()
	r, store, _ := newRegistry(t)
	ctx := context.Background()
	name := "mine"
	if _, err := r.Update(ctx, builtin.ID, Update{Name: &name}); err == nil {
		t.Fatal("the built-in API changed")
	}
	if err := r.Delete(ctx, builtin.ID); err == nil {
		t.Fatal("the built-in API deleted")
	}
	if got, err := r.Get(ctx, builtin.ID); err != nil || got.Name != "tonearm" {
		t.Fatalf("Get(builtin) = %+v %v", got, err)
	}
	if _, found, err := r.Shadowing(ctx); found || err != nil {
		t.Fatalf("shadowing with no row = %v %v", found, err)
	}
	// A row under the built-in id (written past Create, as an old
	// issuer's command line could) never lends its scopes to it.
	if err := store.CreateAPI(ctx, storage.API{ID: builtin.ID, Name: "shadow", Scopes: scopes("sneaky"), Claims: []string{}, Introspectors: []string{}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	list, err := r.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "tonearm" {
		t.Fatalf("List with a shadow = %+v %v", list, err)
	}
	if defined, err := r.ScopeDefined(ctx, "sneaky"); defined || err != nil {
		t.Fatalf("the shadow's scope is defined: %v %v", defined, err)
	}
	if shadow, found, err := r.Shadowing(ctx); !found || err != nil || shadow.Name != "shadow" {
		t.Fatalf("Shadowing = %+v %v %v", shadow, found, err)
	}
	if err := r.Delete(ctx, builtin.ID); err != nil {
		t.Fatalf("deleting the shadow: %v", err)
	}
	if _, found, _ := r.Shadowing(ctx); found {
		t.Fatal("the shadow is still there")
	}
}

// TestCache: Cached answers from memory for CacheTTL (another replica's
// change shows after it at the latest), this replica's own changes show at
// once, and the version moves only when the list does.
func TestCache(t *testing.T) {
	t.Parallel()
	r, store, clk := newRegistry(t)
	ctx := context.Background()
	// Another replica on the same database.
	other, err := NewRegistry(store, builtin, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	first, v1, err := r.Cached(ctx)
	if err != nil || len(first) != 1 || first[0].ID != builtin.ID {
		t.Fatalf("Cached = %+v %v", first, err)
	}
	if _, err := other.Create(ctx, Spec{ID: "https://music.example/api", Scopes: scopes("music.read"), OpenToApps: true}); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(CacheTTL - time.Millisecond)
	if list, v, _ := r.Cached(ctx); len(list) != 1 || v != v1 {
		t.Fatalf("within the TTL: %d APIs, version %d (was %d)", len(list), v, v1)
	}
	clk.t = clk.t.Add(time.Millisecond)
	list, v2, err := r.Cached(ctx)
	if err != nil || len(list) != 2 || v2 == v1 {
		t.Fatalf("at the TTL: %d APIs, version %d (was %d), %v", len(list), v2, v1, err)
	}
	// A reread that finds the same list keeps the version.
	if _, v, _ := r.Fresh(ctx); v != v2 {
		t.Fatalf("Fresh of an unchanged list moved the version %d → %d", v2, v)
	}
	// This replica's own change shows at once.
	if _, err := r.Create(ctx, Spec{ID: "https://notes.example", Scopes: scopes("notes")}); err != nil {
		t.Fatal(err)
	}
	if list, v, _ := r.Cached(ctx); len(list) != 3 || v == v2 {
		t.Fatalf("after its own change: %d APIs, version %d", len(list), v)
	}
	for scope, want := range map[string][2]bool{"music.read": {true, true}, "notes": {true, false}, "account": {true, false}, "nothing": {false, false}} {
		defined, err1 := r.ScopeDefined(ctx, scope)
		open, err2 := r.ScopeOpenToApps(ctx, scope)
		if defined != want[0] || open != want[1] || err1 != nil || err2 != nil {
			t.Errorf("%s: defined %v open %v (%v %v), want %v", scope, defined, open, err1, err2, want)
		}
	}
}

func TestValidateCustomClaimKey(t *testing.T) {
	t.Parallel()
	for _, k := range []string{"team", "a.b:c-d_e", "X" + strings.Repeat("y", 63)} {
		if err := ValidateCustomClaimKey(k); err != nil {
			t.Errorf("%q refused: %v", k, err)
		}
	}
	for _, k := range []string{"", "1team", "sub", "email", "role", "listenbrainz_token", "a b", "X" + strings.Repeat("y", 64)} {
		if err := ValidateCustomClaimKey(k); err == nil {
			t.Errorf("%q accepted", k)
		}
	}
}
