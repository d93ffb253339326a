package main

import (
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/provider"
)

// Every challenge and OAuth error answer goes through one builder and one
// writer (web.Challenge, web.WriteOAuthError): the userinfo endpoint, the
// registration endpoint, the device endpoint and the admin API each answer
// a missing or wrong credential with RFC 6750 §3's (or RFC 6749 §5.2's
// Basic) challenge and the JSON shape they have always had, never cached.
func TestRound3ErrorsOneChallengeOneShape(t *testing.T) {
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	call := func(method, path, token, contentType, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, s.issuer+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, strings.TrimSpace(string(b))
	}
	form := "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name, method, path, token, contentType, body string
		status                                       int
		challenge, answer                            string
	}{
		{"userinfo without a token", http.MethodGet, provider.UserinfoPath, "", "", "", 401,
			`Bearer realm="tonearm"`, `{"error":"invalid_request","error_description":"An access token is required."}`},
		{"userinfo with a wrong token", http.MethodGet, provider.UserinfoPath, "not-a-token", "", "", 401,
			`Bearer realm="tonearm", error="invalid_token"`, `{"error":"invalid_token","error_description":"The access token is invalid, expired or revoked."}`},
		{"registration with a wrong initial token", http.MethodPost, provider.RegisterPath, "not-a-token", "application/json", `{}`, 401,
			`Bearer realm="tonearm", error="invalid_token", error_description="The initial access token is unknown, revoked or expired."`,
			`{"error":"invalid_token","error_description":"The initial access token is unknown, revoked or expired."}`},
		{"registration management with a wrong token", http.MethodGet, provider.RegisterPath + "/nobody", "not-a-token", "", "", 401,
			`Bearer realm="tonearm", error="invalid_token", error_description="The registration access token is not this app's."`,
			`{"error":"invalid_token","error_description":"The registration access token is not this app's."}`},
		{"device authorization by an unknown client", http.MethodPost, provider.DeviceAuthorizationPath, "", form,
			url.Values{"client_id": {"nobody"}}.Encode(), 401, `Basic realm="tonearm"`, ""},
		{"admin API without a token", http.MethodGet, "/api/admin/users", "", "", "", 401,
			`Bearer realm="tonearm"`, `{"error":"A bearer access token is required"}`},
		{"admin API with a wrong token", http.MethodGet, "/api/admin/users", "not-a-token", "", "", 401,
			`Bearer realm="tonearm", error="invalid_token"`, `{"error":"The access token is invalid, expired or revoked"}`},
	} {
		resp, body := call(tc.method, tc.path, tc.token, tc.contentType, tc.body)
		if resp.StatusCode != tc.status || resp.Header.Get("WWW-Authenticate") != tc.challenge {
			t.Errorf("%s: %d %q, want %d %q", tc.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tc.status, tc.challenge)
		}
		if tc.answer != "" && body != tc.answer {
			t.Errorf("%s: %s, want %s", tc.name, body, tc.answer)
		}
		if tc.answer == "" && !strings.HasPrefix(body, `{"error":"invalid_client"`) {
			t.Errorf("%s: %s, want an invalid_client OAuth error", tc.name, body)
		}
		if resp.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: Cache-Control %q, Content-Type %q", tc.name, resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Type"))
		}
	}
}
