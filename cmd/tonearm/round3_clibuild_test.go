package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/storage/sqlstore"
)

// Issue 32, item 6: an administration command opens the store and the
// services it acts through, not the server. Built whole, every command
// generated signing keys (the provider's) and set up passkeys (the pages'),
// which say so in the log.
func TestRound3CLIBuildOnlyWhatTheCommandUses(t *testing.T) {
	env := migratedEnv(t)
	for _, args := range [][]string{
		{"users", "create", "--username", "alice", "--password-stdin", "-v"},
		{"users", "list", "-v"},
		{"clients", "create", "--id", "shop", "--redirect-uri", "https://shop.example/cb", "-v"},
		{"apis", "list", "-v"},
		{"connectors", "list", "-v"},
		{"registration-tokens", "list", "-v"},
		{"export", "-v"},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, env, strings.NewReader("alice-password-1\n"), &out, &errOut); err != nil {
			t.Fatalf("%v: %v %s", args, err, errOut.String())
		}
		stderr := errOut.String()
		// The default issuer is on 127.0.0.1: the pages' passkeys would
		// log that they are off.
		if strings.Contains(stderr, "passkeys") {
			t.Errorf("%v built the passkeys of the pages: %s", args, stderr)
		}
		if !strings.Contains(stderr, "database open") {
			t.Errorf("%v -v logged %q, want what it opened", args, stderr)
		}
	}
	store, err := sqlstore.Open(context.Background(), env("TONEARM_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if keys, err := store.ListSigningKeys(context.Background()); err != nil || len(keys) != 0 {
		t.Fatalf("signing keys after commands that do not sign: %d (%v), want none", len(keys), err)
	}
	// The command that uses the keys makes them, as the server does.
	if out, stderr, _, err := cliRun(t, env, "keys", "list"); err != nil || !strings.Contains(out, "RS256") {
		t.Fatalf("keys list: %v %q %s", err, out, stderr)
	}
}

// The server's own settings do not stop a command that does not use them:
// a mail URL whose tls= mail cannot use fails serve (it could not send)
// but not the clients commands, which send no mail.
func TestRound3CLIServerSettingsDoNotStopClients(t *testing.T) {
	base := migratedEnv(t)
	env := func(k string) string {
		if k == "TONEARM_SMTP_URL" {
			return "smtp://mail.example:587?from=tonearm@example.org&tls=bogus"
		}
		return base(k)
	}
	if _, stderr, code, err := cliRun(t, env, "clients", "create", "--id", "shop", "--redirect-uri", "https://shop.example/cb"); err != nil {
		t.Fatalf("clients create with a mail URL only serve reads: %v (exit %d) %s", err, code, stderr)
	}
	if out, stderr, _, err := cliRun(t, env, "clients", "list"); err != nil || !strings.Contains(out, "shop") {
		t.Fatalf("clients list: %v %q %s", err, out, stderr)
	}
}

// Every row of the command table is in the usage that lists its group, and
// every group and command of its own in tonearm's usage.
func TestRound3CLITableRowsAreInTheUsage(t *testing.T) {
	for name := range commands {
		group, sub, inGroup := strings.Cut(name, " ")
		if !strings.Contains(usage, "tonearm "+group) {
			t.Errorf("tonearm's usage does not list %q", group)
		}
		if !inGroup {
			continue
		}
		if u, ok := groupUsages[group]; !ok || !strings.Contains(u, sub) {
			t.Errorf("the usage of %s does not list %s", group, sub)
		}
	}
}
