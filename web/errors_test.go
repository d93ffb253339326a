package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/storage"
)

// Every kind a domain error can carry has its status in the one table, and
// an answer tells the status, the message for people and the Retry-After
// the kind asks for.
func TestErrorKindTable(t *testing.T) {
	for k := fault.Invalid; k <= fault.Upstream; k++ {
		if kindStatus[k] == 0 {
			t.Errorf("kind %s has no status", k)
		}
	}
	conflict := fault.New(fault.Conflict, "storage text").Saying("Shown to people")
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		msg        string
		ok         bool
		retryAfter string
	}{
		{"invalid", fault.Errorf(fault.Invalid, "name %q is too long", "x"), 400, `name "x" is too long`, true, ""},
		{"not found", fault.New(fault.NotFound, "no such thing"), 404, "no such thing", true, ""},
		{"conflict, wrapped", fmt.Errorf("creating: %w", conflict), 409, "Shown to people", true, ""},
		{"forbidden", fault.New(fault.Forbidden, "no"), 403, "no", true, ""},
		{"unauthenticated", fault.New(fault.Unauthenticated, "who?"), 401, "who?", true, ""},
		{"throttled", fault.New(fault.Throttled, "slow down").After(1500 * time.Millisecond), 429, "slow down", true, "2"},
		{"unavailable database", fmt.Errorf("load: %w", storage.ErrUnavailable), 503, UnavailableMessage, true, "5"},
		// A database failure decides the answer wherever it sits.
		{"unavailable inside a conflict", fmt.Errorf("%w: %w", conflict, storage.ErrUnavailable), 503, UnavailableMessage, true, "5"},
		{"not writable", &storage.NotWritableError{Reason: "disk full"}, 503, UnavailableMessage, true, "5"},
		{"busy", fault.New(fault.Unavailable, "busy").After(time.Second), 503, "busy", true, "1"},
		{"upstream", fault.New(fault.Upstream, "ListenBrainz is down"), 502, "ListenBrainz is down", true, ""},
		{"storage not found", storage.ErrNotFound, 404, "Not found", true, ""},
		{"web's own", Errorf(http.StatusUnsupportedMediaType, "JSON only").With("Retry-After", "9"), 415, "JSON only", true, "9"},
		{"cancelled", fmt.Errorf("query: %w", context.Canceled), 503, "Request was cancelled or took too long", true, ""},
		{"unknown", errors.New("pq: relation does not exist"), 500, "internal error", false, ""},
		{"internal kind", fault.New(fault.Internal, "bug"), 500, "internal error", false, ""},
	} {
		w := httptest.NewRecorder()
		status, msg, ok := ErrorAnswer(w, tc.err)
		if status != tc.status || msg != tc.msg || ok != tc.ok {
			t.Errorf("%s: %d %q %v, want %d %q %v", tc.name, status, msg, ok, tc.status, tc.msg, tc.ok)
		}
		if got := w.Header().Get("Retry-After"); got != tc.retryAfter {
			t.Errorf("%s: Retry-After %q, want %q", tc.name, got, tc.retryAfter)
		}
	}
}

// A challenge is RFC 6750 §3's shape, and no value can end its
// quoted-string, add a parameter or split the header.
func TestChallengeEscapes(t *testing.T) {
	for _, tc := range []struct {
		params []string
		want   string
	}{
		{nil, `Bearer`},
		{[]string{"realm", "tonearm"}, `Bearer realm="tonearm"`},
		{[]string{"realm", "tonearm", "error", "insufficient_scope", "scope", "openid profile"},
			`Bearer realm="tonearm", error="insufficient_scope", scope="openid profile"`},
		{[]string{"error", "invalid_token", "error_description", `say "hi", error="x"`},
			`Bearer error="invalid_token", error_description="say \"hi\", error=\"x\""`},
		{[]string{"error_description", `a\"b`}, `Bearer error_description="a\\\"b"`},
		{[]string{"error_description", "line\r\nSet-Cookie: x=1"}, `Bearer error_description="line  Set-Cookie: x=1"`},
		{[]string{"error_description", "Bearer …"}, `Bearer error_description="Bearer …"`},
	} {
		if got := Challenge("Bearer", tc.params...); got != tc.want {
			t.Errorf("Challenge(%q) = %s, want %s", tc.params, got, tc.want)
		}
	}
}

// The OAuth error answer is RFC 6749 §5.2's object, never cached, without
// an empty description.
func TestWriteOAuthError(t *testing.T) {
	w := httptest.NewRecorder()
	WriteOAuthError(w, http.StatusBadRequest, "invalid_request", "")
	if w.Code != 400 || w.Body.String() != `{"error":"invalid_request"}`+"\n" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("%d %q %q", w.Code, w.Body.String(), w.Header().Get("Cache-Control"))
	}
	w = httptest.NewRecorder()
	WriteOAuthError(w, http.StatusTooManyRequests, "slow_down", "Wait.")
	if w.Body.String() != `{"error":"slow_down","error_description":"Wait."}`+"\n" {
		t.Errorf("%q", w.Body.String())
	}
}

// The database-gone page says what the APIs say (UnavailableMessage),
// written out where the catalogs collect it.
func TestUnavailablePageSaysUnavailableMessage(t *testing.T) {
	if UnavailablePage.Message != UnavailableMessage+"." {
		t.Fatalf("the page says %q, the APIs %q", UnavailablePage.Message, UnavailableMessage)
	}
}
