package main

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
)

// What an anonymous client may leave stored is bounded (issue 31, item 3).
const (
	// authorizeBound is web/protocol's maxAuthorizeRequestBytes.
	authorizeBound = 8 << 10
	// storedSignInsPerAddr is web's maxStoredSignInsPerAddr.
	storedSignInsPerAddr = 300
)

// databaseBytes is the size of s's database: SQLite's pages (the
// write-ahead log's included), PostgreSQL's files of the test's database.
func databaseBytes(t *testing.T, s *server) int64 {
	t.Helper()
	db, err := s.app.store.SQLDB()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if s.app.store.Dialect() == sqlstore.SQLite {
		var pages, size int64
		if err := db.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("PRAGMA page_size").Scan(&size); err != nil {
			t.Fatal(err)
		}
		return pages * size
	}
	if err := db.QueryRow("SELECT pg_database_size(current_database())").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func interactionRows(t *testing.T, s *server) int {
	t.Helper()
	db, err := s.app.store.SQLDB()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM interactions").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// incompressible is n bytes of URL-safe random text (nothing compresses
// it on the way into the database).
func incompressible(n int) string {
	b := make([]byte, n*3/4+3)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// forwardedFor sends every request as if from addr, behind a trusted proxy.
type forwardedFor struct {
	addr string
	next http.RoundTripper
}

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	return f.next.RoundTrip(r)
}

// browserFrom is s.browser() seen at addr.
func (s *server) browserFrom(addr string) *http.Client {
	c := s.browser()
	c.Transport = forwardedFor{addr: addr, next: http.DefaultTransport}
	return c
}

func boundedAuthURL(s *server, client, redirect string, extra url.Values) string {
	q := url.Values{"client_id": {client}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		q[k] = v
	}
	return s.issuer + provider.AuthorizePath + "?" + q.Encode()
}

// padTo sets nonce so that q's parameters, form-encoded, take n bytes.
func padTo(q url.Values, n int) url.Values {
	q.Set("nonce", "")
	q.Set("nonce", strings.Repeat("n", n-len(q.Encode())))
	return q
}

// The reported burst: 500 anonymous authorization requests with a 60 KB
// state each (and 100 stand-alone sign-ins with a 60 KB page to continue
// to) grew the database by 30 MB. Now they are refused before anything is
// stored: the client hears invalid_request at its verified redirect URI
// (without the oversized state), and the database grows by under 1 MB. A
// normal request still works; one just over the 8 KB bound is refused with
// its state echoed; a pushed request is held to the same bound.
func TestOversizedSignInsAreNotStored(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("stan")
		s.client(clients.Spec{ID: "web"})
		_, pushSecret := s.client(clients.Spec{ID: "pushy"})

		if back := s.authorize(s.browser(), boundedAuthURL(s, "web", redirectURI, url.Values{"state": {"s-normal"}}), "stan", true); back.Query().Get("code") == "" || back.Query().Get("state") != "s-normal" {
			t.Fatalf("a normal request: %v", back)
		}

		sizeBefore, rowsBefore := databaseBytes(t, s), interactionRows(t, s)
		var wrong atomic.Int32
		var firstWrong atomic.Value
		var wg sync.WaitGroup
		jobs := make(chan func(c *http.Client) string)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := s.browser()
				for job := range jobs {
					if msg := job(c); msg != "" && wrong.Add(1) == 1 {
						firstWrong.Store(msg)
					}
				}
			}()
		}
		bigState := func(c *http.Client) string {
			resp, err := c.Get(boundedAuthURL(s, "web", redirectURI, url.Values{"state": {incompressible(60 << 10)}}))
			if err != nil {
				return err.Error()
			}
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Host != "127.0.0.1:1" || loc.Query().Get("error") != "invalid_request" ||
				loc.Query().Has("state") || !strings.Contains(loc.Query().Get("error_description"), "8 KB") {
				return "60 KB state: " + resp.Status + " " + resp.Header.Get("Location")
			}
			return ""
		}
		for i := 0; i < 500; i++ {
			jobs <- bigState
		}
		close(jobs)
		wg.Wait()
		browser := s.browser()
		login := get(t, browser, s.issuer+"/login")
		f := parseForm(t, login.body, login.url)
		for i := 0; i < 100; i++ {
			resp, err := browser.PostForm(f.action, url.Values{"csrf_token": {f.values.Get("csrf_token")}, "tonearm_action": {"login"},
				"username": {"stan"}, "password": {"wrong-password"}, "continue": {"/account?x=" + incompressible(60<<10)}})
			if err != nil {
				t.Fatal(err)
			}
			if p := read(t, resp); p.status != http.StatusBadRequest && wrong.Add(1) == 1 {
				firstWrong.Store("POST /login with a 60 KB continue: " + resp.Status)
			}
		}
		if n := wrong.Load(); n > 0 {
			t.Errorf("%d answers were wrong; the first: %v", n, firstWrong.Load())
		}
		if grew := databaseBytes(t, s) - sizeBefore; grew >= 1<<20 {
			t.Errorf("the burst grew the database by %d bytes, want under 1 MB", grew)
		}
		if rows := interactionRows(t, s); rows != rowsBefore {
			t.Errorf("interactions: %d after the burst, %d before", rows, rowsBefore)
		}

		// At the bound: the login page. One byte over: invalid_request at
		// the callback, state and iss echoed.
		at := padTo(url.Values{"client_id": {"web"}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"openid"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}, "state": {"s-over"}}, authorizeBound)
		if p := get(t, s.browser(), s.issuer+provider.AuthorizePath+"?"+at.Encode()); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("a request of exactly 8 KB: %d %v", p.status, p.location)
		}
		over := padTo(cloneValues(at), authorizeBound+1)
		p := get(t, s.browser(), s.issuer+provider.AuthorizePath+"?"+over.Encode())
		if p.location == nil || p.location.Host != "127.0.0.1:1" || p.location.Query().Get("error") != "invalid_request" ||
			p.location.Query().Get("state") != "s-over" || p.location.Query().Get("iss") != s.issuer {
			t.Fatalf("a request one byte over 8 KB: %d %v", p.status, p.location)
		}
		// An unregistered redirect URI is never sent to: the page says so.
		over.Set("redirect_uri", "https://attacker.example/cb")
		p = get(t, s.browser(), s.issuer+provider.AuthorizePath+"?"+over.Encode())
		if p.status != http.StatusBadRequest || p.location != nil || !strings.Contains(p.body, "has not registered") {
			t.Fatalf("over the bound, unregistered redirect: %d %v\n%s", p.status, p.location, p.body)
		}

		// A pushed request: the same bound (client authentication aside).
		push := url.Values{"client_id": {"pushy"}, "response_type": {"code"}, "redirect_uri": {redirectURI}, "scope": {"openid"}, "state": {"s-pushed"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
		if status, body := s.push(t, "pushy", pushSecret, padTo(cloneValues(push), authorizeBound)); status != http.StatusCreated {
			t.Fatalf("a push of exactly 8 KB: %d %v", status, body)
		}
		if status, body := s.push(t, "pushy", pushSecret, padTo(cloneValues(push), authorizeBound+1)); status != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Fatalf("a push one byte over 8 KB: %d %v", status, body)
		}
	})
}

// Each stored sign-in is counted per address in the database before it is
// stored: past the budget (300 per 15 minutes) the app hears
// temporarily_unavailable, the stand-alone sign-in answers 429, and no row
// is added; another address is not affected.
func TestStoredSignInsAreCountedPerAddress(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2EConfig(t, dbURL, options{}, behindProxy)
		s.user("stan")
		s.client(clients.Spec{ID: "web"})
		crowd := s.browserFrom("203.0.113.9")
		before := interactionRows(t, s)
		for i := 0; i < storedSignInsPerAddr; i++ {
			if p := get(t, crowd, boundedAuthURL(s, "web", redirectURI, nil)); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
				t.Fatalf("sign-in %d of the budget: %d %v", i+1, p.status, p.location)
			}
		}
		if got := interactionRows(t, s) - before; got != storedSignInsPerAddr {
			t.Fatalf("stored %d sign-ins, want %d", got, storedSignInsPerAddr)
		}
		p := get(t, crowd, boundedAuthURL(s, "web", redirectURI, url.Values{"state": {"s-late"}}))
		if p.location == nil || p.location.Host != "127.0.0.1:1" || p.location.Query().Get("error") != "temporarily_unavailable" ||
			p.location.Query().Get("state") != "s-late" || !strings.Contains(p.location.Query().Get("error_description"), "sign-ins started from this address") {
			t.Fatalf("past the budget: %d %v\n%s", p.status, p.location, p.body)
		}
		login := get(t, crowd, s.issuer+"/login") // the page stores nothing
		resp, err := crowd.PostForm(parseForm(t, login.body, login.url).action, url.Values{
			"csrf_token": {parseForm(t, login.body, login.url).values.Get("csrf_token")}, "tonearm_action": {"login"}, "username": {"stan"}, "password": {e2ePassword}})
		if err != nil {
			t.Fatal(err)
		}
		late := read(t, resp)
		if late.status != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(late.body, "sign-ins started from this address") {
			t.Fatalf("POST /login past the budget: %d Retry-After %q\n%s", late.status, resp.Header.Get("Retry-After"), late.body)
		}
		if got := interactionRows(t, s) - before; got != storedSignInsPerAddr {
			t.Fatalf("past the budget: %d stored, want still %d", got, storedSignInsPerAddr)
		}
		if back := s.authorize(s.browserFrom("198.51.100.4"), boundedAuthURL(s, "web", redirectURI, url.Values{"state": {"s-other"}}), "stan", true); back.Query().Get("code") == "" {
			t.Fatalf("another address: %v", back)
		}
	})
}
