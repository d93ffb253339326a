package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/provider"
)

// Issue 31, round three: what a newcomer following the README runs into.

// discoveryIssuer reads the issuer and authorization endpoint a running
// server announces.
func discoveryIssuer(t *testing.T, base string) (issuer, authorize string) {
	t.Helper()
	resp, err := http.Get(base + provider.DiscoveryPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer    string `json:"issuer"`
		Authorize string `json:"authorization_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc.Issuer, doc.Authorize
}

// Item 13: TONEARM_LISTEN alone moves the issuer with it (SPEC.md), so
// discovery does not send browsers to :8080; a kernel-chosen port (:0) is
// followed too.
func TestIssuerFollowsTheListenAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // serve binds it again at once
	env := map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "t.db"), "TONEARM_LISTEN": addr}
	base, _, stop := startServer(t, env)
	if base != "http://"+addr {
		t.Fatalf("serving on %s, asked for %s", base, addr)
	}
	if iss, auth := discoveryIssuer(t, base); iss != base || auth != base+provider.AuthorizePath {
		t.Fatalf("TONEARM_LISTEN=%s: discovery names issuer %q and %q, want %s", addr, iss, auth, base)
	}
	_ = stop()

	env = map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "t.db")}
	base, _, stop = startServer(t, env) // 127.0.0.1:0
	if iss, _ := discoveryIssuer(t, base); iss != base {
		t.Fatalf("TONEARM_LISTEN=127.0.0.1:0: discovery names issuer %q, want the bound %s", iss, base)
	}
	_ = stop()

	// A set TONEARM_ISSUER is kept (behind a proxy it differs from the
	// listener).
	env = map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "t.db"), "TONEARM_ISSUER": "https://id.example"}
	base, _, stop = startServer(t, env)
	if iss, _ := discoveryIssuer(t, base); iss != "https://id.example" {
		t.Fatalf("TONEARM_ISSUER set: discovery names %q", iss)
	}
	_ = stop()
}

// Item 17: serve on a port already taken fails naming TONEARM_LISTEN and
// logs no one-time security code (it would be a code for a server that
// never served, misleading whoever reads the log).
func TestServeThatCannotBindLogsNoSecurityCode(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	logs := &lockedBuffer{}
	env := map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "t.db"), "TONEARM_LISTEN": taken.Addr().String()}
	err = run(context.Background(), []string{"serve"}, envFunc(env), strings.NewReader(""), io.Discard, logs)
	if err == nil || !strings.Contains(err.Error(), "TONEARM_LISTEN") {
		t.Fatalf("serve on a taken port: %v, want an error naming TONEARM_LISTEN", err)
	}
	if strings.Contains(logs.String(), "security_code") {
		t.Fatalf("a server that never served logged a security code:\n%s", logs.String())
	}
}
