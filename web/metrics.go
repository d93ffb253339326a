package web

import (
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/provider/accounts"
)

// Metrics are tonearm's Prometheus metrics (TONEARM_METRICS_LISTEN). Routes
// are labelled by their pattern ("/api/admin/users/{id}"), never by the raw
// path, so the label set stays bounded whatever clients send.
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	tokens   *prometheus.CounterVec
	logins   *prometheus.CounterVec
	upstream *prometheus.CounterVec
	second   *prometheus.CounterVec
	apps     *prometheus.CounterVec
}

// NewMetrics registers the metrics, the Go runtime's, the process's, the
// database pool's (db) and the password-hash queue (queue reports the
// hashes waiting for a slot).
func NewMetrics(db *sql.DB, queue func() int) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tonearm_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tonearm_http_request_duration_seconds", Help: "HTTP request durations by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tonearm_tokens_issued_total", Help: "Token responses issued by grant type.",
		}, []string{"grant_type"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tonearm_logins_total", Help: "Password sign-ins by result (succeeded, failed, throttled, disabled, busy).",
		}, []string{"result"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tonearm_connector_signins_total",
			Help: "Sign-ins through connectors by connector and result (signed_in, created, linked, pending, denied, failed, rejected).",
		}, []string{"connector", "result"}),
		second: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tonearm_second_factor_total", Help: "Second-factor checks at sign-in by result (succeeded, failed, throttled, unmet).",
		}, []string{"result"}),
		apps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tonearm_client_registrations_total",
			Help: "Apps registered by developers by how (developer, token, open) and result (registered, updated, deleted, refused, throttled).",
		}, []string{"how", "result"}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.tokens, m.logins, m.upstream, m.second, m.apps,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tonearm_password_hash_queue", Help: "Password hashes waiting for a free slot.",
		}, func() float64 { return float64(queue()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(db, "tonearm"),
	)
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	return mux
}

// observe counts one answered request.
func (m *Metrics) observe(r *http.Request, status int, took time.Duration) {
	if m == nil {
		return
	}
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(took.Seconds())
}

// TokenIssued counts a token response.
func (m *Metrics) TokenIssued(grant string) {
	if m != nil {
		m.tokens.WithLabelValues(grant).Inc()
	}
}

// ConnectorResult counts a sign-in through a connector by its outcome.
func (m *Metrics) ConnectorResult(connector, result string) {
	if m != nil {
		m.upstream.WithLabelValues(connector, result).Inc()
	}
}

// SecondFactorResult counts a second-factor check at sign-in.
func (m *Metrics) SecondFactorResult(result string) {
	if m != nil {
		m.second.WithLabelValues(result).Inc()
	}
}

// AppRegistration counts a registration by how and its result.
func (m *Metrics) AppRegistration(how, result string) {
	if m != nil {
		m.apps.WithLabelValues(how, result).Inc()
	}
}

// SignInDone counts a password sign-in by its outcome (err of the check).
func (m *Metrics) SignInDone(err error) { m.login(loginResult(err)) }

// login counts a password sign-in.
func (m *Metrics) login(result string) {
	if m != nil {
		m.logins.WithLabelValues(result).Inc()
	}
}

// loginResult names the outcome of a password sign-in for the metrics.
func loginResult(err error) string {
	switch {
	case err == nil:
		return "succeeded"
	case errors.Is(err, accounts.ErrInvalidCredentials):
		return "failed"
	case fault.Is(err, fault.Throttled):
		return "throttled"
	case errors.Is(err, accounts.ErrDisabled):
		return "disabled"
	case errors.Is(err, accounts.ErrBusy):
		return "busy"
	}
	return "error"
}
