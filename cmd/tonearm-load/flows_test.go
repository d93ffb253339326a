package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The user-facing targets against a real tonearm (built from this module):
// each worker signs in, runs the code flow with PKCE and verifies the ID
// token (RS256 and ES256 clients), walks its refresh chain, calls userinfo;
// nothing is counted that did not succeed.
func TestFlowsAgainstTonearm(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tonearm")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tonearm")
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building tonearm: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	issuer := "http://" + addr
	env := append(os.Environ(), "TONEARM_DATABASE_URL=sqlite://"+filepath.Join(dir, "t.db"), "TONEARM_ISSUER="+issuer, "TONEARM_LISTEN="+addr)
	tonearm := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Stdin = env, strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tonearm %v: %v", args, err)
		}
		return string(out)
	}
	tonearm("a-long-load-password\n", "users", "create", "--username", "loader", "--password-stdin")
	secrets := map[string]string{}
	for _, alg := range []string{"RS256", "ES256"} {
		var c struct {
			Secret string `json:"client_secret"`
		}
		out := tonearm("", "clients", "create", "--id", "web-"+alg, "--first-party", "--redirect-uri", "http://127.0.0.1:9/cb",
			"--scope", "openid offline_access", "--id-token-alg", alg, "--json")
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatal(err)
		}
		secrets[alg] = c.Secret
	}
	ctx, cancel := context.WithCancel(context.Background())
	serve := exec.CommandContext(ctx, bin, "serve")
	serve.Env = env
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = serve.Wait() })
	for i := 0; ; i++ {
		if resp, err := http.Get(issuer + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i > 300 {
			t.Fatal("tonearm did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for _, alg := range []string{"RS256", "ES256"} {
		c, err := newFlowConfig(hc, issuer, "web-"+alg, secrets[alg], "loader", "a-long-load-password", "http://127.0.0.1:9/cb")
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{"code", "refresh", "userinfo"} {
			r, err := loadFlows(context.Background(), c, kind, 2, 300*time.Millisecond)
			if err != nil || r.ok == 0 || r.failed != 0 || r.firstErr != "" {
				t.Fatalf("%s %s: %+v %v", alg, kind, r, err)
			}
		}
	}
	// A wrong password, or an ID token that does not verify, is no success.
	c, _ := newFlowConfig(hc, issuer, "web-RS256", secrets["RS256"], "loader", "not-the-password", "http://127.0.0.1:9/cb")
	if _, err := loadFlows(context.Background(), c, "code", 1, 100*time.Millisecond); err == nil {
		t.Fatal("a wrong password signed the workers in")
	}
	c, _ = newFlowConfig(hc, issuer, "web-RS256", secrets["RS256"], "loader", "a-long-load-password", "http://127.0.0.1:9/cb")
	c.jwks.Keys = nil // no published key: no ID token verifies
	if r, err := loadFlows(context.Background(), c, "code", 1, 200*time.Millisecond); err != nil || r.ok != 0 || r.failed == 0 {
		t.Fatalf("unverifiable ID tokens counted: %+v %v", r, err)
	}
}
