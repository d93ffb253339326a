package web

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/audit"
)

// RequestID returns the request's ID (set by the middleware), or "".
func RequestID(ctx context.Context) string {
	return audit.OriginOf(ctx).RequestID
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

// newRequestID is 96 random bits in hex. It names a request in logs and
// is no secret: a fast generator will do.
func newRequestID() string {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	return hex.EncodeToString(b[:])
}

// Values of the headers every answer carries, shared (never appended to).
var (
	hstsValue       = []string{"max-age=31536000"}
	nosniffValue    = []string{"nosniff"}
	denyValue       = []string{"DENY"}
	noReferrerValue = []string{"same-origin"}
)

// recorders are reused: one fewer allocation per request.
var recorders = sync.Pool{New: func() any { return new(statusRecorder) }}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	// Every 503 says when to come back (RFC 9110 §10.2.3): an answer that
	// did not choose its own gets the database's.
	if code == http.StatusServiceUnavailable && s.Header().Get("Retry-After") == "" {
		SetUnavailable(s.ResponseWriter)
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

// quietPaths are public, cacheable documents, probes, token issuance and
// introspection, asked for at high rates by resource servers, relying
// parties and load balancers; their successful answers are not
// access-logged (the line cost 15 % of the CPU of a JWKS request, 6 % of an
// introspection and 4 % of a client-credentials token, and says less than
// the metrics do: tokens are counted by grant type). Failures, a refused
// client among them, still are.
var quietPaths = map[string]bool{
	provider.IntrospectPath:             true,
	provider.TokenPath:                  true,
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
		remote := f.resolve(r)
		// The request's ID and client address travel in its audit origin:
		// one context value and one copy of the request.
		r = r.WithContext(audit.WithOrigin(r.Context(), audit.Origin{IP: remote, RequestID: id}))
		// Canonical keys set directly: Header.Set would canonicalise each
		// and allocate its value.
		hdr := w.Header()
		if f.HSTS {
			hdr["Strict-Transport-Security"] = hstsValue
		}
		hdr["X-Request-Id"] = []string{id}
		hdr["X-Content-Type-Options"] = nosniffValue
		if !quietPaths[r.URL.Path] {
			// For what a browser may show; the quiet paths answer JSON
			// documents and probes, at the highest rates, where every
			// header written costs.
			hdr["X-Frame-Options"] = denyValue
			hdr["Referrer-Policy"] = noReferrerValue
		}
		rec := recorders.Get().(*statusRecorder)
		*rec = statusRecorder{ResponseWriter: w}
		defer func() {
			defer func() { *rec = statusRecorder{}; recorders.Put(rec) }()
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
