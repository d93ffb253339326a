package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cliRun runs one command line and returns what it printed, its error and
// the exit status main would give it.
func cliRun(t *testing.T, env func(string) string, args ...string) (stdout, stderr string, code int, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, env, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), exitCode(err), err
}

// migratedEnv is a fresh migrated SQLite database.
func migratedEnv(t *testing.T) func(string) string {
	t.Helper()
	env := envFunc(map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "t.db")})
	if _, _, _, err := cliRun(t, env, "migrate"); err != nil {
		t.Fatal(err)
	}
	return env
}

// Issue 32, item 6.1: the ID and the flags come in any order (Go's flag
// package alone stops at the first argument that is not a flag).
func TestRound4CLIFlagsAndIDInAnyOrder(t *testing.T) {
	t.Parallel()
	env := migratedEnv(t)
	if _, _, _, err := cliRun(t, env, "clients", "create", "--id", "shop", "--redirect-uri", "https://shop.example/cb"); err != nil {
		t.Fatal(err)
	}
	redirects := func() []string {
		out, _, _, err := cliRun(t, env, "clients", "list", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var list []clientJSON
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
			t.Fatalf("clients list --json = %q, %v", out, err)
		}
		return list[0].RedirectURIs
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"clients", "update", "--redirect-uri", "https://shop.example/after", "shop"}, "https://shop.example/after"},
		{[]string{"clients", "update", "shop", "--redirect-uri", "https://shop.example/before"}, "https://shop.example/before"},
		{[]string{"clients", "update", "--name", "Shop", "shop", "--redirect-uri", "https://shop.example/between"}, "https://shop.example/between"},
		{[]string{"clients", "update", "--redirect-uri", "https://shop.example/dashdash", "--", "shop"}, "https://shop.example/dashdash"},
	} {
		if _, _, _, err := cliRun(t, env, c.args...); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if got := redirects(); len(got) != 1 || got[0] != c.want {
			t.Fatalf("%v left redirect URIs %v, want %s", c.args, got, c.want)
		}
	}
	if _, _, code, err := cliRun(t, env, "clients", "update", "shop", "other", "--name", "x"); err == nil || code != 2 || !strings.Contains(err.Error(), `unexpected argument "other"`) {
		t.Fatalf("two IDs: %v (exit %d), want a usage error naming the extra one", err, code)
	}
	// users take their USER anywhere too.
	if err := run(context.Background(), []string{"users", "create", "--password-stdin", "--username", "alice"}, env, strings.NewReader("alice-password-1\n"), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if out, _, _, err := cliRun(t, env, "users", "update", "--role", "guest", "alice", "--json"); err != nil || !strings.Contains(out, `"role":"guest"`) {
		t.Fatalf("users update --role guest alice --json: %q, %v", out, err)
	}
}

// Issue 32, items 6.2 and 6.3: help shows the positional and exits 0;
// usage errors exit 2 and are printed once, by main; failures exit 1.
func TestRound4CLIHelpAndExitCodes(t *testing.T) {
	t.Parallel()
	help, _, code, err := cliRun(t, envFunc(nil), "clients", "update", "-h")
	if !errors.Is(err, flag.ErrHelp) || code != 0 || !strings.HasPrefix(help, "usage: tonearm clients update ID [flags]\n") || !strings.Contains(help, "  -redirect-uri") {
		t.Fatalf("clients update -h: %v (exit %d), printed %q", err, code, help)
	}
	for _, args := range [][]string{{"users", "-h"}, {"users", "--help"}, {"clients", "-h"}, {"apis", "help"}} {
		stdout, _, code, err := cliRun(t, envFunc(nil), args...)
		if code != 0 || !errors.Is(err, flag.ErrHelp) || strings.Count(stdout, "\n") < 4 || !strings.Contains(stdout, "\n       tonearm "+args[0]+" ") {
			t.Errorf("%v: %v (exit %d), printed %q; want readable lines and exit 0", args, err, code, stdout)
		}
	}
	if stdout, _, code, err := cliRun(t, envFunc(nil), "--help"); err != nil || code != 0 || !strings.Contains(stdout, "Exit status: 0 success") || !strings.Contains(stdout, "any order") {
		t.Fatalf("tonearm --help: %v (exit %d) %q", err, code, stdout)
	}

	env := migratedEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"clients", "update", "--bogus", "shop"}, "flag provided but not defined: -bogus"},
		{[]string{"clients", "update", "--name", "x"}, "usage: tonearm clients update ID"},
		{[]string{"clients", "frobnicate"}, `unknown subcommand "frobnicate"`},
		{[]string{"users"}, "a subcommand is required"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"version", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"users", "create", "--password-stdin"}, "--username is required"},
	} {
		_, stderr, code, err := cliRun(t, env, c.args...)
		if code != 2 || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v (exit %d), want exit 2 and %q", c.args, err, code, c.want)
			continue
		}
		// run prints nothing itself; main prints the error once.
		var printed bytes.Buffer
		reportError(&printed, err)
		if stderr != "" || strings.Count(printed.String(), c.want) != 1 || strings.Contains(printed.String(), "  -redirect-uri") {
			t.Errorf("%v printed %q then %q; want the message once, without the flag list", c.args, stderr, printed.String())
		}
	}
	// A multi-line usage stays readable lines.
	_, _, _, err = cliRun(t, env, "users")
	var printed bytes.Buffer
	reportError(&printed, err)
	if !strings.Contains(printed.String(), "\n       tonearm users list") {
		t.Errorf("users with no subcommand printed %q, want its usage lines", printed.String())
	}
	// A command line read right that fails exits 1.
	if _, _, code, err := cliRun(t, env, "clients", "update", "nosuch", "--name", "x"); err == nil || code != 1 {
		t.Fatalf("updating a missing client: %v (exit %d), want exit 1", err, code)
	}
}

// Issue 32, items 6.4 and 6.5: errors speak of the file's keys and of the
// flags, never of Go types or of validation the operator did not ask for.
func TestRound4CLIErrorsInTheOperatorsWords(t *testing.T) {
	t.Parallel()
	env := migratedEnv(t)
	_, _, code, err := cliRun(t, env, "clients", "create", "--redirect-uri", "https://shop.example/cb")
	if err == nil || code != 2 || !strings.HasPrefix(err.Error(), "--id is required") {
		t.Fatalf("clients create without --id: %v (exit %d)", err, code)
	}
	if _, _, code, err := cliRun(t, env, "apis", "create", "--scope", "read"); err == nil || code != 2 || !strings.HasPrefix(err.Error(), "--id is required") {
		t.Fatalf("apis create without --id: %v (exit %d)", err, code)
	}
	dir := t.TempDir()
	for _, c := range []struct{ file, want string }{
		{"clients:\n  - id: shop\n    redirectUri: https://shop.example/cb\n", `line 3: unknown key "redirectUri" in a client`},
		{"clients:\n  - id: shop\n    redirectUris: https://shop.example/cb\n", `line 3: redirectUris must be a list of strings, not the string "https:/`},
		{"apis:\n  - id: https://api.example\n    openToApps: maybe\n    scopes:\n      - nme: read\n", `line 3: openToApps must be true or false, not the string "maybe"; line 5: unknown key "nme" in a scope`},
		{"- shop\n", "line 1: the file must be a mapping with clients and apis, not a list"},
	} {
		path := filepath.Join(dir, "f.yaml")
		if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, code, err := cliRun(t, env, "apply", "-f", path)
		if err == nil || code != 1 || strings.Contains(err.Error(), "main.") || strings.Contains(err.Error(), "[]") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("apply %q: %v (exit %d), want %q", c.file, err, code, c.want)
		}
	}
}

// Issue 32, item 6.6: registration-tokens create --json gives the id that
// revoke takes.
func TestRound4CLIRegistrationTokenJSONHasID(t *testing.T) {
	t.Parallel()
	env := migratedEnv(t)
	out, _, _, err := cliRun(t, env, "registration-tokens", "create", "--json")
	var got struct{ ID, Token string }
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.ID == "" || got.Token == "" {
		t.Fatalf("registration-tokens create --json = %q, %v; want id and token", out, err)
	}
	if _, _, _, err := cliRun(t, env, "registration-tokens", "revoke", got.ID); err != nil {
		t.Fatalf("revoking the id printed: %v", err)
	}
}

// Issue 32, item 6.7: run outside the data folder, a command other than
// serve and migrate names the database it looked for and creates nothing
// (no empty tonearm.db, no new secret), --dry-run too.
func TestRound4CLIRefusesToCreateTheDefaultDatabase(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	plan := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(plan, []byte("clients: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"clients", "list"}, {"users", "list"}, {"apply", "-f", plan, "--dry-run"}, {"keys", "list"}, {"reseal"}, {"export"}} {
		_, _, code, err := cliRun(t, envFunc(nil), args...)
		if err == nil || code != 1 || !strings.Contains(err.Error(), filepath.Join(dir, "tonearm.db")) || !strings.Contains(err.Error(), "tonearm migrate") {
			t.Errorf("%v without tonearm.db: %v (exit %d), want exit 1 naming the file and how to create it", args, err, code)
		}
		for _, name := range []string{"tonearm.db", "tonearm.db.secret"} {
			if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%v created %s", args, name)
			}
		}
	}
	// migrate creates it; then the commands run.
	if _, _, _, err := cliRun(t, envFunc(nil), "migrate"); err != nil {
		t.Fatal(err)
	}
	if out, _, _, err := cliRun(t, envFunc(nil), "clients", "list"); err != nil || !strings.HasPrefix(out, "ID") {
		t.Fatalf("clients list after migrate: %q, %v", out, err)
	}
}
