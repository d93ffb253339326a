package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/sqlitetest"
)

const (
	e2ePassword = "correct-horse-42"
	lbToken     = "5a1b3c7e-0c44-4f0e-9a7d-1b2c3d4e5f60"
	redirectURI = "http://127.0.0.1:1/callback"
)

// bothDatabases runs fn on SQLite and on PostgreSQL.
func bothDatabases(t *testing.T, fn func(t *testing.T, dbURL string)) {
	// Each run has its own database and server: the test runs beside
	// others, not only its two halves beside each other.
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, "sqlite://"+filepath.Join(t.TempDir(), "tonearm.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, pgtest.Migrated(t, migrateDatabase))
	})
}

// migrateDatabase brings the database at dbURL up to date and closes it:
// the template the end-to-end tests' PostgreSQL databases are copied from.
func migrateDatabase(ctx context.Context, dbURL string) error {
	store, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	_, err = store.Migrate(ctx)
	return errors.Join(err, store.Close())
}

// fakeListenBrainz is the HTTP stand-in for ListenBrainz.
func fakeListenBrainz(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Token "+lbToken {
			io.WriteString(w, `{"code":200,"valid":true,"user_name":"rob_listens"}`)
			return
		}
		io.WriteString(w, `{"code":200,"valid":false}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// server is a running tonearm built by the real wiring.
type server struct {
	t      testing.TB
	app    *app
	srv    *httptest.Server
	issuer string
	cfg    config.Config
}

var e2eSecret = strings.Repeat("e2e-secret-", 4)

func startE2E(t testing.TB, dbURL string, opt options) *server {
	t.Helper()
	return startE2EConfig(t, dbURL, opt, nil)
}

// startE2EConfig is startE2E with a change to the configuration.
func startE2EConfig(t testing.TB, dbURL string, opt options, configure func(*config.Config)) *server {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	seedSQLite(t, dbURL)
	db, err := configParsers.Database(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{
		Issuer: issuer, DatabaseURL: dbURL, Database: db, Secret: []byte(e2eSecret),
		ListenBrainzURL: fakeListenBrainz(t).URL, Registration: config.DefaultRegistration,
		ClientRegistration: config.DefaultClientRegistration, AdminMFA: config.DefaultAdminMFA,
	}
	if configure != nil {
		configure(&cfg)
	}
	if opt.hashParams == nil {
		opt.hashParams = &accounts.HashParams{Memory: 64, Time: 1, Threads: 1}
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	a, err := buildWith(context.Background(), cfg, log, opt)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Cleanup(func() { a.store.Close() })
	srv.Config.Handler = a.handler
	srv.Start()
	t.Cleanup(srv.Close)
	if !opt.noBackchannel {
		runBackchannel(t, a)
	}
	return &server{t: t, app: a, srv: srv, issuer: cfg.Issuer, cfg: cfg}
}

// seedSQLite starts a new SQLite database of a test server as a copy of
// one migrated once (migrating every server's database was a fifth of the
// suite's time); the server's own migration then finds nothing to do.
// The migrations themselves are tested in storage/sqlstore and by the
// serve and migrate tests, which start on no file.
func seedSQLite(t testing.TB, dbURL string) {
	if path, ok := strings.CutPrefix(dbURL, "sqlite://"); ok {
		path, _, _ = strings.Cut(path, "?")
		sqlitetest.Seed(t, path)
	}
}

// second starts another replica on the same database and secret.
func (s *server) second() *server {
	s.t.Helper()
	return s.secondWith(options{})
}

// secondWith is second with options (a clock).
func (s *server) secondWith(opt options) *server {
	s.t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	cfg := s.cfg
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	opt.hashParams = &accounts.HashParams{Memory: 64, Time: 1, Threads: 1}
	a, err := buildWith(context.Background(), cfg, log, opt)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { a.store.Close() })
	srv.Config.Handler = a.handler
	srv.Start()
	s.t.Cleanup(srv.Close)
	if !opt.noBackchannel {
		runBackchannel(s.t, a)
	}
	return &server{t: s.t, app: a, srv: srv, issuer: s.issuer, cfg: cfg}
}

func (s *server) user(name string) storage.User {
	s.t.Helper()
	u, err := s.app.accounts.CreateUser(context.Background(), name, e2ePassword, storage.RoleUser)
	if err != nil {
		s.t.Fatal(err)
	}
	return u
}

func (s *server) client(spec clients.Spec) (storage.Client, string) {
	s.t.Helper()
	if spec.RedirectURIs == nil && !(len(spec.GrantTypes) == 1 && spec.GrantTypes[0] == "client_credentials") {
		spec.RedirectURIs = []string{redirectURI}
	}
	c, secret, err := s.app.clients.Create(context.Background(), spec)
	if err != nil {
		s.t.Fatal(err)
	}
	return c, secret
}

// browser is a cookie-keeping client that stops at redirects leaving the
// provider (to the relying party's redirect URI).
func (s *server) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	iss, _ := url.Parse(s.issuer)
	host := iss.Host
	return &http.Client{Jar: jar, Timeout: 15 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// rp is a relying party built from go-oidc and x/oauth2, unmodified.
type rp struct {
	provider *oidc.Provider
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
	ctx      context.Context
}

func (s *server) rp(clientID, secret string, scopes ...string) *rp {
	s.t.Helper()
	ctx := oidc.ClientContext(context.Background(), &http.Client{Timeout: 15 * time.Second})
	p, err := oidc.NewProvider(ctx, s.issuer)
	if err != nil {
		s.t.Fatalf("go-oidc discovery: %v", err)
	}
	return &rp{
		provider: p, ctx: ctx, verifier: p.Verifier(&oidc.Config{ClientID: clientID}),
		conf: oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: redirectURI,
			Scopes: append([]string{oidc.ScopeOpenID}, scopes...)},
	}
}

func random(t testing.TB) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type form struct {
	action string
	method string
	values url.Values
}

// parseForm finds the first form of an HTML page, as a browser would
// (past the language picker).
func parseForm(t testing.TB, page string, base *url.URL) *form {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var f *form
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attr := func(k string) string {
				for _, a := range n.Attr {
					if a.Key == k {
						return a.Val
					}
				}
				return ""
			}
			switch n.Data {
			case "form":
				// The header's language picker is on every page, before
				// the page's own form.
				if attr("class") == "languages" {
					return
				}
				if f == nil {
					action, _ := base.Parse(attr("action"))
					f = &form{action: action.String(), method: strings.ToUpper(attr("method")), values: url.Values{}}
				}
			case "input":
				checkable := attr("type") == "checkbox" || attr("type") == "radio"
				_, checked := attrOf(n, "checked")
				if f != nil && attr("name") != "" && (!checkable || checked) {
					f.values.Add(attr("name"), attr("value"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if f == nil {
		t.Fatalf("no form on the page:\n%s", page)
	}
	return f
}

func attrOf(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

type page struct {
	status   int
	body     string
	location *url.URL
	url      *url.URL
}

func get(t testing.TB, c *http.Client, u string) page {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func read(t testing.TB, resp *http.Response) page {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, body: string(b), url: resp.Request.URL}
	if loc := resp.Header.Get("Location"); loc != "" {
		p.location, _ = resp.Request.URL.Parse(loc)
	}
	return p
}

func submit(t testing.TB, c *http.Client, f *form, set map[string]string) page {
	t.Helper()
	p, _ := submitWithHeader(t, c, f, set)
	return p
}

// authorize runs the browser part of the code flow and returns the
// redirect back to the relying party. A non-empty username means the login
// page must appear and is filled in; consent means a consent page must
// appear and is accepted.
func (s *server) authorize(browser *http.Client, authURL string, username string, consent bool) *url.URL {
	s.t.Helper()
	p := get(s.t, browser, authURL)
	if username != "" {
		if p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
			s.t.Fatalf("expected the login page, got %d %v:\n%s", p.status, p.location, p.body)
		}
		f := parseForm(s.t, p.body, p.url)
		if f.method != http.MethodPost || f.values.Get("csrf_token") == "" {
			s.t.Fatalf("login form: method %q, csrf_token %q", f.method, f.values.Get("csrf_token"))
		}
		p = submit(s.t, browser, f, map[string]string{"username": username, "password": e2ePassword})
	}
	if consent {
		if p.status != http.StatusOK || !strings.Contains(p.body, `value="consent"`) {
			s.t.Fatalf("expected the consent page, got %d %v:\n%s", p.status, p.location, p.body)
		}
		p = submit(s.t, browser, parseForm(s.t, p.body, p.url), map[string]string{"decision": "allow"})
	}
	if p.location == nil || p.location.Host != "127.0.0.1:1" {
		s.t.Fatalf("expected a redirect to the client, got %d %v:\n%s", p.status, p.location, p.body)
	}
	return p.location
}

func discardLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// runBackchannel delivers back-channel logouts as serve does, until the
// test ends.
func runBackchannel(t testing.TB, a *app) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.backchannel.Run(ctx, 50*time.Millisecond); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}
