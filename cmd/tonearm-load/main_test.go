package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLoadCountsOnlyRealSuccesses(t *testing.T) {
	ceiling := httptest.NewServer(standIn())
	defer ceiling.Close()
	inactive := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"active":false}`))
	}))
	defer inactive.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"active":true}`))
	}))
	defer broken.Close()

	post := target{method: http.MethodPost, path: "/oauth2/token", contentType: "application/x-www-form-urlencoded",
		body: []byte("grant_type=client_credentials"), user: "svc", pass: "s", want: []byte(`"access_token":`)}
	r := load(http.DefaultClient, ceiling.URL, post, 4, 200*time.Millisecond, nil)
	if r.ok == 0 || r.failed != 0 || int64(len(r.latencies)) != r.ok || r.firstErr != "" {
		t.Fatalf("against the stand-in: %+v", r)
	}
	if r.rate() <= 0 || r.pct(0.5) <= 0 || r.pct(0.99) < r.pct(0.5) {
		t.Fatalf("rate %v, p50 %v, p99 %v", r.rate(), r.pct(0.5), r.pct(0.99))
	}
	get := target{method: http.MethodGet, path: "/.well-known/jwks.json", want: []byte(`"keys":`)}
	if r := load(http.DefaultClient, ceiling.URL, get, 2, 100*time.Millisecond, nil); r.ok == 0 || r.failed != 0 {
		t.Fatalf("GET against the stand-in: %+v", r)
	}

	intro := target{method: http.MethodPost, path: "/oauth2/introspect", want: []byte(`"active":true`)}
	r = load(http.DefaultClient, inactive.URL, intro, 2, 100*time.Millisecond, nil)
	if r.ok != 0 || r.failed == 0 || !strings.Contains(r.firstErr, `"active":true`) {
		t.Fatalf("inactive answers counted: %+v", r)
	}
	r = load(http.DefaultClient, broken.URL, intro, 2, 100*time.Millisecond, nil)
	if r.ok != 0 || r.failed == 0 || r.firstErr != "HTTP 401" {
		t.Fatalf("401 answers counted: ok %d failed %d first error %q", r.ok, r.failed, r.firstErr)
	}
	if r := (result{}); r.pct(0.99) != 0 {
		t.Fatal("percentile of nothing")
	}
}
