package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/provider/totp"
	"github.com/tonearm-idp/tonearm/storage"
)

// TONEARM_METRICS_LISTEN: Prometheus metrics with route patterns (never raw
// paths), token and sign-in counters, the hash queue, Go and the pool.
func TestMetrics(t *testing.T) {
	t.Parallel()
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
	// A sign-in through a connector: created, then refused at the upstream.
	mb := newFakeMusicBrainz(t, s.issuer+"/connectors/mb/callback")
	if _, err := s.app.connectors.Create(context.Background(), connectors.Spec{ID: "mb", Kind: storage.ConnectorMusicBrainz, Name: "MusicBrainz",
		ClientID: mb.clientID, ClientSecret: mb.secret, BaseURL: mb.URL}); err != nil {
		t.Fatal(err)
	}
	mb.signIn(mbAccount{ID: 5, Name: "metered"})
	for _, deny := range []bool{false, true} {
		mb.mu.Lock()
		mb.deny = deny
		mb.mu.Unlock()
		b := travellerBrowser()
		login := get(t, b, s.issuer+"/login")
		submit(t, b, parseForm(t, login.body, login.url), map[string]string{"connector": "mb"})
	}

	// A wrong code at the second-factor step.
	mo := s.user("moe")
	e, err := s.app.accounts.NewTOTPEnrolment(mo, "tonearm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.accounts.EnrolTOTP(context.Background(), mo.ID, e.Token, totp.Code(e.Secret, totp.Step(time.Now())), accounts.Reauth{AuthTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	mb2 := s.browser()
	login := get(t, mb2, s.issuer+"/login")
	sf := submit(t, mb2, parseForm(t, login.body, login.url), map[string]string{"username": "moe", "password": e2ePassword})
	if p := submit(t, mb2, parseForm(t, sf.body, sf.url), map[string]string{"totp_code": "000000"}); p.status != http.StatusUnauthorized {
		t.Fatalf("a wrong code: %d", p.status)
	}

	rec := httptest.NewRecorder()
	s.app.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("the metrics do not parse: %v", err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		f, ok := families[name]
		if !ok {
			return 0, false
		}
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
		return 0, false
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"tonearm_http_requests_total", map[string]string{"route": "/api/admin/users/{id}", "code": "404"}, 3},
		{"tonearm_http_requests_total", map[string]string{"route": "GET /.well-known/jwks.json", "code": "200"}, 1},
		{"tonearm_http_request_duration_seconds", map[string]string{"route": "/api/User/startSession"}, 2},
		{"tonearm_tokens_issued_total", map[string]string{"grant_type": "client_credentials"}, 1},
		{"tonearm_logins_total", map[string]string{"result": "failed"}, 1},
		{"tonearm_logins_total", map[string]string{"result": "succeeded"}, 2}, // mia, and moe's password before the wrong code
		{"tonearm_password_hash_queue", nil, 0},
		{"tonearm_connector_signins_total", map[string]string{"connector": "mb", "result": "created"}, 1},
		{"tonearm_connector_signins_total", map[string]string{"connector": "mb", "result": "denied"}, 1},
		{"tonearm_second_factor_total", map[string]string{"result": "failed"}, 1},
	} {
		if got, ok := value(c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "go_sql_open_connections"} {
		if _, ok := families[name]; !ok {
			t.Errorf("metrics lack %s", name)
		}
	}
	for _, m := range families["tonearm_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && regexp.MustCompile(`one-id|another-id`).MatchString(l.GetValue()) {
				t.Fatalf("a raw path became a route label: %s", l.GetValue())
			}
		}
	}
}
