package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// The user-facing targets against a real tonearm (built from this module):
// each worker signs in, runs the code flow with PKCE and verifies the ID
// token (RS256 and ES256 clients), walks its refresh chain, calls userinfo;
// nothing is counted that did not succeed.
func TestFlowsAgainstTonearm(t *testing.T) {
	srv := newTestServer(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"))
	tonearm := func(stdin string, args ...string) string { t.Helper(); return srv.cli(t, stdin, args...) }
	issuer := srv.issuer
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
	srv.start(t)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for _, alg := range []string{"RS256", "ES256"} {
		c, err := newFlowConfig(hc, flowConfig{issuer: issuer, client: "web-" + alg, secret: secrets[alg], username: "loader", password: "a-long-load-password", redirectURI: "http://127.0.0.1:9/cb"})
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{"code", "refresh", "userinfo"} {
			r, err := loadFlows(context.Background(), c, kind, 2, 300*time.Millisecond, nil)
			if err != nil || r.ok == 0 || r.failed != 0 || r.firstErr != "" {
				t.Fatalf("%s %s: %+v %v", alg, kind, r, err)
			}
		}
	}
	// A wrong password, or an ID token that does not verify, is no success.
	c, _ := newFlowConfig(hc, flowConfig{issuer: issuer, client: "web-RS256", secret: secrets["RS256"], username: "loader", password: "not-the-password", redirectURI: "http://127.0.0.1:9/cb"})
	if _, err := loadFlows(context.Background(), c, "code", 1, 100*time.Millisecond, nil); err == nil {
		t.Fatal("a wrong password signed the workers in")
	}
	c, _ = newFlowConfig(hc, flowConfig{issuer: issuer, client: "web-RS256", secret: secrets["RS256"], username: "loader", password: "a-long-load-password", redirectURI: "http://127.0.0.1:9/cb"})
	c.jwks.Keys = nil // no published key: no ID token verifies
	if r, err := loadFlows(context.Background(), c, "code", 1, 200*time.Millisecond, nil); err != nil || r.ok != 0 || r.failed == 0 {
		t.Fatalf("unverifiable ID tokens counted: %+v %v", r, err)
	}
}
