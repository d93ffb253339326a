package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
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
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := h.db.Ping(ctx); err != nil {
			h.log.Warn("readiness check failed", "request_id", RequestID(r.Context()), "err", err)
			WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unreachable"})
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
