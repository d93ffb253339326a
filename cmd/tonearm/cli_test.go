package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/storage"
)

// Each subcommand shows only its own flags (server settings on serve and
// migrate alone; the database URL wherever the database is opened, with
// -v: the server's secret comes from TONEARM_SECRET only), -h exits 0, and
// no command logs unless -v.
func TestCLIHelpShowsOnlyEachCommandsFlags(t *testing.T) {
	db := []string{"database-url", "v"}
	server := []string{"admin-mfa", "client-registration", "database-url", "default-language", "dpop-nonce", "event-retention", "issuer", "listen", "listenbrainz-url", "metrics-listen", "previous-secrets", "refresh-grace",
		"registration", "secret", "site-name", "smtp-url", "theme-dir", "trusted-proxies"}
	with := func(own ...string) []string { return append(append([]string{}, db...), own...) }
	clientFlags := []string{"allow-no-pkce", "backchannel-logout-uri", "client-uri", "first-party", "grant-type", "json", "logo-uri",
		"name", "policy-uri", "post-logout-redirect-uri", "redirect-uri", "require-par", "require-dpop", "scope", "tos-uri", "id-token-alg",
		"token-endpoint-auth-method", "jwks-file", "jwks-uri", "request-uri", "request-object-signing-alg", "subject-type", "sector-identifier-uri"}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"serve"}, server},
		{[]string{"migrate"}, append(append([]string{}, server...), "v", "json")},
		{[]string{"users", "create"}, with("username", "password-stdin", "role", "json")},
		{[]string{"users", "list"}, with("username", "email", "role", "limit", "json")},
		{[]string{"users", "show"}, with("json")},
		{[]string{"users", "update"}, with("json", "role", "email", "name", "email-verified", "language")},
		{[]string{"users", "disable"}, with("json")},
		{[]string{"users", "enable"}, with("json")},
		{[]string{"users", "delete"}, with("json")},
		{[]string{"users", "set-password"}, with("password-stdin", "json")},
		{[]string{"clients", "create"}, with(append(clientFlags, "id", "secret", "public")...)},
		{[]string{"clients", "update"}, with(append(clientFlags, "secret")...)},
		{[]string{"clients", "rotate-secret"}, with("keep-old", "json")},
		{[]string{"clients", "show"}, with("json")},
		{[]string{"clients", "list"}, with("json")},
		{[]string{"clients", "delete"}, with("id", "json")},
		{[]string{"apis", "create"}, with("id", "name", "scope", "claim", "introspector", "exchange-from", "open-to-apps", "json")},
		{[]string{"apis", "update"}, with("id", "name", "scope", "claim", "introspector", "exchange-from", "open-to-apps", "json")},
		{[]string{"apis", "show"}, with("id", "json")},
		{[]string{"registration-tokens", "create"}, with("description", "expires", "json")},
		{[]string{"registration-tokens", "list"}, with("json")},
		{[]string{"registration-tokens", "revoke"}, with("id", "json")},
		{[]string{"apis", "list"}, with("json")},
		{[]string{"apis", "delete"}, with("id", "json")},
		{[]string{"connectors", "create"}, with("id", "kind", "name", "client-id", "client-secret-stdin", "issuer", "base-url", "scope", "json")},
		{[]string{"connectors", "update"}, with("id", "name", "client-id", "client-secret-stdin", "issuer", "base-url", "scope", "json")},
		{[]string{"connectors", "list"}, with("json")},
		{[]string{"connectors", "delete"}, with("id", "json")},
		{[]string{"keys", "list"}, with("json")},
		{[]string{"keys", "rotate"}, with("json")},
		{[]string{"reseal"}, with("json")},
		{[]string{"apply"}, with("f", "dry-run", "prune", "json")},
		{[]string{"export"}, with("json")},
		{[]string{"health"}, []string{"url", "json"}},
		{[]string{"version"}, []string{"json"}},
	} {
		var stdout bytes.Buffer // -h is the answer: standard output
		err := run(context.Background(), append(c.args, "-h"), envFunc(nil), nil, &stdout, io.Discard)
		if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 {
			t.Errorf("%v -h = %v (exit %d), want the help and exit 0", c.args, err, exitCode(err))
			continue
		}
		var got []string
		for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(stdout.String(), -1) {
			got = append(got, m[1])
		}
		want := slices.Clone(c.want)
		slices.Sort(got)
		slices.Sort(want)
		want = slices.Compact(want)
		if want == nil {
			want = []string{}
		}
		if got == nil {
			got = []string{}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%v -h shows %v, want %v", c.args, got, want)
		}
	}
	if exitCode(errors.New("boom")) != 1 {
		t.Fatal("a failure must exit 1")
	}
}

// Administration commands print their answer and nothing else; -v adds
// the log lines. version names the build.
func TestCLIQuietUnlessVerbose(t *testing.T) {
	env := envFunc(map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "t.db")})
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"keys", "list"}, env, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if stderr.Len() != 0 || !strings.Contains(stdout.String(), "RS256") {
		t.Fatalf("keys list: stdout %q, stderr %q (want no log lines)", stdout.String(), stderr.String())
	}
	stderr.Reset()
	if err := run(context.Background(), []string{"keys", "list", "-v"}, env, nil, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	if stderr.Len() == 0 {
		t.Fatal("keys list -v logged nothing")
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"version"}, env, nil, &stdout, io.Discard); err != nil || !strings.HasPrefix(stdout.String(), "tonearm ") {
		t.Fatalf("version: %v %q", err, stdout.String())
	}
	stderr.Reset()
	err := run(context.Background(), nil, env, nil, io.Discard, &stderr)
	for _, cmd := range []string{"serve", "migrate", "users", "clients", "apis", "connectors", "registration-tokens", "keys", "apply", "export", "health", "version"} {
		if err == nil || !strings.Contains(stderr.String(), "tonearm "+cmd) {
			t.Errorf("the no-argument usage leaves out %s", cmd)
		}
	}
}

// tonearm users: list, show, update, disable, enable, set-password and
// delete, by username or ID, with the admin API's rules.
func TestUsersCommand(t *testing.T) {
	t.Parallel()
	env := envFunc(map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "t.db")})
	ctx := context.Background()
	cmd := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, env, strings.NewReader(stdin), &out, io.Discard)
		return out.String(), err
	}
	rootID, err := cmd("a-long-admin-password\n", "users", "create", "--username", "root", "--password-stdin", "--role", "admin")
	if err != nil {
		t.Fatal(err)
	}
	rootID = strings.TrimSpace(rootID)
	if _, err := cmd("correct-horse-42\n", "users", "create", "--username", "alice", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	out, err := cmd("", "users", "list")
	if err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, "root") {
		t.Fatalf("users list: %v\n%s", err, out)
	}
	if out, err = cmd("", "users", "list", "--role", "admin", "--json"); err != nil || strings.Contains(out, "alice") || !strings.Contains(out, `"username":"root"`) {
		t.Fatalf("users list --role admin --json: %v\n%s", err, out)
	}
	if out, err = cmd("", "users", "show", rootID); err != nil || !strings.Contains(out, "root") || !strings.Contains(out, "admin") {
		t.Fatalf("users show by ID: %v\n%s", err, out)
	}
	if out, err = cmd("", "users", "update", "alice", "--email", "alice@example.org", "--name", "Alice L", "--json"); err != nil ||
		!strings.Contains(out, `"email":"alice@example.org"`) || !strings.Contains(out, `"name":"Alice L"`) {
		t.Fatalf("users update: %v\n%s", err, out)
	}
	if _, err = cmd("", "users", "update", "alice", "--email-verified", "maybe"); err == nil {
		t.Fatal("--email-verified maybe was accepted")
	}
	if out, err = cmd("", "users", "disable", "alice"); err != nil || !strings.Contains(out, "disabled") {
		t.Fatalf("users disable: %v %q", err, out)
	}
	if out, _ = cmd("", "users", "show", "alice"); !strings.Contains(out, "disabled") {
		t.Fatalf("after disable: %s", out)
	}
	if _, err = cmd("", "users", "enable", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err = cmd("", "users", "set-password", "alice"); err == nil || !strings.Contains(err.Error(), "--password-stdin") {
		t.Fatalf("set-password without --password-stdin: %v", err)
	}
	if _, err = cmd("short\n", "users", "set-password", "alice", "--password-stdin"); err == nil {
		t.Fatal("a short password was set")
	}
	if _, err = cmd("another-long-password\n", "users", "set-password", "alice", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	// The last active admin stays.
	if _, err = cmd("", "users", "disable", "root"); err == nil {
		t.Fatal("the last admin was disabled")
	}
	if _, err = cmd("", "users", "delete", "nobody"); err == nil || !strings.Contains(err.Error(), "no user") {
		t.Fatalf("deleting nobody: %v", err)
	}
	if out, err = cmd("", "users", "delete", "alice"); err != nil || !strings.Contains(out, "deleted alice") {
		t.Fatalf("users delete: %v %q", err, out)
	}
	if _, err = cmd("", "users", "show", "alice"); err == nil {
		t.Fatal("a deleted user is still shown")
	}
}

// tonearm clients update changes only what it is given and keeps the
// secret; rotate-secret prints a new one once, and --keep-old keeps the
// old one working meanwhile (client credentials with both, at a running
// server).
func TestClientsUpdateAndRotateSecret(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		// The server's clock, moved past the client cache's lifetime
		// instead of sleeping through it.
		var offset atomic.Int64
		now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		ageCache := func() { offset.Add(int64(fositestore.ClientCacheTTL + 100*time.Millisecond)) }
		s := startE2E(t, dbURL, options{now: now})
		env := envFunc(map[string]string{"TONEARM_DATABASE_URL": dbURL, "TONEARM_SECRET": string(s.cfg.Secret)})
		cmd := func(args ...string) (string, error) {
			var out bytes.Buffer
			err := run(context.Background(), args, env, nil, &out, io.Discard)
			return out.String(), err
		}
		out, err := cmd("clients", "create", "--id", "svc", "--grant-type", "client_credentials", "--scope", "admin", "--name", "Service", "--json")
		var created map[string]any
		if err != nil || json.Unmarshal([]byte(out), &created) != nil {
			t.Fatalf("clients create: %v %q", err, out)
		}
		first := created["client_secret"].(string)
		if got := s.post(provider.TokenPath, "svc", first, url.Values{"grant_type": {"client_credentials"}}); got.status != http.StatusOK {
			t.Fatalf("the first secret: %d %v", got.status, got.body)
		}
		out, err = cmd("clients", "update", "svc", "--name", "Renamed service", "--json")
		var updated map[string]any
		if err != nil || json.Unmarshal([]byte(out), &updated) != nil || updated["client_name"] != "Renamed service" || updated["scope"] != "admin" ||
			updated["client_secret"] != nil {
			t.Fatalf("clients update --name: %v %q", err, out)
		}
		if _, err := cmd("clients", "update", "svc", "--grant-type", "client_credentials", "--scope", "nonsense:scope"); err == nil || !strings.Contains(err.Error(), "unknown scope") {
			t.Fatalf("an unknown scope: %v", err)
		}
		if _, err := cmd("clients", "update", "nobody", "--name", "x"); err == nil {
			t.Fatal("updating a missing client worked")
		}
		// Rotation keeping the old secret an hour: both work.
		out, err = cmd("clients", "rotate-secret", "svc", "--keep-old", "1h", "--json")
		var rotated map[string]string
		if err != nil || json.Unmarshal([]byte(out), &rotated) != nil || len(rotated["secret"]) < 32 || rotated["secret"] == first {
			t.Fatalf("rotate-secret: %v %q", err, out)
		}
		second := rotated["secret"]
		ageCache() // the server's cached registration ages out
		for name, secret := range map[string]string{"new": second, "kept old": first} {
			if got := s.post(provider.TokenPath, "svc", secret, url.Values{"grant_type": {"client_credentials"}}); got.status != http.StatusOK {
				t.Fatalf("the %s secret: %d %v", name, got.status, got.body)
			}
		}
		// Rotation without --keep-old ends every earlier secret at once.
		if out, err = cmd("clients", "rotate-secret", "svc"); err != nil || !strings.Contains(out, "client_secret: ") {
			t.Fatalf("rotate-secret: %v %q", err, out)
		}
		ageCache()
		for name, secret := range map[string]string{"second": second, "first": first} {
			if got := s.post(provider.TokenPath, "svc", secret, url.Values{"grant_type": {"client_credentials"}}); got.status != http.StatusUnauthorized {
				t.Fatalf("the %s secret after a plain rotation: %d %v", name, got.status, got.body)
			}
		}
		if _, err := cmd("clients", "rotate-secret", "svc", "--keep-old", "9999h"); err == nil {
			t.Fatal("--keep-old past the maximum was accepted")
		}
	})
}

// tonearm health is the container health check (docker-compose.yml): 0
// when the server answers /readyz, an error when it does not.
func TestHealthCommand(t *testing.T) {
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	var out bytes.Buffer
	if err := run(context.Background(), []string{"health", "--url", s.srv.URL + "/readyz"}, envFunc(nil), nil, &out, io.Discard); err != nil || strings.TrimSpace(out.String()) != "ready" {
		t.Fatalf("health of a running server: %v %q", err, out.String())
	}
	s.srv.Close()
	if err := run(context.Background(), []string{"health", "--url", s.srv.URL + "/readyz"}, envFunc(nil), nil, io.Discard, io.Discard); err == nil {
		t.Fatal("health of a stopped server succeeded")
	}
	compose, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil || !strings.Contains(string(compose), `"/usr/local/bin/tonearm", "health"`) {
		t.Fatalf("docker-compose.yml does not check tonearm with tonearm health: %v", err)
	}
}

// tonearm apply makes clients and APIs match the example file, is
// idempotent, --dry-run changes nothing, secrets come from the variables
// secretEnv names, --prune deletes what the file leaves out, and export
// round-trips: applying the export changes nothing. Both databases.
func TestApplyAndExport(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		webSecret, statsSecret := strings.Repeat("w", 40), strings.Repeat("s", 40)
		vars := map[string]string{"TONEARM_DATABASE_URL": dbURL, "TONEARM_SECRET": string(s.cfg.Secret), "SHELF_APP_SECRET": webSecret, "STATS_SECRET": statsSecret}
		cmd := func(stdin string, args ...string) (string, error) {
			var out bytes.Buffer
			err := run(context.Background(), args, envFunc(vars), strings.NewReader(stdin), &out, io.Discard)
			return out.String(), err
		}
		file := filepath.Join("..", "..", "examples", "apply", "tonearm.yaml")
		out, err := cmd("", "apply", "-f", file, "--dry-run")
		if err != nil || !strings.Contains(out, "would create client shelf-app") || !strings.Contains(out, "would create API https://api.example.org/listens") {
			t.Fatalf("apply --dry-run: %v\n%s", err, out)
		}
		if list, _ := s.app.clients.List(context.Background()); len(list) != 0 {
			t.Fatalf("--dry-run created %d clients", len(list))
		}
		if out, err = cmd("", "apply", "-f", file); err != nil || strings.Count(out, "create ") != 4 {
			t.Fatalf("apply: %v\n%s", err, out)
		}
		if out, err = cmd("", "apply", "-f", file); err != nil || strings.TrimSpace(out) != "nothing to change" {
			t.Fatalf("apply again: %v\n%s", err, out)
		}
		api, err := s.app.apis.Get(context.Background(), "https://api.example.org/listens")
		if err != nil || strings.Join(api.Introspectors, ",") != "stats" || len(api.Scopes) != 2 {
			t.Fatalf("the API: %+v %v", api, err)
		}
		// The secret came from STATS_SECRET and works.
		if got := s.post(provider.TokenPath, "stats", statsSecret, url.Values{"grant_type": {"client_credentials"}}); got.status != http.StatusOK {
			t.Fatalf("stats with the secret from its variable: %d %v", got.status, got.body)
		}
		// A changed variable sets the secret; a changed field updates.
		vars["STATS_SECRET"] = strings.Repeat("t", 40)
		if out, err = cmd("", "apply", "-f", file); err != nil || !strings.Contains(out, "set the secret of client stats") {
			t.Fatalf("apply with a new secret: %v\n%s", err, out)
		}
		edited := strings.Replace(mustRead(t, file), "name: Listening stats", "name: Stats, renamed", 1)
		if out, err = cmd(edited, "apply", "-f", "-"); err != nil || strings.TrimSpace(out) != "update client stats" {
			t.Fatalf("apply an edit: %v\n%s", err, out)
		}
		// An app registered by its developer is not configuration: export
		// leaves it out and --prune never deletes it.
		devApp, err := s.app.clients.RegisterApp(context.Background(), clients.AppSpec{Type: clients.AppWeb, RedirectURIs: []string{"https://dev.example/cb"},
			Display: clients.Display{Name: "A developer's app"}}, "", storage.RegisteredOpenly)
		if err != nil {
			t.Fatal(err)
		}
		// Export, then apply the export: nothing to change.
		exported, err := cmd("", "export")
		if err != nil || !strings.Contains(exported, "id: shelf-app") || strings.Contains(exported, webSecret) || strings.Contains(exported, devApp.Client.ID) {
			t.Fatalf("export: %v\n%s", err, exported)
		}
		if out, err = cmd(exported, "apply", "-f", "-", "--prune"); err != nil || strings.TrimSpace(out) != "nothing to change" {
			t.Fatalf("applying the export: %v\n%s", err, out)
		}
		if _, err = cmd("clients: [{id: x, bogus: 1}]", "apply", "-f", "-"); err == nil || !strings.Contains(err.Error(), "bogus") {
			t.Fatalf("an unknown field: %v", err)
		}
		// --prune: a file naming only the API and stats deletes the others.
		only := "apis:\n  - id: https://api.example.org/listens\n    scopes: [{name: listens:read}]\nclients:\n  - id: stats\n    secretEnv: STATS_SECRET\n    grantTypes: [client_credentials]\n    scope: listens:read\n"
		if out, err = cmd(only, "apply", "-f", "-", "--prune"); err != nil || !strings.Contains(out, "delete client shelf-app") || !strings.Contains(out, "delete client scrobbler") {
			t.Fatalf("apply --prune: %v\n%s", err, out)
		}
		list, _ := s.app.clients.List(context.Background())
		var ids []string
		for _, c := range list {
			ids = append(ids, c.ID)
		}
		slices.Sort(ids)
		want := []string{devApp.Client.ID, "stats"}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Fatalf("after --prune: %v, want %v", ids, want)
		}
		// openToApps round-trips.
		open := strings.Replace(only, "    scopes: [{name: listens:read}]\n", "    scopes: [{name: listens:read}]\n    openToApps: true\n", 1)
		if out, err = cmd(open, "apply", "-f", "-"); err != nil || !strings.Contains(out, "update API https://api.example.org/listens") {
			t.Fatalf("apply openToApps: %v\n%s", err, out)
		}
		if api, _ := s.app.apis.Get(context.Background(), "https://api.example.org/listens"); !api.OpenToApps {
			t.Fatal("openToApps was not applied")
		}
		if exported, _ := cmd("", "export"); !strings.Contains(exported, "openToApps: true") {
			t.Fatalf("export without openToApps:\n%s", exported)
		}
	})
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
