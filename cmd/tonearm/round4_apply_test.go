package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// applyFile writes content to a file and runs apply on it with args.
func applyFile(t *testing.T, env func(string) string, content string, args ...string) (string, int, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tonearm.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, _, code, err := cliRun(t, env, append([]string{"apply", "-f", path}, args...)...)
	return stdout, code, err
}

// exportOf is the state apply works on, as export prints it.
func exportOf(t *testing.T, env func(string) string) string {
	t.Helper()
	out, _, _, err := cliRun(t, env, "export")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Issue 32, item 6: apply --dry-run validates and plans exactly as the real
// run: it sees the APIs the file creates or changes before its clients,
// refuses what the real run refuses, and changes nothing.
func TestRound4ApplyDryRunPlansTheRealRun(t *testing.T) {
	t.Parallel()
	env := migratedEnv(t)
	start := "apis:\n  - id: https://api.example.org/listens\n    scopes: [{name: listens:read}]\n" +
		"clients:\n  - id: stats\n    grantTypes: [client_credentials]\n    scope: listens:read\n"
	if _, _, err := applyFile(t, env, start); err != nil {
		t.Fatal(err)
	}
	// The API gains a scope that the existing client and a new one take.
	next := "apis:\n  - id: https://api.example.org/listens\n    scopes: [{name: listens:read}, {name: listens:write}]\n" +
		"clients:\n  - id: stats\n    grantTypes: [client_credentials]\n    scope: listens:read listens:write\n" +
		"  - id: writer\n    grantTypes: [client_credentials]\n    scope: listens:write\n"
	before := exportOf(t, env)
	plan, code, err := applyFile(t, env, next, "--dry-run")
	if err != nil || code != 0 {
		t.Fatalf("apply --dry-run of an API update and its clients: %v (exit %d)\n%s", err, code, plan)
	}
	if after := exportOf(t, env); after != before {
		t.Fatalf("--dry-run changed the state:\n%s\nwas\n%s", after, before)
	}
	done, _, err := applyFile(t, env, next)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	var did []string
	for _, l := range strings.Split(strings.TrimSpace(done), "\n") {
		if !strings.HasPrefix(l, "  client_secret of ") { // printed by the real run only
			did = append(did, "would "+l)
		}
	}
	if strings.TrimSpace(plan) != strings.Join(did, "\n") {
		t.Fatalf("the dry run planned\n%s\nthe real run did\n%s", plan, done)
	}
	// What the real run refuses, the dry run refuses, with the same words.
	for _, bad := range []string{
		"clients:\n  - id: x\n    redirectUris: [https://x.example/cb]\n    idTokenAlg: 1e999\n",
		"clients:\n  - id: x\n    grantTypes: [client_credentials]\n    scope: nosuch:scope\n",
		// A scope a client holds cannot leave its API.
		"apis:\n  - id: https://api.example.org/listens\n    scopes: [{name: listens:read}]\n",
	} {
		before := exportOf(t, env)
		_, dryCode, dryErr := applyFile(t, env, bad, "--dry-run")
		_, realCode, realErr := applyFile(t, env, bad)
		if dryErr == nil || realErr == nil || dryCode != 1 || realCode != 1 || dryErr.Error() != realErr.Error() {
			t.Errorf("%q: dry run %v (exit %d), real run %v (exit %d); want the same refusal", bad, dryErr, dryCode, realErr, realCode)
		}
		if after := exportOf(t, env); after != before {
			t.Errorf("%q: a refused file changed the state", bad)
		}
	}
}

// Issue 32, item 6: what the decoder would drop silently (a second
// document, an empty item) is refused, naming the line.
func TestRound4ApplyRefusesWhatItWouldDrop(t *testing.T) {
	t.Parallel()
	env := migratedEnv(t)
	for _, c := range []struct{ file, want string }{
		{"clients:\n  - id: a\n    grantTypes: [client_credentials]\n---\nclients:\n  - id: b\n    grantTypes: [client_credentials]\n", "line 4: a second YAML document"},
		{"clients: [null]\n", "line 1: an empty item in clients"},
		{"clients:\n  - id: a\n    grantTypes: [client_credentials]\n  -\n", "line 4: an empty item in clients"},
		{"apis:\n  - id: https://api.example\n    scopes: [{name: read}, null]\n", "line 3: an empty item in scopes"},
	} {
		for _, dry := range [][]string{{"--dry-run"}, nil} {
			_, code, err := applyFile(t, env, c.file, dry...)
			if err == nil || code != 1 || !strings.Contains(err.Error(), c.want) {
				t.Errorf("apply %v %q: %v (exit %d), want %q", dry, c.file, err, code, c.want)
			}
		}
	}
	if got := exportOf(t, env); strings.Contains(got, "id:") {
		t.Fatalf("refused files changed the state:\n%s", got)
	}
}

// Issue 32, item 6: a wrong value is blamed on its own key, also when a
// line holds several keys.
func TestRound4ApplyErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	env := migratedEnv(t)
	for _, c := range []struct{ file, want string }{
		{"clients: [{id: x, redirectUris: {a: 1}}]\n", "line 1: redirectUris must be a list of strings, not a mapping"},
		{"clients: [{id: x, grantTypes: [[1]]}]\n", "line 1: each item of grantTypes must be a string, not a list"},
		{"clients: [{id: x, scope: [a, b]}]\n", "line 1: scope must be a string, not a list"},
		{"apis: [{id: 'https://api.example', scopes: [{name: [a]}]}]\n", "line 1: name must be a string, not a list"},
		{"apis: [{id: 'https://api.example', scopes: [read]}]\n", `line 1: each item of scopes must be a scope (a mapping with name and description), not the string "read"`},
		{"clients:\n  - id: x\n    redirectUris: {a: 1}\n", "line 3: redirectUris must be a list of strings, not a mapping"},
	} {
		_, code, err := applyFile(t, env, c.file)
		if err == nil || code != 1 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("apply %q: %v (exit %d), want %q", c.file, err, code, c.want)
		}
	}
}

// Issue 32, item 6: users list refuses an unknown role as users update
// does, instead of listing nobody and exiting 0.
func TestRound4UsersListUnknownRole(t *testing.T) {
	t.Parallel()
	env := migratedEnv(t)
	if _, _, code, err := cliRun(t, env, "users", "list", "--role", "superuser"); err == nil || code != 2 || !strings.Contains(err.Error(), "--role must be admin, user or guest") {
		t.Fatalf("users list --role superuser: %v (exit %d), want a usage error", err, code)
	}
	if _, _, code, err := cliRun(t, env, "users", "list", "--role", "guest"); err != nil || code != 0 {
		t.Fatalf("users list --role guest: %v (exit %d)", err, code)
	}
}
