package jsonapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/listenbrainz"
	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
	"github.com/tonearm-idp/tonearm/web"
	"github.com/tonearm-idp/tonearm/web/jsonapi"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// backends runs fn once per database, in parallel.
func backends(t *testing.T, fn func(t *testing.T, newURL func(t *testing.T) string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "tonearm.db") })
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, func(t *testing.T) string { return pgtest.URL(t) })
	})
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeListenBrainz is the HTTP stand-in for the ListenBrainz API: the real
// client talks to it over HTTP.
type fakeListenBrainz struct {
	*httptest.Server
	mu    sync.Mutex
	calls int
}

const (
	lbGoodToken    = "7a1f8b2e-0c44-4f0e-9a7d-1b2c3d4e5f60"
	lbBadToken     = "00000000-dead-beef-0000-000000000000"
	lbBrokenToken  = "11111111-5000-5000-5000-111111111111"
	lbHangingToken = "22222222-slow-slow-slow-222222222222"
)

func newFakeListenBrainz(t testing.TB) *fakeListenBrainz {
	f := &fakeListenBrainz{}
	release := make(chan struct{})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls++
		f.mu.Unlock()
		if r.URL.Path != "/1/validate-token" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		switch r.Header.Get("Authorization") {
		case "Token " + lbGoodToken:
			io.WriteString(w, `{"code":200,"message":"Token valid.","valid":true,"user_name":"rob_listens"}`)
		case "Token " + lbBrokenToken:
			w.WriteHeader(http.StatusInternalServerError)
		case "Token " + lbHangingToken:
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			io.WriteString(w, `{"code":200,"message":"Token invalid.","valid":false}`)
		}
	}))
	t.Cleanup(func() { close(release); f.Close() })
	return f
}

func (f *fakeListenBrainz) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// env is a running tonearm User API on a real database.
type env struct {
	t        testing.TB
	srv      *httptest.Server
	store    *sqlstore.Store
	accounts *accounts.Service
	lb       *fakeListenBrainz
	logs     *syncBuffer
	dbURL    string
}

type envOptions struct {
	registration config.Registration
	issuer       string
	now          func() time.Time
	hashParams   *accounts.HashParams
}

var testSecret = []byte("test-secret-test-secret-test-secret-0123456789")

func newEnv(t testing.TB, dbURL string, opts ...func(*envOptions)) *env {
	t.Helper()
	o := envOptions{registration: config.RegistrationOpen}
	for _, f := range opts {
		f(&o)
	}
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	lb := newFakeListenBrainz(t)
	client, err := listenbrainz.New(lb.URL, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	box, err := seal.New(seal.DeriveKey(testSecret, "listenbrainz-token"))
	if err != nil {
		t.Fatal(err)
	}
	params := accounts.HashParams{Memory: 64, Time: 1, Threads: 1}
	if o.hashParams != nil {
		params = *o.hashParams
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	acc, err := accounts.New(accounts.Config{
		Store:     store,
		Hasher:    accounts.NewHasher(params, 0, 1024),
		Validator: client,
		Box:       box,
		Logger:    log,
		Now:       o.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(web.Middleware(log, web.Frontend{}, mux))
	srv.Start()
	t.Cleanup(srv.Close)
	issuer := o.issuer
	if issuer == "" {
		issuer = srv.URL
	}
	limiter, err := web.NewLoginLimiter(store, web.NewDeviceCookies(seal.DeriveKey(testSecret, "known-device"), issuer, o.now), log, o.now)
	if err != nil {
		t.Fatal(err)
	}
	mode := accounts.RegistrationAdmin
	if o.registration == config.RegistrationOpen {
		mode = accounts.RegistrationOpen
	}
	signups, err := accounts.NewSignups(acc, mode, nil)
	if err != nil {
		t.Fatal(err)
	}
	api, err := jsonapi.NewUserAPI(jsonapi.UserAPIConfig{Accounts: acc, Signups: signups, Issuer: issuer, Logger: log, Limiter: limiter})
	if err != nil {
		t.Fatal(err)
	}
	api.Routes(mux)
	health, err := web.NewHealth(store, log)
	if err != nil {
		t.Fatal(err)
	}
	health.Routes(mux)
	return &env{t: t, srv: srv, store: store, accounts: acc, lb: lb, logs: logs, dbURL: dbURL}
}

// client is a browser-like HTTP client with its own cookie jar.
func (e *env) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// post sends a JSON body (a string is sent as is) to path.
func (e *env) post(c *http.Client, path string, body any) response {
	e.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		var err error
		raw, err = json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	return e.do(c, req)
}

func (e *env) do(c *http.Client, req *http.Request) response {
	e.t.Helper()
	if c == nil {
		c = e.client()
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(data)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(data, &r.body); err != nil {
			e.t.Fatalf("%s %s: response is not a JSON object: %q", req.Method, req.URL.Path, data)
		}
	}
	return r
}

// wantError checks status and that the body is exactly {"error": "<non-empty>"}.
func (r response) wantError(t *testing.T, status int) string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.raw)
	}
	msg, ok := r.body["error"].(string)
	if !ok || msg == "" || len(r.body) != 1 {
		t.Fatalf("error body = %s, want {\"error\": \"…\"}", r.raw)
	}
	return msg
}

// createUser creates a user through the API and returns its ID.
func (e *env) createUser(username, password string) string {
	e.t.Helper()
	r := e.post(nil, "/api/User/createUser", map[string]string{"username": username, "password": password})
	if r.status != http.StatusOK {
		e.t.Fatalf("createUser(%s) = %d %s", username, r.status, r.raw)
	}
	return r.body["user"].(string)
}

// login starts a session in a fresh browser and returns it.
func (e *env) login(username, password string) *http.Client {
	e.t.Helper()
	c := e.client()
	r := e.post(c, "/api/User/startSession", map[string]string{"username": username, "password": password})
	if r.status != http.StatusOK {
		e.t.Fatalf("startSession(%s) = %d %s", username, r.status, r.raw)
	}
	return c
}
