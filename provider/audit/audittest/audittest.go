// Package audittest checks the audit events a service records: exactly
// one for a change, none for a change that failed.
package audittest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/tonearm-idp/tonearm/storage"
)

// Events lists the recorded events (newest first), as storage does.
type Events interface {
	ListEvents(ctx context.Context, f storage.EventFilter) ([]storage.Event, error)
}

// Recorder tells what a store recorded since the last look.
type Recorder struct {
	store Events
	seen  int
}

// New starts looking at store's events (those already there are old).
func New(t *testing.T, store Events) *Recorder {
	r := &Recorder{store: store}
	r.Fresh(t)
	return r
}

// Fresh returns the events written since the last call, oldest first.
func (r *Recorder) Fresh(t *testing.T) []storage.Event {
	t.Helper()
	all, err := r.store.ListEvents(context.Background(), storage.EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	fresh := all[:len(all)-r.seen]
	r.seen = len(all)
	out := make([]storage.Event, 0, len(fresh))
	for i := len(fresh) - 1; i >= 0; i-- {
		out = append(out, fresh[i])
	}
	return out
}

// Want is an expected event; Detail is JSON ("" or "{}" for none).
type Want struct {
	Type, Actor, User, Client, IP, Detail string
}

// WantOne fails t unless exactly the event w was recorded since the last
// look.
func (r *Recorder) WantOne(t *testing.T, what string, w Want) {
	t.Helper()
	evs := r.Fresh(t)
	if len(evs) != 1 {
		t.Fatalf("%s: %d events recorded, want 1: %+v", what, len(evs), evs)
	}
	e := evs[0]
	got := Want{Type: e.Type, Actor: e.Actor, User: e.User, Client: e.Client, IP: e.IP, Detail: normal(string(e.Detail))}
	w.Detail = normal(w.Detail)
	if got != w {
		t.Fatalf("%s: recorded %+v, want %+v", what, got, w)
	}
}

// WantNone fails t if anything was recorded since the last look.
func (r *Recorder) WantNone(t *testing.T, what string) {
	t.Helper()
	if evs := r.Fresh(t); len(evs) != 0 {
		t.Fatalf("%s: recorded %+v, want nothing", what, evs)
	}
}

// normal is a JSON object's canonical spelling (keys sorted).
func normal(detail string) string {
	if detail == "" {
		return "{}"
	}
	var v any
	if err := json.Unmarshal([]byte(detail), &v); err != nil {
		return detail
	}
	b, _ := json.Marshal(v)
	return string(b)
}
