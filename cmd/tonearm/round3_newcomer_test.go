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
	"os"
	"path/filepath"
	"regexp"
	"sort"
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

// Item 13: TONEARM_LISTEN alone moves the issuer with it (docs/configuration.md), so
// discovery does not send browsers to :8080; a kernel-chosen port (:0) is
// followed too.
func TestIssuerFollowsTheListenAddress(t *testing.T) {
	t.Parallel()
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

// Item 17: tonearm health --url takes the server's base URL (then asks
// /readyz), and a URL that answers 404 gets an answer naming the path it
// wants instead of a bare "not ready: 404".
func TestHealthNamesThePathItWants(t *testing.T) {
	t.Parallel()
	base, _, stop := startServer(t, map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "t.db")})
	defer stop()
	health := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"health"}, args...), envFunc(nil), nil, &out, io.Discard)
		return out.String(), err
	}
	for _, u := range []string{base, base + "/", base + "/readyz"} {
		if out, err := health("--url", u); err != nil || strings.TrimSpace(out) != "ready" {
			t.Errorf("health --url %s: %q %v, want ready", u, out, err)
		}
	}
	_, err := health("--url", base+"/health")
	if err == nil || !strings.Contains(err.Error(), "/readyz") || !strings.Contains(err.Error(), "404") {
		t.Errorf("health --url %s/health: %v, want an error naming /readyz", base, err)
	}
	u, _ := url.Parse(base)
	if out, err := run2(func(o, e io.Writer) error {
		return run(context.Background(), []string{"health"}, envFunc(map[string]string{"TONEARM_LISTEN": "0.0.0.0:" + u.Port()}), nil, o, e)
	}); err != nil || strings.TrimSpace(out) != "ready" {
		t.Errorf("health with TONEARM_LISTEN=0.0.0.0:%s: %q %v", u.Port(), out, err)
	}
}

func run2(f func(stdout, stderr io.Writer) error) (string, error) {
	var out bytes.Buffer
	err := f(&out, io.Discard)
	return out.String(), err
}

// Item 17: registration-tokens create prints the real registration URL,
// not a literal {issuer}.
func TestRegistrationTokensCreatePrintsTheEndpoint(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	for env, want := range map[string]string{
		"https://id.example":  "https://id.example/oauth2/register",
		"":                    "http://127.0.0.1:8080/oauth2/register",
		"listen:0.0.0.0:9099": "http://127.0.0.1:9099/oauth2/register",
	} {
		vars := map[string]string{"TONEARM_DATABASE_URL": s.cfg.DatabaseURL, "TONEARM_SECRET": string(s.cfg.Secret)}
		if l, ok := strings.CutPrefix(env, "listen:"); ok {
			vars["TONEARM_LISTEN"] = l
		} else if env != "" {
			vars["TONEARM_ISSUER"] = env
		}
		out, err := run2(func(o, e io.Writer) error {
			return run(context.Background(), []string{"registration-tokens", "create"}, envFunc(vars), nil, o, e)
		})
		if err != nil || !strings.Contains(out, "Bearer to "+want+")") || strings.Contains(out, "{") {
			t.Errorf("registration-tokens create with %q: %v\n%s\nwant %s", env, err, out, want)
		}
	}
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
	t.Parallel()
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

// Item 17: the console's new-client form states the default scope the
// registry applies, which is also what the CLI reference says.
func TestConsoleStatesTheDefaultScope(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	s.admin("boss")
	c := s.browser()
	s.signInPage(t, c, "boss")
	p := get(t, c, s.issuer+"/admin/clients")
	m := regexp.MustCompile(`empty: ([a-z_ ]+)\)`).FindStringSubmatch(p.body)
	want := strings.Join(clients.DefaultScopes, " ")
	if p.status != http.StatusOK || m == nil || m[1] != want {
		t.Fatalf("the console states the default scope as %v, want %q", m, want)
	}
	ref := mustRead(t, filepath.Join("..", "..", "docs", "configuration.md"))
	if !strings.Contains(ref, "(default `"+want+"`)") {
		t.Fatalf("docs/configuration.md does not state the default scope %q", want)
	}
}

// Item 17: every protocol path README.md and docs/ name is served (a stale
// /oauth2/auth answered 404). Placeholders ({id}, ID) stand for any value.
func TestDocsNameServedEndpoints(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	root := filepath.Join("..", "..")
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"))
	pathRe := regexp.MustCompile(`(/oauth2/[A-Za-z0-9_./{}-]*|/\.well-known/[A-Za-z0-9_.-]+)`)
	seen := map[string][]string{}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range pathRe.FindAllString(string(body), -1) {
			p := strings.TrimRight(m, ".")
			if p == "/oauth2/" || strings.HasPrefix(p, "/.well-known/oauth-protected-resource") {
				continue // the prefix itself, in prose; a resource server's metadata (RFC 9728), not tonearm's
			}
			seen[p] = append(seen[p], filepath.Base(file))
		}
	}
	var paths []string
	for p := range seen {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	if len(paths) < 8 {
		t.Fatalf("found only %v", paths)
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	placeholder := regexp.MustCompile(`\{[^}]*\}`)
	for _, p := range paths {
		u := placeholder.ReplaceAllString(p, "x")
		if strings.HasSuffix(u, "/") {
			u += "x" // a path with an ID after it
		}
		resp, err := client.Get(s.srv.URL + u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		post, err := client.Post(s.srv.URL+u, "application/x-www-form-urlencoded", strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		post.Body.Close()
		if resp.StatusCode == http.StatusNotFound && post.StatusCode == http.StatusNotFound {
			t.Errorf("%s (named in %s) is not served: 404", p, strings.Join(seen[p], ", "))
		}
	}
}
