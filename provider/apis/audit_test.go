package apis

import (
	"context"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/audit/audittest"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/sqlitetest"
)

func newAuditedRegistry(t *testing.T) (*Registry, *sqlstore.Store, *audittest.Recorder) {
	store := sqlitetest.Open(t)
	r, err := NewRegistry(store, storage.API{ID: "https://id.example/api", Scopes: []storage.APIScope{{Name: "account"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r, store, audittest.New(t, store)
}

// Each change through the registry records its one event, by the actor of
// the context; a change refused or failed records none.
func TestAPIChangesRecordOneEvent(t *testing.T) {
	r, store, events := newAuditedRegistry(t)
	origin := audit.Origin{Actor: "client:ops", IP: "192.0.2.7"}
	ctx := audit.WithOrigin(context.Background(), origin)
	const id = "https://api.example/listens"
	want := func(typ string) audittest.Want {
		return audittest.Want{Type: typ, Actor: origin.Actor, IP: origin.IP, Detail: `{"api":"` + id + `"}`}
	}
	if _, err := r.Create(ctx, Spec{ID: id, Scopes: []storage.APIScope{{Name: "listens:read"}}}); err != nil {
		t.Fatal(err)
	}
	events.WantOne(t, "Create", want(audit.APICreated))
	name := "Listens"
	if _, err := r.Update(ctx, id, Update{Name: &name}); err != nil {
		t.Fatal(err)
	}
	changed := want(audit.APIChanged)
	changed.Detail = `{"api":"` + id + `","fields":["name"]}`
	events.WantOne(t, "Update", changed)
	for what, u := range map[string]Update{"Update with nothing": {}, "Update to the name it has": {Name: &name}} {
		if a, err := r.Update(ctx, id, u); err != nil || a.Name != name {
			t.Fatalf("%s: %v %+v", what, err, a)
		}
		events.WantNone(t, what)
	}

	// Refusals: a taken identifier, a taken scope, an unknown API, a scope
	// a client holds, tonearm's own API.
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := store.CreateClient(ctx, storage.Client{ID: "player", Scopes: []string{"listens:read"}, GrantTypes: []string{"client_credentials"}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	events.Fresh(t)
	other := []storage.APIScope{{Name: "listens:write"}}
	failures := map[string]func() error{
		"Create of a taken identifier": func() error { _, err := r.Create(ctx, Spec{ID: id, Scopes: other}); return err },
		"Create with a taken scope": func() error {
			_, err := r.Create(ctx, Spec{ID: "https://api.example/other", Scopes: []storage.APIScope{{Name: "listens:read"}}})
			return err
		},
		"Update of an unknown API":          func() error { _, err := r.Update(ctx, "https://api.example/nope", Update{Name: &name}); return err },
		"Update dropping a held scope":      func() error { _, err := r.Update(ctx, id, Update{Scopes: &other}); return err },
		"Delete of an API a client holds":   func() error { return r.Delete(ctx, id) },
		"Delete of an unknown API":          func() error { return r.Delete(ctx, "https://api.example/nope") },
		"Delete of tonearm's own API":       func() error { return r.Delete(ctx, r.Builtin().ID) },
		"Update of tonearm's own API":       func() error { _, err := r.Update(ctx, r.Builtin().ID, Update{Name: &name}); return err },
		"Create under tonearm's own API id": func() error { _, err := r.Create(ctx, Spec{ID: r.Builtin().ID, Scopes: other}); return err },
	}
	for what, do := range failures {
		if err := do(); err == nil {
			t.Fatalf("%s succeeded", what)
		}
		events.WantNone(t, what)
	}

	if err := store.DeleteClient(ctx, "player"); err != nil {
		t.Fatal(err)
	}
	events.Fresh(t)
	if err := r.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	events.WantOne(t, "Delete", want(audit.APIDeleted))
}
