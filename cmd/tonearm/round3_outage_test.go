package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
)

// outageAnswer is one answer seen while the database was gone.
type outageAnswer struct {
	kind, user   string
	status       int
	retryAfter   string
	contentType  string
	body         string
	errorField   string
	requestURI   string // a push's answer
	accessToken  string // a token's answer
	transportErr error
}

// outageLoad is a few concurrent writers and readers of every kind an
// outage must answer 503: client-credentials tokens for a client the
// server has cached and for one it has not, introspection, createUser
// (the JSON API, by an admin), a sign-in, the admin API with a bearer
// token, a page that reads the session, sign-in requests from an app
// (direct and pushed), a revocation and userinfo.
type outageLoad struct {
	s                     *server
	warmSecret, webSecret string
	coldSecret, token     string
	userToken             string // a person's access token, with openid
	pushedURI             string // pushed before the outage, opened during it
	browser               *http.Client
	n                     atomic.Int64
	mu                    sync.Mutex
	created, refused      []string    // createUser answered 200, 503
	issued                [][2]string // access tokens answered 200, and their client
}

func newOutageLoad(t *testing.T, s *server) *outageLoad {
	l := &outageLoad{s: s}
	_, l.warmSecret = s.client(clients.Spec{ID: "warm", GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}})
	_, l.coldSecret = s.client(clients.Spec{ID: "cold", GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}})
	_, l.webSecret = s.client(clients.Spec{ID: "webapp", Scopes: []string{"openid"}})
	s.client(clients.Spec{ID: "webapp-cold", Scopes: []string{"openid"}}) // first asked for during the outage
	got := s.post(provider.TokenPath, "warm", l.warmSecret, url.Values{"grant_type": {"client_credentials"}})
	if got.status != http.StatusOK {
		t.Fatalf("token before the outage: %d %v", got.status, got.body)
	}
	l.token = got.body["access_token"].(string)
	// An admin's session: the accounts it creates are not counted
	// against the address, as the public sign-ups are.
	s.admin("outage-owner")
	l.browser = s.loginBrowser("outage-owner")
	l.userToken = s.userToken("outage-owner", "openid")
	l.browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// A request pushed before the outage, opened during it: a 503 page,
	// not "this link has expired" (found from outside).
	if pushed := l.do("par"); pushed.status != http.StatusCreated || pushed.requestURI == "" {
		t.Fatalf("push before the outage: %d %s", pushed.status, pushed.body)
	} else {
		l.pushedURI = pushed.requestURI
	}
	return l
}

var outageKinds = []string{"token-warm", "token-cold", "introspect", "createUser", "page", "bearer-api", "startSession", "authorize", "revoke", "par", "userinfo", "readyz"}

// do sends one request of kind and reads the answer.
func (l *outageLoad) do(kind string) outageAnswer {
	base := l.s.srv.URL
	var req *http.Request
	a := outageAnswer{kind: kind}
	client := &http.Client{Timeout: 20 * time.Second}
	switch kind {
	case "token-warm", "token-cold":
		req, _ = http.NewRequest(http.MethodPost, base+provider.TokenPath, strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if kind == "token-warm" {
			req.SetBasicAuth("warm", url.QueryEscape(l.warmSecret))
		} else {
			req.SetBasicAuth("cold", url.QueryEscape(l.coldSecret))
		}
	case "revoke":
		// An unknown token: 200 (RFC 7009 §2.2), unless the database
		// cannot say.
		req, _ = http.NewRequest(http.MethodPost, base+provider.RevokePath, strings.NewReader("token=not-a-token-of-ours"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("warm", url.QueryEscape(l.warmSecret))
	case "par":
		q := url.Values{"response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {redirectURI},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		req, _ = http.NewRequest(http.MethodPost, base+provider.PARPath, strings.NewReader(q.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("webapp", url.QueryEscape(l.webSecret))
	case "readyz":
		// Not only the first probe: every one while the database is gone.
		req, _ = http.NewRequest(http.MethodGet, base+"/readyz", nil)
	case "userinfo":
		req, _ = http.NewRequest(http.MethodGet, base+provider.UserinfoPath, nil)
		req.Header.Set("Authorization", "Bearer "+l.userToken)
	case "introspect":
		req, _ = http.NewRequest(http.MethodPost, base+provider.IntrospectPath, strings.NewReader(url.Values{"token": {l.token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("warm", url.QueryEscape(l.warmSecret))
	case "createUser":
		a.user = fmt.Sprintf("outage-%d", l.n.Add(1))
		b, _ := json.Marshal(map[string]string{"username": a.user, "password": e2ePassword})
		req, _ = http.NewRequest(http.MethodPost, base+"/api/User/createUser", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		client = l.browser
	case "register", "manage":
		// Dynamic client registration with an initial access token, and
		// an app's management with its registration access token: during
		// the outage neither may be "your token is wrong".
		path := provider.RegisterPath
		if kind == "manage" {
			path += "/warm"
		}
		req, _ = http.NewRequest(http.MethodPost, base+path, strings.NewReader(`{"client_name": "x", "redirect_uris": ["`+redirectURI+`"]}`))
		if kind == "manage" {
			req.Method = http.MethodGet
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer some-token")
	case "authorize", "authorize-cold":
		// A sign-in request from an app: the sign-in page, or while the
		// database is gone the error page (not a redirect the app would
		// take for a refusal). The cold app is not in the server's cache.
		id := "webapp"
		if kind == "authorize-cold" {
			id = "webapp-cold"
		}
		q := url.Values{"client_id": {id}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {redirectURI},
			"state": {"state-1234"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		req, _ = http.NewRequest(http.MethodGet, base+provider.AuthorizePath+"?"+q.Encode(), nil)
		client = &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	case "authorize-pushed":
		q := url.Values{"client_id": {"webapp"}, "request_uri": {l.pushedURI}}
		req, _ = http.NewRequest(http.MethodGet, base+provider.AuthorizePath+"?"+q.Encode(), nil)
		client = &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	case "startSession":
		// A sign-in: a database that does not answer is no wrong password.
		b, _ := json.Marshal(map[string]string{"username": "outage-owner", "password": e2ePassword})
		req, _ = http.NewRequest(http.MethodPost, base+"/api/User/startSession", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
	case "bearer-api":
		// The admin API with the client's own token (scope admin).
		req, _ = http.NewRequest(http.MethodGet, base+"/api/admin/users", nil)
		req.Header.Set("Authorization", "Bearer "+l.token)
	case "page":
		req, _ = http.NewRequest(http.MethodGet, base+"/account", nil)
		client = l.browser
	}
	resp, err := client.Do(req)
	if err != nil {
		a.transportErr = err
		return a
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a.status, a.retryAfter, a.contentType, a.body = resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), string(body)
	var e struct {
		Error       string `json:"error"`
		RequestURI  string `json:"request_uri"`
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &e) == nil {
		a.errorField, a.requestURI, a.accessToken = e.Error, e.RequestURI, e.AccessToken
	}
	if a.accessToken != "" && a.status == http.StatusOK {
		l.mu.Lock()
		l.issued = append(l.issued, [2]string{a.accessToken, strings.TrimPrefix(kind, "token-")})
		l.mu.Unlock()
	}
	if kind == "createUser" {
		l.mu.Lock()
		switch a.status {
		case http.StatusOK:
			l.created = append(l.created, a.user)
		case http.StatusServiceUnavailable:
			l.refused = append(l.refused, a.user)
		}
		l.mu.Unlock()
	}
	return a
}

// outageProblem says what is wrong with an answer given while the
// database is gone, or "".
func outageProblem(a outageAnswer) string {
	switch {
	case a.transportErr != nil:
		return "no answer: " + a.transportErr.Error()
	case a.status != http.StatusServiceUnavailable:
		return fmt.Sprintf("status %d, want 503", a.status)
	case a.retryAfter == "":
		return "503 without Retry-After"
	}
	switch a.kind {
	case "token-warm", "token-cold", "introspect", "register", "manage", "revoke", "par", "userinfo":
		if a.errorField != "temporarily_unavailable" {
			return "OAuth error " + a.errorField + ", want temporarily_unavailable"
		}
	case "createUser", "bearer-api", "startSession":
		if a.errorField == "" || strings.Contains(a.errorField, "SQLSTATE") || strings.Contains(a.errorField, "SQLITE") || strings.Contains(a.errorField, "dial") {
			return "JSON error " + a.errorField + ", want a message in plain words"
		}
	case "page", "authorize", "authorize-cold", "authorize-pushed":
		if !strings.HasPrefix(a.contentType, "text/html") || !strings.Contains(a.body, "Temporarily unavailable") {
			return "not the error page"
		}
	}
	return ""
}

// during runs workers sending every kind of request for d and returns
// what they were answered.
func (l *outageLoad) during(d time.Duration, workers int) []outageAnswer {
	var (
		mu  sync.Mutex
		out []outageAnswer
		wg  sync.WaitGroup
	)
	end := time.Now().Add(d)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; time.Now().Before(end); i++ {
				a := l.do(outageKinds[i%len(outageKinds)])
				mu.Lock()
				out = append(out, a)
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	return out
}

// checkAll fails the test for every answer that is not what the database
// being gone calls for, naming each problem once with a count.
func checkAll(t *testing.T, phase string, answers []outageAnswer, problem func(outageAnswer) string) {
	t.Helper()
	checkAllOf(t, phase, answers, problem, len(outageKinds))
}

func checkAllOf(t *testing.T, phase string, answers []outageAnswer, problem func(outageAnswer) string, least int) {
	t.Helper()
	counts := map[string]int{}
	for _, a := range answers {
		if p := problem(a); p != "" {
			counts[a.kind+": "+p]++
		}
	}
	for p, n := range counts {
		t.Errorf("%s: %d × %s", phase, n, p)
	}
	if len(answers) < least {
		t.Errorf("%s: only %d requests", phase, len(answers))
	}
}

func okProblem(a outageAnswer) string {
	switch {
	case a.transportErr != nil:
		return "no answer: " + a.transportErr.Error()
	case a.kind == "authorize" && (a.status == http.StatusOK || a.status == http.StatusSeeOther || a.status == http.StatusFound):
		return "" // the sign-in page, or a redirect to it
	case a.kind == "par" && a.status == http.StatusCreated:
		return ""
	case a.status != http.StatusOK:
		return fmt.Sprintf("status %d %s", a.status, a.body)
	}
	return ""
}

// readyWithin polls /readyz until it answers want, and fails the test
// unless that took under limit.
func readyWithin(t *testing.T, base string, want int, limit time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				if want == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
					t.Errorf("/readyz 503 without Retry-After")
				}
				if took := time.Since(start); took > limit {
					t.Errorf("/readyz took %v to answer %d, want under %v", took, want, limit)
				}
				return
			}
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("/readyz never answered %d", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readyzAnswer is one answer of /readyz.
func readyzAnswer(t *testing.T, base string) apiReply {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := apiReply{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

// checkNothingHalfWritten: every account acknowledged exists, and none
// refused with 503 does.
func (l *outageLoad) checkNothingHalfWritten(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, name := range l.created {
		if _, err := l.s.app.store.GetUserByUsername(ctx, name); err != nil {
			t.Errorf("acknowledged user %s: %v", name, err)
		}
	}
	for _, name := range l.refused {
		if _, err := l.s.app.store.GetUserByUsername(ctx, name); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("user %s was refused with 503 but exists (%v)", name, err)
		}
	}
	if len(l.refused) == 0 {
		t.Error("no createUser was refused during the outage")
	}
	// No token was acknowledged unstored (tokens are written when the
	// transaction commits): every one answered 200 is live.
	secrets := map[string]string{"warm": l.warmSecret, "cold": l.coldSecret}
	for _, tok := range l.issued {
		if got := l.s.post(provider.IntrospectPath, tok[1], secrets[tok[1]], url.Values{"token": {tok[0]}}); got.status != http.StatusOK || got.body["active"] != true {
			t.Errorf("an access token answered 200 is not live: %d %v", got.status, got.body)
		}
	}
	if len(l.issued) == 0 {
		t.Error("no token was issued")
	}
}

// PostgreSQL stopped at once (pg_ctl stop -m immediate) under load: every
// answer is 503 with Retry-After — temporarily_unavailable from the OAuth
// endpoints, never 401 invalid_client or 500 — and /readyz follows the
// database within a second either way.
func TestOutagePostgresStopped(t *testing.T) {
	cluster := pgtest.Dedicated(t)
	s := startE2E(t, cluster.URL(), options{})
	l := newOutageLoad(t, s)
	checkAll(t, "before", l.during(time.Second, 4), okProblem)

	cluster.Stop()
	readyWithin(t, s.srv.URL, http.StatusServiceUnavailable, time.Second)
	checkAll(t, "outage", l.during(3*time.Second, 6), outageProblem)
	checkAllOf(t, "outage", []outageAnswer{l.do("register"), l.do("manage"), l.do("authorize-cold"), l.do("authorize-pushed")}, outageProblem, 4)

	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	readyWithin(t, s.srv.URL, http.StatusOK, time.Second)
	// The pool drops its dead connections on first use: after a moment
	// every request succeeds again.
	time.Sleep(500 * time.Millisecond)
	checkAll(t, "after", l.during(2*time.Second, 4), okProblem)
	l.checkNothingHalfWritten(t)
}

// SQLite's file cannot grow (a full disk, played by RLIMIT_FSIZE, which
// binds root as well, unlike a chmod): every write is a 503 with
// Retry-After and leaves nothing behind; once there is room, writes work.
// Not parallel: the limit holds for the whole test process.
func TestOutageSQLiteDiskFull(t *testing.T) {
	dir := t.TempDir()
	s := startE2E(t, "sqlite://"+filepath.Join(dir, "tonearm.db"), options{})
	l := newOutageLoad(t, s)
	checkAll(t, "before", l.during(time.Second, 4), okProblem)

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	full := old
	full.Cur = 1 // no file may grow: the log (WAL) takes no new page
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &full); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(restore)
	// Only writes can fail here: the answers of writers.
	writes := []outageAnswer{}
	for i := 0; i < 6; i++ {
		for _, kind := range []string{"token-warm", "createUser"} {
			writes = append(writes, l.do(kind))
		}
	}
	// /readyz tells the load balancer: the file answers reads, but the
	// last write failed and its probe write fails too (it used to say 200).
	notWritable := readyzAnswer(t, s.srv.URL)
	restore()
	checkAllOf(t, "disk full", writes, outageProblem, len(writes))
	if notWritable.status != http.StatusServiceUnavailable || notWritable.body["status"] != "database not writable" || notWritable.body["reason"] == "" {
		t.Fatalf("/readyz with the disk full: %d %s", notWritable.status, notWritable.raw)
	}
	// Room again: the next probe's write succeeds.
	readyWithin(t, s.srv.URL, http.StatusOK, time.Second)

	checkAll(t, "after", l.during(time.Second, 4), okProblem)
	l.checkNothingHalfWritten(t)
}
