package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/audit"
)

type ctxKey int

const requestIDKey ctxKey = 0

// RequestID returns the request's ID (set by the middleware), or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// quietPaths are public, cacheable documents, probes and token
// introspection, fetched at high rates by resource servers, relying parties
// and load balancers and changing nothing; their successful answers are not
// access-logged (the line cost 15 % of the CPU of a JWKS request and 6 % of
// an introspection). Failures, a refused client among them, still are.
var quietPaths = map[string]bool{
	provider.IntrospectPath:             true,
	"/.well-known/openid-configuration": true,
	"/.well-known/jwks.json":            true,
	"/api/openapi.json":                 true,
	"/healthz":                          true,
	"/readyz":                           true,
}

// Middleware wraps h with what every response needs: a request ID (an
// incoming X-Request-ID is kept when it is safe to log), the client's
// address (see Frontend), security headers (HSTS on an https issuer), a
// recovered panic turned into a bare 500, and one access log line. Bodies,
// cookies and query strings are never logged: they carry secrets.
func Middleware(log *slog.Logger, f Frontend, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if !validRequestID(id) {
			id = newRequestID()
		}
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
		remote := f.resolve(r)
		r = withClientAddr(r, remote)
		r = r.WithContext(audit.WithOrigin(r.Context(), audit.Origin{IP: remote}))
		hdr := w.Header()
		if f.HSTS {
			hdr.Set("Strict-Transport-Security", "max-age=31536000")
		}
		hdr.Set("X-Request-ID", id)
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("X-Frame-Options", "DENY")
		hdr.Set("Referrer-Policy", "no-referrer")
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic serving request", "request_id", id, "panic", p, "stack", string(debug.Stack()))
				if rec.status == 0 {
					WriteError(rec, http.StatusInternalServerError, "internal error")
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			f.Metrics.observe(r, status, time.Since(start))
			if quietPaths[r.URL.Path] && rec.status < 400 {
				return
			}
			log.Info("request", "request_id", id, "method", r.Method, "path", r.URL.Path,
				"status", rec.status, "bytes", rec.bytes, "duration_ms", float64(time.Since(start).Microseconds())/1000,
				"remote", remote, "peer", r.RemoteAddr)
		}()
		h.ServeHTTP(rec, r)
	})
}
