package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/sqlitetest"
	"github.com/tonearm-idp/tonearm/web"
)

// Dynamic Client Registration (RFC 7591) and its management (RFC 7592)
// with httptest on the SQLite store: the handler, the app registry, the
// initial access tokens and the attempt counter, without a server.

const regIssuer = "https://id.example"

type registrationRig struct {
	mux    *http.ServeMux
	store  *sqlstore.Store
	tokens *clients.RegistrationTokens
}

func newRegistrationRig(t *testing.T, mode config.ClientRegistration) *registrationRig {
	t.Helper()
	store := sqlitetest.Open(t)
	hasher, err := clients.NewSecretHasher(bytes.Repeat([]byte("h"), 32))
	if err != nil {
		t.Fatal(err)
	}
	apps, err := clients.NewRegistry(store, hasher)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := clients.NewRegistrationTokens(store, hasher, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	limiter, err := web.NewLoginLimiter(store, web.NewDeviceCookies(bytes.Repeat([]byte("d"), 32), regIssuer, nil), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewRegistration(RegistrationConfig{Mode: mode, Apps: apps, Tokens: tokens, Limiter: limiter, Events: store, Issuer: regIssuer, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	g.Routes(mux)
	return &registrationRig{mux: mux, store: store, tokens: tokens}
}

type regReply struct {
	status int
	header http.Header
	body   map[string]any
}

func (r *registrationRig) do(method, path, bearer, body string) regReply {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = "192.0.2.10:5000"
	if body != "" {
		req.Header.Set("Content-Type", "application/json") // RFC 7591 §3.1
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rec := httptest.NewRecorder()
	r.mux.ServeHTTP(rec, req)
	out := regReply{status: rec.Code, header: rec.Header()}
	_ = json.Unmarshal(rec.Body.Bytes(), &out.body)
	return out
}

func (r *registrationRig) events(t *testing.T, typ string) []storage.Event {
	t.Helper()
	ev, err := r.store.ListEvents(context.Background(), storage.EventFilter{Type: typ, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

const webApp = `{"redirect_uris":["https://app.example/cb"],"client_name":"Shop","scope":"openid profile"}`

func TestNewRegistrationRefusesMissingParts(t *testing.T) {
	t.Parallel()
	if _, err := NewRegistration(RegistrationConfig{Mode: config.ClientRegistrationOpen}); err == nil {
		t.Error("no dependencies accepted")
	}
}

func TestRegistrationOff(t *testing.T) {
	t.Parallel()
	rig := newRegistrationRig(t, config.ClientRegistrationOff)
	if got := rig.do(http.MethodPost, provider.RegisterPath, "", webApp); got.status != http.StatusForbidden || got.body["error"] != "access_denied" {
		t.Fatalf("registration when off = %d %v", got.status, got.body)
	}
}

// TestRegistrationWithToken: without an initial access token, or with a
// wrong one, 401 invalid_token and a WWW-Authenticate header (RFC 6750
// §3); with one, the app, its secret and its registration access token.
func TestRegistrationWithToken(t *testing.T) {
	t.Parallel()
	rig := newRegistrationRig(t, config.ClientRegistrationToken)
	ctx := context.Background()
	now := time.Now().UTC()
	if err := rig.store.CreateUser(ctx, storage.User{ID: "dev-1", Username: "dev", Role: storage.RoleUser, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	_, value, err := rig.tokens.Create(ctx, "dev-1", "ci", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 6750 §3.1: no token gets a challenge without an error code; a
	// refused one gets invalid_token.
	for name, want := range map[string][2]string{
		"":          {"invalid_request", `Bearer realm="tonearm"`},
		"iat_wrong": {"invalid_token", `Bearer realm="tonearm", error="invalid_token"`},
	} {
		got := rig.do(http.MethodPost, provider.RegisterPath, name, webApp)
		if ch := got.header.Get("WWW-Authenticate"); got.status != http.StatusUnauthorized || got.body["error"] != want[0] || !strings.HasPrefix(ch, want[1]) ||
			(name == "" && strings.Contains(ch, "error=")) {
			t.Errorf("token %q: %d %v %q", name, got.status, got.body, ch)
		}
	}
	got := rig.do(http.MethodPost, provider.RegisterPath, value, webApp)
	id, _ := got.body["client_id"].(string)
	if got.status != http.StatusCreated || id == "" || got.body["client_secret"] == "" || got.body["client_secret_expires_at"] != 0.0 ||
		got.body["registration_access_token"] == "" || got.body["registration_client_uri"] != regIssuer+provider.RegisterPath+"/"+id ||
		got.body["token_endpoint_auth_method"] != "client_secret_basic" || got.body["application_type"] != "web" ||
		got.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("registration = %d %v", got.status, got.body)
	}
	c, err := rig.store.GetClient(ctx, id)
	if err != nil || c.Owner != "dev-1" || c.Registration != storage.RegisteredWithToken || c.FirstParty {
		t.Fatalf("stored app = %+v %v", c, err)
	}
	if ev := rig.events(t, audit.AppRegistered); len(ev) != 1 || ev[0].Client != id || ev[0].User != "dev-1" {
		t.Fatalf("audit = %+v", ev)
	}
}

// TestRegistrationRefusals: each bad metadata is its RFC 7591 §3.2.2 error,
// stores nothing, and is an audit event.
func TestRegistrationRefusals(t *testing.T) {
	t.Parallel()
	rig := newRegistrationRig(t, config.ClientRegistrationOpen)
	cases := map[string]struct{ body, code string }{
		"not JSON":            {`{"redirect_uris":`, "invalid_client_metadata"},
		"a wrong type":        {`{"redirect_uris":"https://app.example/cb"}`, "invalid_client_metadata"},
		"implicit":            {`{"redirect_uris":["https://app.example/cb"],"response_types":["token"]}`, "invalid_client_metadata"},
		"an unknown app type": {`{"redirect_uris":["https://app.example/cb"],"application_type":"tv"}`, "invalid_client_metadata"},
		"a web app's custom scheme": {`{"redirect_uris":["com.example.app:/cb"],"application_type":"web"}`,
			"invalid_redirect_uri"},
		"a fragment": {`{"redirect_uris":["https://app.example/cb#x"]}`, "invalid_redirect_uri"},
	}
	for name, c := range cases {
		got := rig.do(http.MethodPost, provider.RegisterPath, "", c.body)
		if got.status != http.StatusBadRequest || got.body["error"] != c.code || got.body["error_description"] == "" {
			t.Errorf("%s: %d %v, want 400 %s", name, got.status, got.body, c.code)
		}
	}
	if list, err := rig.store.ListClients(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("refused metadata stored %d apps (%v)", len(list), err)
	}
	if ev := rig.events(t, audit.AppRefused); len(ev) != len(cases) {
		t.Fatalf("%d refusals recorded, want %d", len(ev), len(cases))
	}
}

// TestOpenRegistrationLimit: without a token every attempt from an
// address counts, valid or not, before the body is read; past the limit
// the answer is 429 with Retry-After, and no audit row is written.
func TestOpenRegistrationLimit(t *testing.T) {
	t.Parallel()
	rig := newRegistrationRig(t, config.ClientRegistrationOpen)
	for i := range web.LimitOpenRegistration.Max {
		body := webApp
		if i%2 == 1 {
			body = "not json"
		}
		if got := rig.do(http.MethodPost, provider.RegisterPath, "", body); got.status != http.StatusCreated && got.status != http.StatusBadRequest {
			t.Fatalf("attempt %d: %d %v", i+1, got.status, got.body)
		}
	}
	before := len(rig.events(t, ""))
	got := rig.do(http.MethodPost, provider.RegisterPath, "", webApp)
	if got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") == "" || got.body["error"] != "invalid_request" {
		t.Fatalf("past the limit: %d %v %v", got.status, got.header, got.body)
	}
	if after := len(rig.events(t, "")); after != before {
		t.Fatalf("a throttled attempt wrote %d audit rows", after-before)
	}
}

// TestRegistrationManagement: RFC 7592 read, update and delete with the
// registration access token; an unknown app and a wrong token look alike.
func TestRegistrationManagement(t *testing.T) {
	t.Parallel()
	rig := newRegistrationRig(t, config.ClientRegistrationOpen)
	reg := rig.do(http.MethodPost, provider.RegisterPath, "", webApp)
	id, _ := reg.body["client_id"].(string)
	token, _ := reg.body["registration_access_token"].(string)
	uri := provider.RegisterPath + "/" + id
	if got := rig.do(http.MethodGet, uri, token, ""); got.status != http.StatusOK || got.body["client_name"] != "Shop" || got.body["client_secret"] != nil {
		t.Fatalf("read = %d %v", got.status, got.body)
	}
	for name, path := range map[string]string{"a wrong token": uri, "an unknown app": provider.RegisterPath + "/nobody"} {
		bearer := "wrong"
		if name == "an unknown app" {
			bearer = token
		}
		if got := rig.do(http.MethodGet, path, bearer, ""); got.status != http.StatusUnauthorized || got.body["error"] != "invalid_token" {
			t.Errorf("%s: %d %v", name, got.status, got.body)
		}
	}
	if got := rig.do(http.MethodPut, uri, token, `{"client_id":"other","redirect_uris":["https://app.example/cb"]}`); got.status != http.StatusBadRequest ||
		!strings.Contains(got.body["error_description"].(string), "RFC 7592") {
		t.Fatalf("an update naming another client_id = %d %v", got.status, got.body)
	}
	got := rig.do(http.MethodPut, uri, token, `{"client_id":"`+id+`","redirect_uris":["https://app.example/new"],"client_name":"Shop 2"}`)
	if got.status != http.StatusOK || got.body["client_name"] != "Shop 2" || got.body["token_endpoint_auth_method"] != "client_secret_basic" {
		t.Fatalf("update = %d %v", got.status, got.body)
	}
	if got := rig.do(http.MethodPatch, uri, token, ""); got.status != http.StatusMethodNotAllowed || got.header.Get("Allow") != "GET, PUT, DELETE, HEAD" {
		t.Fatalf("PATCH = %d %v", got.status, got.header)
	}
	if got := rig.do(http.MethodDelete, uri, token, ""); got.status != http.StatusNoContent {
		t.Fatalf("delete = %d %v", got.status, got.body)
	}
	if got := rig.do(http.MethodGet, uri, token, ""); got.status != http.StatusUnauthorized {
		t.Fatalf("read after delete = %d", got.status)
	}
	for _, typ := range []string{audit.AppChanged, audit.AppDeleted} {
		if ev := rig.events(t, typ); len(ev) != 1 || ev[0].Client != id {
			t.Errorf("%s events = %+v", typ, ev)
		}
	}
}
