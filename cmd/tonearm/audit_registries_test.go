package main

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/audit/audittest"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
)

// Issue 32, item 4: the registries record the changes made through them,
// so each front door's change is on record exactly once, by the actor its
// transport named, and a refused one not at all. (The admin API, the
// console and the registration endpoint here; the command line below.)
func TestRegistryEventsFromEveryFrontDoor(t *testing.T) {
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	ctx := context.Background()
	_, opsSecret := s.client(clients.Spec{ID: "ops", GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}})
	ops := s.clientToken("ops", opsSecret, "admin")
	events := audittest.New(t, s.app.store)
	// An event about no client names the calling one (audit.Record).
	byOps := func(typ, client, detail string) audittest.Want {
		if client == "" {
			client = "ops"
		}
		return audittest.Want{Type: typ, Actor: "client:ops", Client: client, IP: "127.0.0.1", Detail: detail}
	}

	// The admin API.
	s.want(s.call(nil, http.MethodPost, "/api/admin/clients", ops, map[string]any{"clientId": "made", "redirectUris": []string{"https://made.example/cb"}}), http.StatusOK)
	events.WantOne(t, "admin API: create a client", byOps(audit.ClientCreated, "made", ""))
	s.want(s.call(nil, http.MethodPatch, "/api/admin/clients/made", ops, map[string]any{"name": "Made", "disabled": true}), http.StatusOK)
	events.WantOne(t, "admin API: change and disable a client", byOps(audit.ClientChanged, "made", `{"fields":["name","disabled"],"disabled":true}`))
	if c, _ := s.app.store.GetClient(ctx, "made"); c.Name != "Made" || !c.Disabled {
		t.Fatalf("after the PATCH: %+v", c)
	}
	s.want(s.call(nil, http.MethodPatch, "/api/admin/clients/made", ops, map[string]any{"redirectUris": []string{"ftp://made.example"}}), http.StatusBadRequest)
	events.WantNone(t, "admin API: a refused client change")
	s.want(s.call(nil, http.MethodPost, "/api/admin/clients/made/secret", ops, map[string]any{"keepOld": "1h"}), http.StatusOK)
	events.WantOne(t, "admin API: rotate a secret", byOps(audit.ClientChanged, "made", `{"secret":"rotated","keep_old":"1h0m0s"}`))
	s.want(s.call(nil, http.MethodDelete, "/api/admin/clients/made", ops, nil), http.StatusOK)
	events.WantOne(t, "admin API: delete a client", byOps(audit.ClientDeleted, "made", ""))
	s.want(s.call(nil, http.MethodDelete, "/api/admin/clients/made", ops, nil), http.StatusNotFound)
	events.WantNone(t, "admin API: delete a client that is gone")

	const api = "https://api.example.org/x"
	apiPath := "/api/admin/apis/" + url.PathEscape(api)
	s.want(s.call(nil, http.MethodPost, "/api/admin/apis", ops, map[string]any{"id": api, "scopes": []map[string]string{{"name": "x:read"}}}), http.StatusOK)
	events.WantOne(t, "admin API: create an API", byOps(audit.APICreated, "", `{"api":"`+api+`"}`))
	s.want(s.call(nil, http.MethodPatch, apiPath, ops, map[string]any{"introspectors": []string{"ghost"}}), http.StatusBadRequest)
	events.WantNone(t, "admin API: a refused API change")
	s.want(s.call(nil, http.MethodPatch, apiPath, ops, map[string]any{"name": "X"}), http.StatusOK)
	events.WantOne(t, "admin API: change an API", byOps(audit.APIChanged, "", `{"api":"`+api+`","fields":["name"]}`))
	s.want(s.call(nil, http.MethodDelete, apiPath, ops, nil), http.StatusOK)
	events.WantOne(t, "admin API: delete an API", byOps(audit.APIDeleted, "", `{"api":"`+api+`"}`))

	s.want(s.call(nil, http.MethodPost, "/api/admin/connectors", ops, map[string]any{"id": "mb", "kind": "musicbrainz", "name": "MusicBrainz", "clientId": "abc", "clientSecret": "s3cret-value"}), http.StatusOK)
	events.WantOne(t, "admin API: create a connector", byOps(audit.ConnectorCreated, "", `{"connector":"mb","kind":"musicbrainz"}`))
	s.want(s.call(nil, http.MethodPatch, "/api/admin/connectors/mb", ops, map[string]any{"baseUrl": "http://mb.example"}), http.StatusBadRequest)
	events.WantNone(t, "admin API: a refused connector change")
	s.want(s.call(nil, http.MethodPatch, "/api/admin/connectors/mb", ops, map[string]any{"name": "MetaBrainz"}), http.StatusOK)
	events.WantOne(t, "admin API: change a connector", byOps(audit.ConnectorChanged, "", `{"connector":"mb","fields":["name"]}`))
	s.want(s.call(nil, http.MethodDelete, "/api/admin/connectors/mb", ops, nil), http.StatusOK)
	events.WantOne(t, "admin API: delete a connector", byOps(audit.ConnectorDeleted, "", `{"connector":"mb"}`))

	// The console, by the signed-in admin.
	boss, err := s.app.accounts.Create(ctx, accounts.NewUser{Username: "boss", Password: e2ePassword, Role: storage.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	c := s.browser()
	s.signInPage(t, c, "boss")
	events.Fresh(t)
	byBoss := audittest.Want{Actor: boss.ID, IP: "127.0.0.1"}
	f := accountForm(t, get(t, c, s.issuer+"/admin/connectors"), "/admin/connectors")
	if bad := submit(t, c, f, map[string]string{"id": "company", "kind": "oidc", "name": "Company", "client_id": "t", "client_secret": "s", "issuer": "http://login.example"}); bad.status != http.StatusBadRequest {
		t.Fatalf("console create (bad): %d", bad.status)
	}
	events.WantNone(t, "console: a refused connector")
	made := submit(t, c, f, map[string]string{"id": "company", "kind": "oidc", "name": "Company", "client_id": "t", "client_secret": "s", "issuer": "https://login.example"})
	if made.status != http.StatusOK {
		t.Fatalf("console create: %d", made.status)
	}
	want := byBoss
	want.Type, want.Detail = audit.ConnectorCreated, `{"connector":"company","kind":"oidc"}`
	events.WantOne(t, "console: create a connector", want)
	if deleted := submit(t, c, accountForm(t, made, "/admin/connectors/delete"), map[string]string{"confirm": "yes"}); deleted.status != http.StatusOK {
		t.Fatalf("console delete: %d", deleted.status)
	}
	want.Type, want.Detail = audit.ConnectorDeleted, `{"connector":"company"}`
	events.WantOne(t, "console: delete a connector", want)

	// RFC 7591/7592 registration: app.* events about the developer.
	dev := s.user("devi")
	_, iat, err := s.app.initialTokens.Create(ctx, dev.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	events.Fresh(t)
	status, app := s.registerJSON(t, iat, map[string]any{"client_name": "Registered", "redirect_uris": []string{redirectURI}})
	if status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, app)
	}
	id := app["client_id"].(string)
	byToken := audittest.Want{User: dev.ID, Client: id, IP: "127.0.0.1"}
	want = byToken
	want.Type, want.Detail = audit.AppRegistered, `{"how":"token"}`
	events.WantOne(t, "registration: register", want)
	uri, rat := app["registration_client_uri"].(string), app["registration_access_token"].(string)
	update := map[string]any{"client_id": id, "client_name": "Renamed", "redirect_uris": []string{redirectURI}}
	if status, got := s.jsonCall(t, http.MethodPut, uri, rat, update); status != http.StatusOK {
		t.Fatalf("update: %d %v", status, got)
	}
	want.Type, want.Detail = audit.AppChanged, `{"fields":["name"]}`
	events.WantOne(t, "registration: update", want)
	if status, _ := s.jsonCall(t, http.MethodDelete, uri, rat, nil); status != http.StatusNoContent {
		t.Fatalf("delete: %d", status)
	}
	want.Type, want.Detail = audit.AppDeleted, ""
	events.WantOne(t, "registration: delete", want)
	if status, _ := s.jsonCall(t, http.MethodPost, provider.RegisterPath, "iat_unknown", map[string]any{"client_name": "X", "redirect_uris": []string{redirectURI}}); status != http.StatusUnauthorized {
		t.Fatalf("register with an unknown token: %d", status)
	}
	events.WantNone(t, "registration with an unknown token")
}

// dbEvents reads the events of a database the command line writes to,
// opening it for each look (the commands open and close it themselves).
type dbEvents string

func (u dbEvents) ListEvents(ctx context.Context, f storage.EventFilter) ([]storage.Event, error) {
	store, err := sqlstore.Open(ctx, string(u))
	if err != nil {
		return nil, err
	}
	defer store.Close()
	return store.ListEvents(ctx, f)
}

// The command line's changes are on record once each, by "cli"; apply
// --dry-run, whose changes are rolled back, records none.
func TestRegistryEventsFromTheCommandLine(t *testing.T) {
	env := migratedEnv(t)
	events := audittest.New(t, dbEvents(env("TONEARM_DATABASE_URL")))
	byCLI := func(typ, client, detail string) audittest.Want {
		return audittest.Want{Type: typ, Actor: "cli", Client: client, Detail: detail}
	}
	if _, _, _, err := cliRun(t, env, "clients", "create", "--id", "shop", "--redirect-uri", "https://shop.example/cb"); err != nil {
		t.Fatal(err)
	}
	events.WantOne(t, "clients create", byCLI(audit.ClientCreated, "shop", ""))
	if _, _, _, err := cliRun(t, env, "clients", "update", "shop", "--name", "Shop"); err != nil {
		t.Fatal(err)
	}
	events.WantOne(t, "clients update", byCLI(audit.ClientChanged, "shop", `{"fields":["name"]}`))
	if _, _, _, err := cliRun(t, env, "clients", "update", "shop", "--redirect-uri", "ftp://shop.example"); err == nil {
		t.Fatal("a bad update succeeded")
	}
	events.WantNone(t, "a refused clients update")

	file := "apis:\n  - id: https://api.example.org/listens\n    scopes: [{name: listens:read}]\n" +
		"clients:\n  - id: stats\n    grantTypes: [client_credentials]\n    scope: listens:read\n"
	if out, code, err := applyFile(t, env, file, "--dry-run"); err != nil || code != 0 {
		t.Fatalf("apply --dry-run: %v (exit %d)\n%s", err, code, out)
	}
	events.WantNone(t, "apply --dry-run")
	if _, _, err := applyFile(t, env, file); err != nil {
		t.Fatal(err)
	}
	got := events.Fresh(t)
	if len(got) != 2 || got[0].Type != audit.APICreated || got[1].Type != audit.ClientCreated || got[0].Actor != "cli" || got[1].Actor != "cli" {
		t.Fatalf("apply recorded %+v, want api.created and client.created by cli", got)
	}
}
