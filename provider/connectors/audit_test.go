package connectors

import (
	"context"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/audit/audittest"
	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/sqlitetest"
)

// Each change through the registry records its one event, by the actor of
// the context, and never the client secret; a change refused or failed
// records none.
func TestConnectorChangesRecordOneEvent(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.Open(t)
	box, _ := seal.New(seal.DeriveKey([]byte(strings.Repeat("s", 32)), "t"))
	r, err := New(store, box, "https://id.example", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	events := audittest.New(t, store)
	origin := audit.Origin{Actor: "admin-1", IP: "192.0.2.7"}
	ctx = audit.WithOrigin(ctx, origin)
	want := func(typ, detail string) audittest.Want {
		return audittest.Want{Type: typ, Actor: origin.Actor, IP: origin.IP, Detail: detail}
	}
	const secret = "upstream-secret-value"
	if _, err := r.Create(ctx, Spec{ID: "mb", Kind: storage.ConnectorMusicBrainz, Name: "MetaBrainz", ClientID: "c", ClientSecret: secret}); err != nil {
		t.Fatal(err)
	}
	events.WantOne(t, "Create", want(audit.ConnectorCreated, `{"connector":"mb","kind":"musicbrainz"}`))
	if _, err := r.Update(ctx, "mb", func(s *Spec) { s.Name = "MusicBrainz"; s.ClientSecret = secret + "-2" }); err != nil {
		t.Fatal(err)
	}
	events.WantOne(t, "Update", want(audit.ConnectorChanged, `{"connector":"mb","fields":["name"],"secret":"set"}`))
	before, _ := r.Get(ctx, "mb")
	for what, change := range map[string]func(*Spec){
		"Update with nothing":           func(*Spec) {},
		"Update to the values it holds": func(s *Spec) { s.Name = "MusicBrainz"; s.Scopes = before.Scopes },
	} {
		if c, err := r.Update(ctx, "mb", change); err != nil || c.Name != "MusicBrainz" {
			t.Fatalf("%s: %v %+v", what, err, c)
		}
		events.WantNone(t, what)
		if c, _ := r.Get(ctx, "mb"); !c.UpdatedAt.Equal(before.UpdatedAt) {
			t.Fatalf("%s moved updatedAt from %s to %s", what, before.UpdatedAt, c.UpdatedAt)
		}
	}

	failures := map[string]func() error{
		"Create of a taken id": func() error {
			_, err := r.Create(ctx, Spec{ID: "mb", Kind: storage.ConnectorMusicBrainz, Name: "Again", ClientID: "c", ClientSecret: secret})
			return err
		},
		"Create of an unknown kind": func() error {
			_, err := r.Create(ctx, Spec{ID: "x", Kind: "saml", Name: "X", ClientID: "c", ClientSecret: secret})
			return err
		},
		"Update of an unknown connector": func() error { _, err := r.Update(ctx, "nope", func(s *Spec) { s.Name = "N" }); return err },
		"Update to a bad spec (refused inside the write)": func() error {
			_, err := r.Update(ctx, "mb", func(s *Spec) { s.BaseURL = "http://mb.example" })
			return err
		},
		"Delete of an unknown connector": func() error { return r.Delete(ctx, "nope") },
	}
	for what, do := range failures {
		if err := do(); err == nil {
			t.Fatalf("%s succeeded", what)
		}
		events.WantNone(t, what)
	}
	if c, _ := r.Get(ctx, "mb"); c.Name != "MusicBrainz" || c.BaseURL != DefaultMusicBrainzURL {
		t.Fatalf("a refused update changed the connector: %+v", c)
	}

	if err := r.Delete(ctx, "mb"); err != nil {
		t.Fatal(err)
	}
	events.WantOne(t, "Delete", want(audit.ConnectorDeleted, `{"connector":"mb"}`))
	all, _ := store.ListEvents(ctx, storage.EventFilter{Limit: 50})
	for _, e := range all {
		if strings.Contains(string(e.Detail), secret) {
			t.Fatalf("an event holds the client secret: %s", e.Detail)
		}
	}
}
