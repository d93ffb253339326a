package clients

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/audit/audittest"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/sqlitetest"
)

// auditFixture is a registry and the token manager on a SQLite store, and
// what the store recorded since the last look.
type auditFixture struct {
	reg    *Registry
	tokens *RegistrationTokens
	store  *sqlstore.Store
	events *audittest.Recorder
}

func newAuditFixture(t *testing.T) *auditFixture {
	ctx := context.Background()
	store := sqlitetest.Open(t)
	h, _ := NewSecretHasher([]byte(strings.Repeat("h", 32)))
	reg, err := NewRegistry(store, h)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := NewRegistrationTokens(store, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := store.CreateUser(ctx, storage.User{ID: "dev-1", Username: "dev", PasswordHash: "x", Role: storage.RoleUser, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return &auditFixture{reg: reg, tokens: tokens, store: store, events: audittest.New(t, store)}
}

// byAdmin is the origin the tests act from.
var byAdmin = audit.Origin{Actor: "admin-1", IP: "192.0.2.7"}

// wantOne checks that exactly one event was recorded since the last look:
// typ about user and client, by byAdmin, with detail.
func (f *auditFixture) wantOne(t *testing.T, what, typ, user, client, detail string) {
	t.Helper()
	f.events.WantOne(t, what, audittest.Want{Type: typ, Actor: byAdmin.Actor, User: user, Client: client, IP: byAdmin.IP, Detail: detail})
}

// Every change through the registry records its one event, with the actor
// the transport put in the context, whichever front door made it.
func TestChangesRecordOneEvent(t *testing.T) {
	f := newAuditFixture(t)
	ctx := audit.WithOrigin(context.Background(), byAdmin)
	web := Spec{ID: "shop", RedirectURIs: []string{"https://shop.example/cb"}}

	if _, _, err := f.reg.Create(ctx, web); err != nil {
		t.Fatal(err)
	}
	f.wantOne(t, "Create", audit.ClientCreated, "", "shop", `{}`)
	if _, err := f.reg.Update(ctx, "shop", func(s *Spec) { s.Name = "Shop" }); err != nil {
		t.Fatal(err)
	}
	f.wantOne(t, "Update", audit.ClientChanged, "", "shop", `{"fields":["name"]}`)
	if _, err := f.reg.Update(ctx, "shop", func(s *Spec) { s.Name = "Shop"; s.RedirectURIs = []string{"https://shop.example/cb"} }); err != nil {
		t.Fatal(err)
	}
	f.events.WantNone(t, "Update to the values it holds")
	off := true
	if c, err := f.reg.Update(ctx, "shop", func(s *Spec) { s.Secret = strings.Repeat("s", 32); s.Disabled = &off }); err != nil || !c.Disabled {
		t.Fatalf("Update with a secret and disabled: %v %+v", err, c)
	}
	f.wantOne(t, "Update with a secret", audit.ClientChanged, "", "shop", `{"fields":["disabled"],"disabled":true,"secret":"set"}`)
	if _, err := f.reg.RotateSecret(ctx, "shop", time.Hour); err != nil {
		t.Fatal(err)
	}
	f.wantOne(t, "RotateSecret", audit.ClientChanged, "", "shop", `{"secret":"rotated","keep_old":"1h0m0s"}`)
	if err := f.reg.SetSecret(ctx, "shop", strings.Repeat("t", 32)); err != nil {
		t.Fatal(err)
	}
	f.wantOne(t, "SetSecret", audit.ClientChanged, "", "shop", `{"secret":"set"}`)
	if _, err := f.reg.SetDisabled(ctx, "shop", false); err != nil {
		t.Fatal(err)
	}
	f.wantOne(t, "SetDisabled", audit.ClientChanged, "", "shop", `{"fields":["disabled"],"disabled":false}`)
	if c, err := f.reg.SetDisabled(ctx, "shop", false); err != nil || c.Disabled || c.ID != "shop" {
		t.Fatalf("SetDisabled of an enabled client: %v %+v", err, c)
	}
	f.events.WantNone(t, "SetDisabled of an enabled client")
	if err := f.reg.Delete(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	f.wantOne(t, "Delete", audit.ClientDeleted, "", "shop", `{}`)

	// A developer's app: app.* events about the developer.
	spec := AppSpec{Type: AppWeb, RedirectURIs: []string{"https://app.example/cb"}, Display: Display{Name: "App"}}
	app, err := f.reg.RegisterApp(ctx, spec, "dev-1", storage.RegisteredByDeveloper)
	if err != nil {
		t.Fatal(err)
	}
	id := app.Client.ID
	f.wantOne(t, "RegisterApp", audit.AppRegistered, "dev-1", id, `{"how":"developer"}`)
	spec.Name = "App 2"
	if _, err := f.reg.UpdateApp(ctx, id, spec); err != nil {
		t.Fatal(err)
	}
	f.wantOne(t, "UpdateApp", audit.AppChanged, "dev-1", id, `{"fields":["name"]}`)
	if _, err := f.reg.UpdateApp(ctx, id, spec); err != nil {
		t.Fatal(err)
	}
	f.events.WantNone(t, "UpdateApp to the values it holds")
	if _, err := f.reg.RotateAppSecret(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	f.wantOne(t, "RotateAppSecret", audit.AppChanged, "dev-1", id, `{"secret":"rotated"}`)
	if err := f.reg.DeleteApp(ctx, id); err != nil {
		t.Fatal(err)
	}
	f.wantOne(t, "DeleteApp", audit.AppDeleted, "dev-1", id, `{}`)

	// Initial access tokens: named by ID, never by value.
	rec, value, err := f.tokens.Create(ctx, "dev-1", "ci", 0)
	if err != nil {
		t.Fatal(err)
	}
	f.wantOne(t, "token Create", audit.RegistrationTokens, "dev-1", "", `{"action":"created","id":"`+rec.ID+`"}`)
	if err := f.tokens.Revoke(ctx, rec.ID, "dev-1", false); err != nil {
		t.Fatal(err)
	}
	f.wantOne(t, "token Revoke", audit.RegistrationTokens, "dev-1", "", `{"action":"revoked","id":"`+rec.ID+`"}`)
	all, _ := f.store.ListEvents(ctx, storage.EventFilter{Limit: 100})
	for _, e := range all {
		if strings.Contains(string(e.Detail), value) || strings.Contains(string(e.Detail), strings.Repeat("t", 32)) {
			t.Fatalf("an event holds a secret: %s", e.Detail)
		}
	}
}

// A change refused or failed records nothing.
func TestFailedChangesRecordNothing(t *testing.T) {
	f := newAuditFixture(t)
	ctx := audit.WithOrigin(context.Background(), byAdmin)
	if _, _, err := f.reg.Create(ctx, Spec{ID: "shop", RedirectURIs: []string{"https://shop.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.reg.Create(ctx, Spec{ID: "pub", Public: true, RedirectURIs: []string{"https://pub.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	app, err := f.reg.RegisterApp(ctx, AppSpec{Type: AppNative, RedirectURIs: []string{"https://app.example/cb"}, Display: Display{Name: "App"}}, "dev-1", storage.RegisteredByDeveloper)
	if err != nil {
		t.Fatal(err)
	}
	f.events.Fresh(t)

	failures := []struct {
		what string
		do   func() error
	}{
		{"Create of a taken ID", func() error {
			_, _, err := f.reg.Create(ctx, Spec{ID: "shop", RedirectURIs: []string{"https://shop.example/cb"}})
			return err
		}},
		{"Create of a bad spec", func() error {
			_, _, err := f.reg.Create(ctx, Spec{ID: "bad", RedirectURIs: []string{"ftp://x"}})
			return err
		}},
		{"Update of an unknown client", func() error {
			_, err := f.reg.Update(ctx, "nobody", func(s *Spec) { s.Name = "x" })
			return err
		}},
		{"Update to a bad spec", func() error {
			_, err := f.reg.Update(ctx, "shop", func(s *Spec) { s.RedirectURIs = []string{"ftp://x"} })
			return err
		}},
		{"RotateSecret of a public client (refused inside the write)", func() error {
			_, err := f.reg.RotateSecret(ctx, "pub", 0)
			return err
		}},
		{"SetSecret of an unknown client", func() error { return f.reg.SetSecret(ctx, "nobody", strings.Repeat("s", 32)) }},
		{"SetDisabled of an unknown client", func() error { _, err := f.reg.SetDisabled(ctx, "nobody", true); return err }},
		{"Delete of an unknown client", func() error { return f.reg.Delete(ctx, "nobody") }},
		{"UpdateApp to a bad spec", func() error {
			_, err := f.reg.UpdateApp(ctx, app.Client.ID, AppSpec{Type: AppNative, Display: Display{Name: "App"}})
			return err
		}},
		{"RotateAppSecret of a public app", func() error { _, err := f.reg.RotateAppSecret(ctx, app.Client.ID, 0); return err }},
		{"DeleteApp of an unknown app", func() error { return f.reg.DeleteApp(ctx, "app-nobody") }},
		{"RegisterApp without a name", func() error {
			_, err := f.reg.RegisterApp(ctx, AppSpec{Type: AppNative, RedirectURIs: []string{"https://app.example/cb"}}, "dev-1", storage.RegisteredByDeveloper)
			return err
		}},
		{"token Create too long-lived", func() error { _, _, err := f.tokens.Create(ctx, "dev-1", "", 2*MaxTokenTTL); return err }},
		{"token Revoke of an unknown token", func() error { return f.tokens.Revoke(ctx, "nope", "dev-1", false) }},
	}
	for _, fl := range failures {
		if err := fl.do(); err == nil {
			t.Fatalf("%s succeeded", fl.what)
		}
		f.events.WantNone(t, fl.what)
	}
}

// A change made in the caller's transaction (tonearm apply --dry-run)
// joins it: rolled back, neither the change nor its event stays.
func TestChangeJoinsTheCallersTransaction(t *testing.T) {
	f := newAuditFixture(t)
	ctx := audit.WithOrigin(context.Background(), audit.Origin{Actor: "cli"})
	tx, err := f.store.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.reg.Create(tx, Spec{ID: "shop", RedirectURIs: []string{"https://shop.example/cb"}}); err != nil {
		t.Fatalf("Create in the caller's transaction: %v", err)
	}
	if evs, _ := f.store.ListEvents(tx, storage.EventFilter{Limit: 5}); len(evs) != 1 || evs[0].Type != audit.ClientCreated {
		t.Fatalf("inside the transaction: %+v", evs)
	}
	if err := f.store.RollbackTx(tx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Get(ctx, "shop"); err == nil {
		t.Fatal("the rolled-back client stayed")
	}
	f.events.WantNone(t, "the rolled-back Create")
}
