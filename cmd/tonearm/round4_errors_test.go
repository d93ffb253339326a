package main

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

// rawCall sends one request as a client from outside would and returns
// the answer with its body.
func (s *server) rawCall(t *testing.T, method, path string, header map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.issuer+path, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, strings.TrimSpace(string(b))
}

// Every 401 carries its challenge (RFC 9110 §15.5.2): Bearer on what takes
// bearer tokens, with error="invalid_token" only when a token was sent and
// refused (RFC 6750 §3.1); Basic where clients authenticate with their
// credentials (RFC 6749 §5.2), also when the client used HTTP Basic and
// was refused.
func TestRound4ErrChallenges(t *testing.T) {
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	s.client(clients.Spec{ID: "ops", GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}})
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	jsonCT := map[string]string{"Content-Type": "application/json"}
	basicWrong := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:wrong"))}
	bearerWrong := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer not-a-token"}
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		body               string
		challenge          string
	}{
		{"GET /api/me", http.MethodGet, "/api/me", nil, "", `Bearer realm="tonearm"`},
		{"PATCH /api/me", http.MethodPatch, "/api/me", jsonCT, `{"name":"x"}`, `Bearer realm="tonearm"`},
		{"DELETE /api/me", http.MethodDelete, "/api/me", jsonCT, `{}`, `Bearer realm="tonearm"`},
		{"POST /api/me/password", http.MethodPost, "/api/me/password", jsonCT, `{"current":"a","new":"b"}`, `Bearer realm="tonearm"`},
		{"GET /api/me with a wrong token", http.MethodGet, "/api/me", bearerWrong, "", `Bearer realm="tonearm", error="invalid_token"`},
		{"associateToken", http.MethodPost, "/api/User/associateToken", jsonCT, `{"scrobbleToken":"x"}`, `Bearer realm="tonearm"`},
		{"endSession", http.MethodPost, "/api/User/endSession", jsonCT, `{}`, `Bearer realm="tonearm"`},
		{"introspection without credentials", http.MethodPost, provider.IntrospectPath, form, "token=x", `Basic realm="tonearm"`},
		{"token with a wrong Basic secret", http.MethodPost, provider.TokenPath, basicWrong, "grant_type=client_credentials", `Basic realm="tonearm"`},
		{"token with a wrong posted secret", http.MethodPost, provider.TokenPath, form,
			url.Values{"grant_type": {"client_credentials"}, "client_id": {"ops"}, "client_secret": {"wrong"}}.Encode(), `Basic realm="tonearm"`},
		{"PAR with a wrong Basic secret", http.MethodPost, provider.PARPath, basicWrong, "response_type=code", `Basic realm="tonearm"`},
		{"registration without a token", http.MethodGet, provider.RegisterPath + "/nobody", nil, "", `Bearer realm="tonearm"`},
	} {
		resp, body := s.rawCall(t, tc.method, tc.path, tc.header, tc.body)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != tc.challenge {
			t.Errorf("%s: %d %q (%s), want 401 %q", tc.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body, tc.challenge)
		}
	}
}

// A token-mode registration (the default) without any token is told what
// is needed without an error code in the challenge (RFC 6750 §3.1).
func TestRound4ErrRegisterWithoutToken(t *testing.T) {
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	resp, body := s.rawCall(t, http.MethodPost, provider.RegisterPath, map[string]string{"Content-Type": "application/json"}, `{}`)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer realm="tonearm"` ||
		!strings.HasPrefix(body, `{"error":"invalid_request"`) {
		t.Fatalf("no token: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
}

// A method an endpoint does not serve is 405 with Allow and the
// endpoint's JSON error shape; the registration endpoint answers a body
// over its limit 413 and a body that is not JSON 415, in RFC 7591's shape.
func TestRound4ErrMethodsAndBodies(t *testing.T) {
	s := startE2EConfig(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{}, func(c *config.Config) {
		c.ClientRegistration = config.ClientRegistrationOpen
	})
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodGet, provider.RegisterPath, "POST"},
		{http.MethodPut, provider.PARPath, "POST"},
		{http.MethodPut, provider.DeviceAuthorizationPath, "POST"},
		{http.MethodGet, provider.TokenPath, "POST"},
		{http.MethodGet, provider.IntrospectPath, "POST"},
		{http.MethodGet, provider.RevokePath, "POST"},
		{http.MethodDelete, provider.UserinfoPath, "GET, POST, HEAD"},
		{http.MethodPost, provider.DiscoveryPath, "GET, HEAD"},
		{http.MethodPost, provider.JWKSPath, "GET, HEAD"},
		{http.MethodPost, provider.RegisterPath + "/nobody", "GET, PUT, DELETE, HEAD"},
	} {
		resp, body := s.rawCall(t, tc.method, tc.path, nil, "")
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !strings.HasPrefix(body, `{"error":"invalid_request","error_description":`) {
			t.Errorf("%s %s: %d Allow %q %q %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), resp.Header.Get("Content-Type"), body)
		}
	}
	resp, body := s.rawCall(t, http.MethodPost, "/api/openapi.json", nil, "")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" || !strings.HasPrefix(body, `{"error":"method POST`) {
		t.Errorf("POST /api/openapi.json: %d Allow %q %s", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
	big := `{"client_name":"` + strings.Repeat("x", 70<<10) + `","redirect_uris":["` + redirectURI + `"]}`
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
	}{
		{"over 64 KiB", "application/json", big, http.StatusRequestEntityTooLarge},
		{"a form", "application/x-www-form-urlencoded", "client_name=x", http.StatusUnsupportedMediaType},
		{"no Content-Type", "", `{"redirect_uris":["` + redirectURI + `"]}`, http.StatusUnsupportedMediaType},
	} {
		resp, body := s.rawCall(t, http.MethodPost, provider.RegisterPath, map[string]string{"Content-Type": tc.contentType}, tc.body)
		if resp.StatusCode != tc.status || !strings.HasPrefix(body, `{"error":"invalid_request","error_description":`) {
			t.Errorf("registration with %s: %d %s, want %d", tc.name, resp.StatusCode, body, tc.status)
		}
	}
}

// A malformed query parameter of the events list is 400 saying which, not
// silently ignored (after=garbage listed from the start).
func TestRound4ErrEventsQuery(t *testing.T) {
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	ops := s.opsToken()
	s.opsToken() // a second client.created: two pages of one
	for query, want := range map[string]string{
		"after=garbage":                    "after must be an event id",
		"after=" + strings.Repeat("g", 28): "after must be an event id",
		"limit=abc":                        "limit must be a number",
		"limit=0":                          "limit must be a number",
		"since=yesterday":                  "since must be an RFC 3339 time",
		"type=nope":                        "type must be one of",
	} {
		r := s.call(nil, http.MethodGet, "/api/admin/events?"+query, ops, nil)
		if r.status != http.StatusBadRequest || !strings.HasPrefix(r.errMsg(), want) {
			t.Errorf("%s: %d %s, want 400 %q", query, r.status, r.raw, want)
		}
	}
	first := s.want(s.call(nil, http.MethodGet, "/api/admin/events?limit=1", ops, nil), http.StatusOK)
	next, _ := first.body["next"].(string)
	if next == "" {
		t.Fatalf("no next page: %s", first.raw)
	}
	s.want(s.call(nil, http.MethodGet, "/api/admin/events?limit=1&after="+next, ops, nil), http.StatusOK)
}
