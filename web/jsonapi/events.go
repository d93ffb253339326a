package jsonapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// EventStore lists audit events (the services record them, with the
// changes they make).
type EventStore interface {
	ListEvents(ctx context.Context, f storage.EventFilter) ([]storage.Event, error)
}

type eventJSON struct {
	ID     string          `json:"id"`
	Time   string          `json:"time"`
	Type   string          `json:"type"`
	Actor  string          `json:"actor"`
	User   string          `json:"user"`
	Client string          `json:"client"`
	IP     string          `json:"ip"`
	Detail json.RawMessage `json:"detail"`
}

// listEvents is GET /api/admin/events: filters type, user, since (RFC
// 3339); pages with limit and after (the last id of the previous page).
func (a *AdminAPI) listEvents(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.admin(r); err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 50, 1, 200)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := storage.EventFilter{Type: q.Get("type"), User: q.Get("user"), Before: q.Get("after"), Limit: limit + 1}
	if f.Type != "" && !slices.Contains(audit.Types, f.Type) {
		return web.Errorf(http.StatusBadRequest, "type must be one of the event types (signin.failed, user.changed, …)")
	}
	if f.Before != "" && !audit.ValidID(f.Before) {
		return web.Errorf(http.StatusBadRequest, "after must be an event id, as the previous page's next gives it")
	}
	if s := q.Get("since"); s != "" {
		if f.Since, err = time.Parse(time.RFC3339, s); err != nil {
			return web.Errorf(http.StatusBadRequest, "since must be an RFC 3339 time, e.g. 2026-11-23T00:00:00Z")
		}
	}
	events, err := a.events.ListEvents(r.Context(), f)
	if err != nil {
		return err
	}
	out := struct {
		Events []eventJSON `json:"events"`
		Next   string      `json:"next,omitempty"`
	}{Events: []eventJSON{}}
	if len(events) > limit {
		events = events[:limit]
		out.Next = events[limit-1].ID
	}
	for _, e := range events {
		detail := json.RawMessage(e.Detail)
		if len(detail) == 0 {
			detail = json.RawMessage("{}")
		}
		out.Events = append(out.Events, eventJSON{ID: e.ID, Time: e.Time.UTC().Format(time.RFC3339Nano), Type: e.Type,
			Actor: e.Actor, User: e.User, Client: e.Client, IP: e.IP, Detail: detail})
	}
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}
