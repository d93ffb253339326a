package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/storage"
)

// Connectors are managed through the admin API, the command line and the
// console, with the same rules; each change is an audit event; the client
// secret is sealed and never shown.
func TestConnectorsAdmin(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		s := startE2E(t, dbURL, options{})
		ops := s.opsToken()
		create := map[string]any{"id": "musicbrainz", "kind": "musicbrainz", "name": "MusicBrainz", "clientId": "abc", "clientSecret": "s3cret-value"}
		got := s.want(s.call(nil, http.MethodPost, "/api/admin/connectors", ops, create), http.StatusOK)
		if got.body["baseUrl"] != connectors.DefaultMusicBrainzURL || got.body["callback"] != s.issuer+"/connectors/musicbrainz/callback" ||
			strings.Contains(got.raw, "s3cret-value") {
			t.Fatalf("created: %s", got.raw)
		}
		stored, err := s.app.store.GetConnector(ctx, "musicbrainz")
		if err != nil || bytes.Contains(stored.ClientSecret, []byte("s3cret-value")) {
			t.Fatalf("the secret is stored in the clear: %v", err)
		}
		s.want(s.call(nil, http.MethodPost, "/api/admin/connectors", ops, create), http.StatusConflict) // taken, as a client or API id is
		for _, bad := range []map[string]any{
			{"id": "Bad ID", "kind": "oidc", "name": "X", "clientId": "a", "clientSecret": "b", "issuer": "https://x.example"},
			{"id": "x", "kind": "saml", "name": "X", "clientId": "a", "clientSecret": "b"},
			{"id": "x", "kind": "oidc", "name": "X", "clientId": "a", "clientSecret": "b", "issuer": "http://upstream.example"},
			{"id": "x", "kind": "oidc", "name": "X", "clientId": "a", "clientSecret": "b"},
			{"id": "x", "kind": "musicbrainz", "name": "X", "clientId": "a", "clientSecret": "b", "baseUrl": "ftp://mb.example"},
			{"id": "x", "kind": "musicbrainz", "name": "X", "clientId": "a"},
		} {
			if r := s.call(nil, http.MethodPost, "/api/admin/connectors", ops, bad); r.status != http.StatusBadRequest || r.body["error"] == "" {
				t.Errorf("creating %v = %d %s", bad, r.status, r.raw)
			}
		}
		if list, _ := s.app.store.ListConnectors(ctx); len(list) != 1 {
			t.Fatalf("refused connectors were stored: %+v", list)
		}
		upd := s.want(s.call(nil, http.MethodPatch, "/api/admin/connectors/musicbrainz", ops, map[string]any{"name": "MetaBrainz", "scopes": []string{"email"}}), http.StatusOK)
		if upd.body["name"] != "MetaBrainz" || upd.body["clientId"] != "abc" {
			t.Fatalf("patched: %s", upd.raw)
		}
		s.want(s.call(nil, http.MethodPatch, "/api/admin/connectors/musicbrainz", ops, map[string]any{"baseUrl": "http://mb.example"}), http.StatusBadRequest)
		s.want(s.call(nil, http.MethodPatch, "/api/admin/connectors/nope", ops, map[string]any{"name": "x"}), http.StatusNotFound)
		s.want(s.call(nil, http.MethodGet, "/api/admin/connectors/musicbrainz", ops, nil), http.StatusOK)
		list := s.want(s.call(nil, http.MethodGet, "/api/admin/connectors", ops, nil), http.StatusOK)
		if !strings.Contains(list.raw, `"MetaBrainz"`) {
			t.Fatalf("list: %s", list.raw)
		}
		// The login page offers it.
		if p := get(t, s.browser(), s.issuer+"/login"); !strings.Contains(p.body, `name="connector" value="musicbrainz"`) || !strings.Contains(p.body, "Continue with MetaBrainz") {
			t.Fatalf("login page:\n%s", p.body)
		}
		s.want(s.call(nil, http.MethodDelete, "/api/admin/connectors/musicbrainz", ops, nil), http.StatusOK)
		s.want(s.call(nil, http.MethodDelete, "/api/admin/connectors/musicbrainz", ops, nil), http.StatusNotFound)
		seen := map[string]bool{}
		for _, e := range eventsOf(s.events(t, "limit=100")) {
			seen[e["type"].(string)] = true
		}
		for _, typ := range []string{audit.ConnectorCreated, audit.ConnectorChanged, audit.ConnectorDeleted} {
			if !seen[typ] {
				t.Errorf("no %s event", typ)
			}
		}
		// The console: create (a bad one first: the form keeps what was
		// typed), edit, delete.
		if _, err := s.app.accounts.Create(ctx, accounts.NewUser{Username: "boss", Password: e2ePassword, Role: storage.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
		c := s.browser()
		s.signInPage(t, c, "boss")
		page := get(t, c, s.issuer+"/admin/connectors")
		f := accountForm(t, page, "/admin/connectors")
		bad := submit(t, c, f, map[string]string{"id": "company", "kind": "oidc", "name": "Company", "client_id": "t", "client_secret": "s", "issuer": "http://login.example"})
		if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "https") || !strings.Contains(bad.body, `value="Company"`) {
			t.Fatalf("console create (bad): %d\n%s", bad.status, bad.body)
		}
		made := submit(t, c, f, map[string]string{"id": "company", "kind": "oidc", "name": "Company", "client_id": "t", "client_secret": "s", "issuer": "https://login.example"})
		if made.status != http.StatusOK || !strings.Contains(made.body, s.issuer+"/connectors/company/callback") {
			t.Fatalf("console create: %d\n%s", made.status, made.body)
		}
		edited := submit(t, c, accountForm(t, made, "/admin/connectors/update"), map[string]string{"name": "Company SSO"})
		if got, _ := s.app.store.GetConnector(ctx, "company"); edited.status != http.StatusOK || got.Name != "Company SSO" {
			t.Fatalf("console edit: %d %+v\n%s", edited.status, got, edited.body)
		}
		deleted := submit(t, c, accountForm(t, edited, "/admin/connectors/delete"), map[string]string{"confirm": "yes"})
		if _, err := s.app.store.GetConnector(ctx, "company"); deleted.status != http.StatusOK || err == nil {
			t.Fatalf("console delete: %d %v", deleted.status, err)
		}
		// A user's token is no admin.
		s.want(s.call(nil, http.MethodGet, "/api/admin/connectors", "", nil), http.StatusUnauthorized)
	})
}

// tonearm connectors create|list|update|delete.
func TestConnectorsCommand(t *testing.T) {
	t.Parallel()
	env := envFunc(map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "t.db"), "TONEARM_ISSUER": "https://id.example"})
	ctx := context.Background()
	cmd := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, env, strings.NewReader(stdin), &out, io.Discard)
		return out.String(), err
	}
	out, err := cmd("upstream-secret\n", "connectors", "create", "--id", "upstream", "--kind", "oidc", "--name", "Upstream",
		"--client-id", "tonearm", "--client-secret-stdin", "--issuer", "https://login.example", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil || created["callback"] != "https://id.example/connectors/upstream/callback" || strings.Contains(out, "upstream-secret") {
		t.Fatalf("create --json: %s %v", out, err)
	}
	if _, err := cmd("", "connectors", "create", "--id", "mb", "--kind", "musicbrainz", "--name", "MusicBrainz", "--client-id", "x"); err == nil || !strings.Contains(err.Error(), "--client-secret-stdin") {
		t.Fatalf("create without a secret: %v", err)
	}
	if _, err := cmd("s\n", "connectors", "create", "--id", "bad", "--kind", "oidc", "--name", "Bad", "--client-id", "x", "--client-secret-stdin", "--issuer", "http://login.example"); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("an http issuer: %v", err)
	}
	if out, err = cmd("", "connectors", "update", "upstream", "--name", "Login"); err != nil || !strings.Contains(out, "updated connector upstream") {
		t.Fatalf("update: %q %v", out, err)
	}
	if _, err = cmd("", "connectors", "update", "nobody", "--name", "x"); err == nil || !strings.Contains(err.Error(), `no connector "nobody"`) {
		t.Fatalf("update unknown: %v", err)
	}
	out, err = cmd("", "connectors", "list")
	if err != nil || !strings.Contains(out, "Login") || !strings.Contains(out, "https://id.example/connectors/upstream/callback") {
		t.Fatalf("list: %q %v", out, err)
	}
	if out, err = cmd("", "connectors", "delete", "upstream"); err != nil || !strings.Contains(out, "deleted connector upstream") {
		t.Fatalf("delete: %q %v", out, err)
	}
	if out, _ = cmd("", "connectors", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("after delete: %q", out)
	}
	_ = storage.ConnectorOIDC
}

// tonearm registration-tokens: create (--json is {"token": …}), list,
// revoke; a token registers an app until revoked.
func TestRegistrationTokensCommand(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	env := envFunc(map[string]string{"TONEARM_DATABASE_URL": s.cfg.DatabaseURL, "TONEARM_SECRET": string(s.cfg.Secret), "TONEARM_ISSUER": s.issuer})
	cmd := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), args, env, strings.NewReader(""), &out, io.Discard)
		return out.String(), err
	}
	out, err := cmd("registration-tokens", "create", "--description", "ops", "--json")
	var created map[string]string
	if err != nil || json.Unmarshal([]byte(out), &created) != nil || len(created) != 2 || created["id"] == "" || !strings.HasPrefix(created["token"], "iat_") {
		t.Fatalf("create --json: %q %v", out, err)
	}
	meta := map[string]any{"client_name": "From the CLI token", "redirect_uris": []string{redirectURI}}
	if status, body := s.registerJSON(t, created["token"], meta); status != http.StatusCreated {
		t.Fatalf("registering with it: %d %v", status, body)
	}
	list, err := cmd("registration-tokens", "list", "--json")
	var rows []map[string]string
	if err != nil || json.Unmarshal([]byte(list), &rows) != nil || len(rows) != 1 || rows[0]["description"] != "ops" || rows[0]["owner"] != "" {
		t.Fatalf("list: %q %v", list, err)
	}
	if out, err := cmd("registration-tokens", "revoke", rows[0]["id"]); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %q %v", out, err)
	}
	if _, err := cmd("registration-tokens", "revoke", rows[0]["id"]); err == nil || !strings.Contains(err.Error(), "no registration token") {
		t.Fatalf("revoke twice: %v", err)
	}
	if status, _ := s.registerJSON(t, created["token"], meta); status != http.StatusUnauthorized {
		t.Fatalf("a revoked token registered an app: %d", status)
	}
	// apis create|update --open-to-apps.
	if out, err := cmd("apis", "create", "--id", "https://open.example", "--scope", "open:read", "--open-to-apps", "--json"); err != nil || !strings.Contains(out, `"openToApps":true`) {
		t.Fatalf("apis create --open-to-apps: %q %v", out, err)
	}
	if out, err := cmd("apis", "update", "https://open.example", "--open-to-apps=false", "--json"); err != nil || !strings.Contains(out, `"openToApps":false`) {
		t.Fatalf("apis update --open-to-apps=false: %q %v", out, err)
	}
}
