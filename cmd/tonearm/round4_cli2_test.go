package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// Issue 32, item 6: the server's secret comes from TONEARM_SECRET only, so
// --secret on clients update is the client's secret (it used to be taken
// as the master secret, and the client kept its old one).
func TestRound4CLI2UpdateSecretIsTheClients(t *testing.T) {
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
