package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Issue 32, item 6: the server's secret comes from TONEARM_SECRET only, so
// --secret on clients update is the client's secret (it used to be taken
// as the master secret, and the client kept its old one).
func TestRound4CLI2UpdateSecretIsTheClients(t *testing.T) {
	t.Parallel()
	env := migratedEnv(t)
	if _, _, _, err := cliRun(t, env, "clients", "create", "--id", "shop", "--redirect-uri", "https://shop.example/cb", "--secret", strings.Repeat("a", 40)); err != nil {
		t.Fatal(err)
	}
	newSecret := strings.Repeat("b", 40)
	if _, stderr, code, err := cliRun(t, env, "clients", "update", "shop", "--secret", newSecret); err != nil {
		t.Fatalf("clients update shop --secret: %v (exit %d) %s", err, code, stderr)
	}
	ctx := context.Background()
	a, err := openApp(ctx, "t", nil, env, io.Discard, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.store.Close()
	c, err := a.clients.Get(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if !a.clients.SecretMatches(ctx, c, newSecret) || a.clients.SecretMatches(ctx, c, strings.Repeat("a", 40)) {
		t.Fatal("clients update --secret did not replace the client's secret")
	}
	// Too short: refused, nothing changed.
	if _, _, code, err := cliRun(t, env, "clients", "update", "shop", "--secret", "short"); err == nil || code != 1 {
		t.Fatalf("a short secret: %v (exit %d), want a failure", err, code)
	}
	// No admin command takes the master secret as a flag any more.
	for _, args := range [][]string{{"clients", "list", "--secret", strings.Repeat("c", 40)}, {"reseal", "--secret", strings.Repeat("c", 40)}} {
		if _, _, code, err := cliRun(t, env, args...); err == nil || code != 2 {
			t.Fatalf("%v: %v (exit %d), want a usage error", args, err, code)
		}
	}
}

// Issue 32, item 6: every command that prints takes --json: what it
// created, showed or changed, in the admin API's names; {} after a delete
// or a revoke.
func TestRound4CLI2JSONOnEveryCommandThatPrints(t *testing.T) {
	t.Parallel()
	env := migratedEnv(t)
	decode := func(args []string, stdin string, into any) {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(context.Background(), append(args, "--json"), env, strings.NewReader(stdin), &out, &errOut); err != nil {
			t.Fatalf("%v --json: %v %s", args, err, errOut.String())
		}
		if err := json.Unmarshal(out.Bytes(), into); err != nil {
			t.Fatalf("%v --json printed %q, not JSON: %v", args, out.String(), err)
		}
	}
	var user map[string]any
	decode([]string{"users", "create", "--username", "alice", "--password-stdin"}, "alice-password-1\n", &user)
	if user["username"] != "alice" || user["id"] == "" || user["role"] != "user" {
		t.Fatalf("users create --json = %v", user)
	}
	decode([]string{"users", "disable", "alice"}, "", &user)
	if user["disabled"] != true {
		t.Fatalf("users disable --json = %v", user)
	}
	decode([]string{"users", "enable", "alice"}, "", &user)
	if user["disabled"] != false {
		t.Fatalf("users enable --json = %v", user)
	}
	decode([]string{"users", "set-password", "alice", "--password-stdin"}, "alice-password-2\n", &user)
	if user["username"] != "alice" {
		t.Fatalf("users set-password --json = %v", user)
	}

	var keys []map[string]any
	decode([]string{"keys", "list"}, "", &keys)
	if len(keys) == 0 || keys[0]["kid"] == "" || keys[0]["alg"] == "" || keys[0]["createdAt"] == "" {
		t.Fatalf("keys list --json = %v", keys)
	}
	var added []map[string]any
	decode([]string{"keys", "rotate"}, "", &added)
	if len(added) == 0 || added[0]["kid"] == "" {
		t.Fatalf("keys rotate --json = %v", added)
	}
	decode([]string{"keys", "list"}, "", &keys)
	if len(keys) != 2*len(added) || keys[len(keys)-1]["retiredAt"] == nil {
		t.Fatalf("keys list --json after a rotation = %v, want the new keys and the retired ones", keys)
	}

	var version map[string]any
	decode([]string{"version"}, "", &version)
	if version["version"] == "" {
		t.Fatalf("version --json = %v", version)
	}
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"status":"ready"}`)) }))
	defer ready.Close()
	var health map[string]any
	decode([]string{"health", "--url", ready.URL}, "", &health)
	if health["status"] != "ready" || health["url"] != ready.URL+"/readyz" {
		t.Fatalf("health --json = %v", health)
	}

	// Deletes and revokes print {}.
	if _, _, _, err := cliRun(t, env, "clients", "create", "--id", "shop", "--redirect-uri", "https://shop.example/cb"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := cliRun(t, env, "apis", "create", "--id", "https://api.example", "--scope", "read"); err != nil {
		t.Fatal(err)
	}
	var tok map[string]string
	decode([]string{"registration-tokens", "create"}, "", &tok)
	var conn map[string]any
	decode([]string{"connectors", "create", "--id", "mb", "--kind", "musicbrainz", "--name", "MusicBrainz", "--client-id", "c", "--client-secret-stdin"}, "connector-secret\n", &conn)
	for _, args := range [][]string{
		{"users", "delete", "alice"},
		{"clients", "delete", "shop"},
		{"apis", "delete", "https://api.example"},
		{"registration-tokens", "revoke", tok["id"]},
		{"connectors", "delete", "mb"},
	} {
		out, stderr, _, err := cliRun(t, env, append(args, "--json")...)
		if err != nil || out != "{}\n" {
			t.Fatalf("%v --json = %q, %v %s; want {}", args, out, err, stderr)
		}
	}
}
