package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/audit/audittest"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// Found from outside, item 9: a change that changes nothing records no
// event and leaves updatedAt, whichever front door made it (the admin API
// and the console here, the command line below); one that changes
// something names the fields, never their values.
func TestRound4AuditNoOpChangesFromTheAPIAndConsole(t *testing.T) {
	bothDatabases(t, noOpChangesFromTheAPIAndConsole)
}

func noOpChangesFromTheAPIAndConsole(t *testing.T, dbURL string) {
	s := startE2E(t, dbURL, options{})
	ctx := context.Background()
	_, opsSecret := s.client(clients.Spec{ID: "ops", GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}})
	ops := s.clientToken("ops", opsSecret, "admin")
	s.client(clients.Spec{ID: "my-app", RedirectURIs: []string{"https://my-app.example/cb"}})
	eve := s.user("eve")
	events := audittest.New(t, s.app.store)

	const api = "https://api.example.org/x"
	apiPath := "/api/admin/apis/" + url.PathEscape(api)
	s.want(s.call(nil, http.MethodPost, "/api/admin/apis", ops, map[string]any{"id": api, "name": "X", "scopes": []map[string]string{{"name": "x:read"}}}), http.StatusOK)
	s.want(s.call(nil, http.MethodPost, "/api/admin/connectors", ops, map[string]any{"id": "mb", "kind": "musicbrainz", "name": "MusicBrainz", "clientId": "abc", "clientSecret": "s3cret-value"}), http.StatusOK)
	events.Fresh(t)
	mb, _ := s.app.store.GetConnector(ctx, "mb")
	for _, noop := range []struct{ path, body string }{
		{"/api/admin/clients/my-app", `{}`},
		{"/api/admin/clients/my-app", `{"redirectUris": ["https://my-app.example/cb"], "disabled": false}`},
		{"/api/admin/users/" + eve.ID, `{}`},
		{"/api/admin/users/" + eve.ID, `{"role": "user", "disabled": false}`},
		{apiPath, `{}`},
		{apiPath, `{"name": "X"}`},
		{"/api/admin/connectors/mb", `{}`},
		{"/api/admin/connectors/mb", `{"name": "MusicBrainz"}`},
	} {
		var body map[string]any
		_ = json.Unmarshal([]byte(noop.body), &body)
		s.want(s.call(nil, http.MethodPatch, noop.path, ops, body), http.StatusOK)
		events.WantNone(t, "PATCH "+noop.path+" "+noop.body)
	}
	if u, _ := s.app.store.GetUser(ctx, eve.ID); !u.UpdatedAt.Equal(eve.UpdatedAt) {
		t.Fatalf("no-op PATCHes moved the user's updatedAt from %s to %s", eve.UpdatedAt, u.UpdatedAt)
	}
	if c, _ := s.app.store.GetConnector(ctx, "mb"); !c.UpdatedAt.Equal(mb.UpdatedAt) {
		t.Fatalf("no-op PATCHes moved the connector's updatedAt from %s to %s", mb.UpdatedAt, c.UpdatedAt)
	}
	byOps := audittest.Want{Type: audit.ClientChanged, Actor: "client:ops", Client: "my-app", IP: "127.0.0.1",
		Detail: `{"fields":["redirectUris","name"]}`}
	s.want(s.call(nil, http.MethodPatch, "/api/admin/clients/my-app", ops, map[string]any{"name": "Mine", "redirectUris": []string{"https://my-app.example/back"}}), http.StatusOK)
	events.WantOne(t, "a client's name and redirect URIs changed", byOps)

	// The console: Enable on an enabled client changes nothing; a value
	// other than the form's yes/no is refused and changes nothing.
	boss, err := s.app.accounts.Create(ctx, accounts.NewUser{Username: "boss", Password: e2ePassword, Role: storage.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	c := s.browser()
	s.signInPage(t, c, "boss")
	events.Fresh(t)
	page := get(t, c, s.issuer+"/admin/clients/my-app")
	f := accountForm(t, page, "/admin/clients/my-app/disabled")
	if got := submit(t, c, f, map[string]string{"disabled": "no"}); got.status != http.StatusOK {
		t.Fatalf("console enable of an enabled client: %d", got.status)
	}
	events.WantNone(t, "console: enable an enabled client")
	if got := submit(t, c, f, map[string]string{"disabled": "yes"}); got.status != http.StatusOK {
		t.Fatalf("console disable: %d", got.status)
	}
	events.WantOne(t, "console: disable", audittest.Want{Type: audit.ClientChanged, Actor: boss.ID, Client: "my-app", IP: "127.0.0.1",
		Detail: `{"fields":["disabled"],"disabled":true}`})
	for _, value := range []string{"true", "false", "", "YES", "on"} {
		f := accountForm(t, get(t, c, s.issuer+"/admin/clients/my-app"), "/admin/clients/my-app/disabled")
		got := submit(t, c, f, map[string]string{"disabled": value})
		if got.status != http.StatusBadRequest || !strings.Contains(got.body, `must be &#34;yes&#34;`) {
			t.Fatalf("console disabled=%q: %d\n%s", value, got.status, got.body)
		}
		events.WantNone(t, "console: disabled="+value)
		if cl, _ := s.app.store.GetClient(ctx, "my-app"); !cl.Disabled {
			t.Fatalf("console disabled=%q enabled the client", value)
		}
	}
}

// The command line: update with no flag changes nothing and records
// nothing (users, clients, APIs, connectors).
func TestRound4AuditNoOpChangesFromTheCommandLine(t *testing.T) {
	env := migratedEnv(t)
	events := audittest.New(t, dbEvents(env("TONEARM_DATABASE_URL")))
	file := "apis:\n  - id: https://api.example.org/listens\n    scopes: [{name: listens:read}]\n" +
		"clients:\n  - id: my-app\n    redirectUris: [https://my-app.example/cb]\n"
	if out, code, err := applyFile(t, env, file); err != nil || code != 0 {
		t.Fatalf("apply: %v (exit %d)\n%s", err, code, out)
	}
	var out strings.Builder
	if err := run(context.Background(), []string{"users", "create", "--username", "root", "--password-stdin", "--role", "admin"}, env, strings.NewReader("a-long-admin-password\n"), &out, &out); err != nil {
		t.Fatal(err)
	}
	before, _, _, err := cliRun(t, env, "users", "show", "root", "--json")
	if err != nil {
		t.Fatal(err)
	}
	events.Fresh(t)
	for _, args := range [][]string{
		{"clients", "update", "my-app"},
		{"clients", "update", "my-app", "--redirect-uri", "https://my-app.example/cb"},
		{"users", "update", "root"},
		{"users", "enable", "root"},
		{"apis", "update", "https://api.example.org/listens"},
	} {
		if _, stderr, _, err := cliRun(t, env, args...); err != nil {
			t.Fatalf("%v: %v %s", args, err, stderr)
		}
		events.WantNone(t, strings.Join(args, " "))
	}
	if after, _, _, _ := cliRun(t, env, "users", "show", "root", "--json"); after != before {
		t.Fatalf("a no-op users update changed the user:\n%s\n%s", before, after)
	}
	if _, _, _, err := cliRun(t, env, "clients", "update", "my-app", "--name", "Mine"); err != nil {
		t.Fatal(err)
	}
	events.WantOne(t, "clients update --name", audittest.Want{Type: audit.ClientChanged, Actor: "cli", Client: "my-app", Detail: `{"fields":["name"]}`})
}

// Found from outside, item 10: a refused registration names the developer
// and the app it was for, whichever door it came through: RFC 7592 with
// the app's registration access token (a bad redirect URI, the admin
// scope, another app's client_id), RFC 7591 with a developer's initial
// access token, and the developer page. A wrong token names no one and
// records nothing.
func TestRound4AuditRefusedRegistrationsNameTheAppAndDeveloper(t *testing.T) {
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	ctx := context.Background()
	dev := s.user("devi")
	_, iat, err := s.app.initialTokens.Create(ctx, dev.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	status, app := s.registerJSON(t, iat, map[string]any{"client_name": "Registered", "redirect_uris": []string{redirectURI}})
	if status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, app)
	}
	id, uri, rat := app["client_id"].(string), app["registration_client_uri"].(string), app["registration_access_token"].(string)
	events := audittest.New(t, s.app.store)
	refused := func(actor, client, how, code string) audittest.Want {
		return audittest.Want{Type: audit.AppRefused, Actor: actor, User: dev.ID, Client: client, IP: "127.0.0.1",
			Detail: `{"how":"` + how + `","error":"` + code + `"}`}
	}
	for _, put := range []struct {
		what string
		body map[string]any
		code string
	}{
		{"a bad redirect URI", map[string]any{"client_id": id, "client_name": "R", "redirect_uris": []string{"ftp://x.example/cb"}}, "invalid_redirect_uri"},
		{"the admin scope", map[string]any{"client_id": id, "client_name": "R", "redirect_uris": []string{redirectURI}, "scope": "openid admin"}, "invalid_client_metadata"},
		{"another client_id", map[string]any{"client_id": "someone-else", "client_name": "R", "redirect_uris": []string{redirectURI}}, "invalid_client_metadata"},
	} {
		if status, got := s.jsonCall(t, http.MethodPut, uri, rat, put.body); status != http.StatusBadRequest || got["error"] != put.code {
			t.Fatalf("PUT with %s: %d %v", put.what, status, got)
		}
		events.WantOne(t, "RFC 7592 PUT with "+put.what, refused("", id, "token", put.code))
	}
	if status, _ := s.jsonCall(t, http.MethodPut, uri, "not-the-token", map[string]any{"client_id": id}); status != http.StatusUnauthorized {
		t.Fatalf("PUT with a wrong token: %d", status)
	}
	events.WantNone(t, "RFC 7592 PUT with a wrong token")
	if status, _ := s.registerJSON(t, iat, map[string]any{"client_name": "Bad", "redirect_uris": []string{"ftp://x.example/cb"}}); status != http.StatusBadRequest {
		t.Fatalf("RFC 7591 with a bad redirect URI: %d", status)
	}
	events.WantOne(t, "RFC 7591 with a bad redirect URI", refused("", "", "token", "invalid_redirect_uri"))

	// The developer page: the same refusals, the same events.
	b := s.browser()
	s.signInPage(t, b, "devi")
	events.Fresh(t)
	page := get(t, b, s.issuer+"/developer")
	bad := submit(t, b, accountForm(t, page, "/developer/apps"), map[string]string{"name": "Sneaky", "type": "web", "redirect_uris": redirectURI, "scopes": "openid admin"})
	if bad.status != http.StatusBadRequest {
		t.Fatalf("/developer register with the admin scope: %d", bad.status)
	}
	events.WantOne(t, "/developer register with the admin scope", refused(dev.ID, "", "developer", "invalid_client_metadata"))
	f := accountForm(t, page, "/developer/apps/update")
	if f.values.Get("client_id") != id {
		t.Fatalf("the edit form is for %q, want %q", f.values.Get("client_id"), id)
	}
	if p := submit(t, b, f, map[string]string{"name": "R", "redirect_uris": "ftp://x.example/cb"}); p.status != http.StatusBadRequest {
		t.Fatalf("/developer edit with a bad redirect URI: %d", p.status)
	}
	events.WantOne(t, "/developer edit with a bad redirect URI", refused(dev.ID, id, "developer", "invalid_redirect_uri"))
}
