package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

// TONEARM_METRICS_LISTEN: Prometheus metrics with route patterns (never raw
// paths), token and sign-in counters, the hash queue, Go and the pool.
func TestMetrics(t *testing.T) {
	s := startE2EConfig(t, "sqlite://"+t.TempDir()+"/t.db", options{}, func(c *config.Config) { c.MetricsListen = "127.0.0.1:0" })
	if s.app.metrics == nil {
		t.Fatal("no metrics with TONEARM_METRICS_LISTEN set")
	}
	s.user("mia")
	s.want(s.call(nil, http.MethodPost, "/api/User/startSession", "", map[string]string{"username": "mia", "password": "wrong-password"}), http.StatusUnauthorized)
	s.want(s.call(nil, http.MethodPost, "/api/User/startSession", "", map[string]string{"username": "mia", "password": e2ePassword}), http.StatusOK)
	_, secret := s.client(clients.Spec{ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}})
	tok := s.clientToken("svc", secret, "admin")
	for _, id := range []string{"one-id", "another-id", "a-third-id"} {
		s.want(s.call(nil, http.MethodGet, "/api/admin/users/"+id, tok, nil), http.StatusNotFound)
	}
	s.want(s.call(nil, http.MethodGet, provider.JWKSPath, "", nil), http.StatusOK)

	rec := httptest.NewRecorder()
	s.app.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	out := string(body)
	for _, want := range []string{
		`tonearm_http_requests_total{code="404",route="/api/admin/users/{id}"} 3`,
		`tonearm_http_requests_total{code="200",route="GET /.well-known/jwks.json"} 1`,
		`tonearm_http_request_duration_seconds_count{route="/api/User/startSession"} 2`,
		`tonearm_tokens_issued_total{grant_type="client_credentials"} 1`,
		`tonearm_logins_total{result="failed"} 1`,
		`tonearm_logins_total{result="succeeded"} 1`,
		`tonearm_password_hash_queue 0`,
		`go_goroutines`,
		`go_sql_open_connections{db_name="tonearm"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if regexp.MustCompile(`route="[^"]*(one-id|another-id)`).MatchString(out) {
		t.Fatal("a raw path became a route label")
	}
}
