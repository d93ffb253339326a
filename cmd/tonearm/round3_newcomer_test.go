package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/examples/web-app/webapp"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
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

func run2(f func(stdout, stderr io.Writer) error) (string, error) {
	var out bytes.Buffer
	err := f(&out, io.Discard)
	return out.String(), err
}

// Item 14: tonearm clients rotate-secret without --keep-old, against a
// server whose client cache holds the client: the new secret works at once
// (a refused secret re-reads the client), and once it has been used the old
// one is refused on that server. A server that has not seen the new secret
// yet may take the old one for at most the cache window the command names.
func TestRotateSecretTheNewSecretWorksAtOnce(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		var offset atomic.Int64
		now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		s := startE2E(t, dbURL, options{now: now})
		_, first := s.client(clients.Spec{ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"profile"}})
		cc := url.Values{"grant_type": {"client_credentials"}}
		token := func(secret string) int { return s.post(provider.TokenPath, "svc", secret, cc).status }
		if got := token(first); got != http.StatusOK { // the cache is warm now
			t.Fatalf("before the rotation: %d", got)
		}
		env := envFunc(map[string]string{"TONEARM_DATABASE_URL": dbURL, "TONEARM_SECRET": string(s.cfg.Secret)})
		rotate := func() string {
			t.Helper()
			out, err := run2(func(o, e io.Writer) error {
				return run(context.Background(), []string{"clients", "rotate-secret", "svc"}, env, nil, o, e)
			})
			m := regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)
			if err != nil || m == nil {
				t.Fatalf("rotate-secret: %v\n%s", err, out)
			}
			if !strings.Contains(out, "within "+fositestore.ClientCacheTTL.String()) {
				t.Errorf("rotate-secret does not state the cache window:\n%s", out)
			}
			return m[1]
		}
		second := rotate()
		if got := token(second); got != http.StatusOK {
			t.Fatalf("the new secret right after the rotation: %d, want 200", got)
		}
		if got := token(first); got != http.StatusUnauthorized {
			t.Fatalf("the old secret after the new one was used: %d, want 401", got)
		}
		// Through introspection too (another endpoint authenticating
		// clients): the third secret works at once.
		third := rotate()
		req, _ := http.NewRequest(http.MethodPost, s.srv.URL+provider.IntrospectPath, strings.NewReader("token=nothing"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("svc", third)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("introspection with the new secret: %d, want 200", resp.StatusCode)
		}
		// The old secret, presented first, is refused once the cache
		// window has passed.
		fourth := rotate()
		offset.Store(int64(fositestore.ClientCacheTTL + time.Second))
		if got := token(third); got != http.StatusUnauthorized {
			t.Fatalf("the old secret after the cache window: %d, want 401", got)
		}
		if got := token(fourth); got != http.StatusOK {
			t.Fatalf("the newest secret: %d", got)
		}
	})
}

// Item 15: the apply example names its own clients: applying it must not
// replace the secret of a client the README's quick start registered.
func TestApplyExampleHasItsOwnClients(t *testing.T) {
	readme := mustRead(t, filepath.Join("..", "..", "README.md"))
	quick := map[string]bool{}
	for _, m := range regexp.MustCompile(`tonearm clients create --id (\S+)`).FindAllStringSubmatch(readme, -1) {
		quick[m[1]] = true
	}
	if !quick["web-app"] {
		t.Fatalf("the README's quick start registers no web-app: %v", quick)
	}
	example := mustRead(t, filepath.Join("..", "..", "examples", "apply", "tonearm.yaml"))
	for _, m := range regexp.MustCompile(`(?m)^  - id: (\S+)`).FindAllStringSubmatch(example, -1) {
		if quick[m[1]] {
			t.Errorf("examples/apply/tonearm.yaml redefines the quick start's client %s (and would reset its secret)", m[1])
		}
	}
}

// Item 15: the example web app with a wrong client secret names the real
// cause (invalid_client) instead of blaming the code.
func TestExampleWebAppNamesARefusedSecret(t *testing.T) {
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	s.user("listener")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	s.client(clients.Spec{ID: "web-app", FirstParty: true, RedirectURIs: []string{base + "/callback"}, Scopes: []string{"openid", "profile", "listenbrainz", "offline_access"}})
	app, err := webapp.New(context.Background(), webapp.Config{Issuer: s.issuer, ClientID: "web-app", ClientSecret: "not-the-secret",
		BaseURL: base, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: app.Handler()}}
	srv.Start()
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 15 * time.Second}
	login := get(t, browser, base+"/login")
	if login.status != http.StatusOK || !strings.Contains(login.body, `name="password"`) {
		t.Fatalf("expected tonearm's login page, got %d at %v", login.status, login.url)
	}
	p := submit(t, browser, parseForm(t, login.body, login.url), map[string]string{"username": "listener", "password": e2ePassword})
	if !strings.HasPrefix(p.url.String(), base+"/callback") || !strings.Contains(p.body, "client secret was refused (invalid_client)") {
		t.Fatalf("the app after a refused secret: %d at %v\n%s", p.status, p.url, p.body)
	}
	if strings.Contains(p.body, "refused the code") {
		t.Fatalf("the app blames the code:\n%s", p.body)
	}
}
