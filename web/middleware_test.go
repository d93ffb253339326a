package web

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/provider"
)

func TestMiddleware(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/api/x", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) })
	mux.HandleFunc(provider.IntrospectPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Request-ID") == "introspect-refused" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	mux.HandleFunc("/boom", func(w http.ResponseWriter, r *http.Request) { panic("secret internals") })
	h := Middleware(log, Frontend{}, mux)

	do := func(path, reqID string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path+"?token=query-secret", nil)
		if reqID != "" {
			req.Header.Set("X-Request-ID", reqID)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := do("/api/x", "client-id-123")
	if rec.Header().Get("X-Request-ID") != "client-id-123" || rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("X-Frame-Options") != "DENY" {
		t.Fatalf("headers = %v", rec.Header())
	}
	if got := do("/api/x", "bad id\nwith newline").Header().Get("X-Request-ID"); got == "" || strings.Contains(got, "\n") {
		t.Fatalf("unsafe request ID kept: %q", got)
	}
	do("/healthz", "quiet-ok")
	do("/readyz", "quiet-fail")
	do(provider.IntrospectPath, "introspect-ok")
	do(provider.IntrospectPath, "introspect-refused")
	rec = do("/boom", "panicky")
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "secret internals") {
		t.Fatalf("panic answer = %d %q", rec.Code, rec.Body.String())
	}
	out := logs.String()
	for _, want := range []string{`"request_id":"client-id-123"`, `"request_id":"quiet-fail"`, `"request_id":"introspect-refused"`, `"msg":"panic serving request"`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if strings.Contains(out, "quiet-ok") || strings.Contains(out, "introspect-ok") {
		t.Error("a successful health probe or introspection was access-logged")
	}
	if strings.Contains(out, "query-secret") {
		t.Error("a query string reached the log")
	}
}
