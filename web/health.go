package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

// readyTimeout: a database that does not answer a ping this fast is not
// ready to serve. Each check pings (no answer is reused, so /readyz
// follows the database at once either way); checks arriving while a ping
// is under way share its answer, so a flood of probes from many load
// balancers costs at most one ping in flight.
const readyTimeout = 500 * time.Millisecond

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

	mu       sync.Mutex
	inflight *pingCall // the ping under way, if any (mu)
}

// pingCall is one ping whose answer every check that waits for it shares.
type pingCall struct {
	done chan struct{}
	err  error
}

// ping asks the database, or waits for the ping under way.
func (h *Health) ping(ctx context.Context) error {
	h.mu.Lock()
	c := h.inflight
	if c == nil {
		c = &pingCall{done: make(chan struct{})}
		h.inflight = c
		// Not the probe's own context: a prober that gives up must not
		// make the shared answer an error.
		go func() {
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readyTimeout)
			c.err = h.db.Ping(pctx)
			cancel()
			h.mu.Lock()
			h.inflight = nil
			h.mu.Unlock()
			close(c.done)
		}()
	}
	h.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
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
			var nw *storage.NotWritableError
			if errors.As(err, &nw) {
				// It answers, but every write would fail: not ready.
				WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database not writable", "reason": nw.Reason})
				return
			}
			WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unreachable"})
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
