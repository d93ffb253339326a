package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Readiness follows the database within a second either way: each check
// pings with readyTimeout (a database that does not answer that fast is
// not ready to serve), and one ping's answer serves the checks of the next
// readyReuse, so a flood of probes from many load balancers costs one
// ping per readyReuse.
const (
	readyTimeout = 500 * time.Millisecond
	readyReuse   = 250 * time.Millisecond
)

// Pinger reports whether the database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Health serves /healthz (the process is up) and /readyz (the database
// answers, so a load balancer may send traffic).
type Health struct {
	db       Pinger
	log      *slog.Logger
	draining atomic.Bool

	mu      sync.Mutex // held during a ping: concurrent checks share it
	checked time.Time  // when the latest ping answered
	pingErr error      // its answer
}

// ping asks the database, or reuses an answer younger than readyReuse.
func (h *Health) ping(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.checked.IsZero() && time.Since(h.checked) < readyReuse {
		return h.pingErr
	}
	// Not the probe's own context: a prober that gives up must not make
	// the shared answer an error.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readyTimeout)
	defer cancel()
	h.pingErr = h.db.Ping(ctx)
	h.checked = time.Now()
	return h.pingErr
}

// Drain makes /readyz answer 503 from now on, so a load balancer stops
// sending new requests before the server stops taking them.
func (h *Health) Drain() { h.draining.Store(true) }

// NewHealth returns the health endpoints.
func NewHealth(db Pinger, log *slog.Logger) (*Health, error) {
	if db == nil || log == nil {
		return nil, errors.New("web: Health needs a database and a logger")
	}
	return &Health{db: db, log: log}, nil
}

// Routes mounts the endpoints on mux.
func (h *Health) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if h.draining.Load() {
			WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
			return
		}
		if err := h.ping(r.Context()); err != nil {
			h.log.Warn("readiness check failed", "request_id", RequestID(r.Context()), "err", err)
			WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unreachable"})
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
