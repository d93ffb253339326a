package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
)

// -dpop against a real tonearm: client credentials, refresh (a public
// client, whose refresh token is bound to the worker's key) and userinfo
// (the bound token presented with a proof) succeed with a fresh proof per
// request, and only answers with token_type DPoP are counted.
func TestRunDPoP(t *testing.T) {
	srv := newTestServer(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"))
	srv.cli(t, "a-long-load-password\n", "users", "create", "--username", "loader", "--password-stdin")
	srv.cli(t, "", "clients", "create", "--id", "spa", "--public", "--first-party", "--redirect-uri", "http://127.0.0.1:9/cb",
		"--scope", "openid offline_access", "--id-token-alg", "ES256")
	var svc struct {
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(srv.cli(t, "", "clients", "create", "--id", "svc", "--grant-type", "client_credentials", "--scope", "admin", "--json")), &svc); err != nil {
		t.Fatal(err)
	}
	srv.start(t)
	common := []string{"-issuer", srv.issuer, "-c", "3", "-d", "1s", "-json", "-server-pid", "-1", "-db-pid", "-1", "-dpop"}
	for _, args := range [][]string{
		{"-target", "cc", "-client", "svc", "-secret", svc.Secret, "-scope", "admin"},
		{"-target", "refresh", "-client", "spa", "-username", "loader", "-password", "a-long-load-password", "-redirect-uri", "http://127.0.0.1:9/cb"},
		{"-target", "userinfo", "-client", "spa", "-username", "loader", "-password", "a-long-load-password", "-redirect-uri", "http://127.0.0.1:9/cb"},
	} {
		var out bytes.Buffer
		if err := run(append(args, common...), &out); err != nil {
			t.Fatalf("%s: %v", args[1], err)
		}
		var r struct {
			OK, Failed int64
			FirstError string `json:"first_error"`
		}
		if err := json.Unmarshal(out.Bytes(), &r); err != nil || r.OK == 0 || r.Failed != 0 {
			t.Fatalf("%s: %s %v", args[1], out.Bytes(), err)
		}
		t.Logf("%s -dpop: %s", args[1], bytes.TrimSpace(out.Bytes()))
	}
	// The check is real: the server's bearer answers are not counted as DPoP.
	if isDPoP("Bearer") || !isDPoP("dpop") {
		t.Fatal("isDPoP")
	}
	// -dpop on a target that sends no token request is refused.
	if err := run([]string{"-target", "jwks", "-issuer", srv.issuer, "-dpop", "-d", "10ms", "-server-pid", "-1", "-db-pid", "-1"}, &bytes.Buffer{}); err == nil {
		t.Fatal("-dpop accepted for jwks")
	}
}
