package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/storage"
)

// kindStatus is the one table from an error's kind to its HTTP status:
// every JSON answer and every page words a domain error through it, so web
// knows no domain package's errors (each carries its fault.Kind and its
// message for people).
var kindStatus = map[fault.Kind]int{
	fault.Invalid:         http.StatusBadRequest,
	fault.NotFound:        http.StatusNotFound,
	fault.Conflict:        http.StatusConflict,
	fault.Forbidden:       http.StatusForbidden,
	fault.Unauthenticated: http.StatusUnauthorized,
	fault.Throttled:       http.StatusTooManyRequests,
	fault.Unavailable:     http.StatusServiceUnavailable,
	fault.Upstream:        http.StatusBadGateway,
}

// UnavailableRetryAfter is the Retry-After, in seconds, of a 503 for a
// database that cannot be reached (storage.UnavailableRetryAfter).
var UnavailableRetryAfter = retryAfter(storage.UnavailableRetryAfter)

// UnavailableMessage is what a person or an app reads while the database
// is gone: not their fault, nothing kept, try again.
const UnavailableMessage = storage.UnavailableMessage

// Unavailable reports whether err means the database is gone for now
// (storage.ErrUnavailable): 503 with Retry-After, never 401 or 500, so
// that clients retry instead of treating their credentials as wrong.
func Unavailable(err error) bool { return errors.Is(err, storage.ErrUnavailable) }

// UnavailablePage is the error page shown while the database is gone.
// (Its message is UnavailableMessage and a full stop, written out so that
// the catalogs collect it: TestUnavailablePageSaysUnavailableMessage.)
var UnavailablePage = ErrorPage{Title: locale.M("Temporarily unavailable"),
	Message: locale.M("The service is temporarily unavailable (its database cannot be reached); nothing was changed, try again shortly.")}

// SetUnavailable sets the Retry-After of a 503 for a database that is gone.
func SetUnavailable(w http.ResponseWriter) { w.Header().Set("Retry-After", UnavailableRetryAfter) }

// ErrorMessage words an error for a person or a JSON answer, with its
// status: the one mapping every API and page uses. ok is false for an
// error it does not know (500, "internal error"; log it).
func ErrorMessage(err error) (status int, message string, ok bool) {
	var he *HTTPError
	if d, found := fault.Find(err); found && kindStatus[d.Kind()] != 0 {
		return kindStatus[d.Kind()], d.Message(), true
	}
	switch {
	case errors.As(err, &he):
		return he.status, he.message, true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "Request was cancelled or took too long", true
	}
	return http.StatusInternalServerError, "internal error", false
}

// ErrorAnswer is ErrorMessage for an answer about to be written to w: it
// also sets the headers that go with the status, Retry-After on a 429 of
// a limit (docs/security.md) and on a 503, so that every page tells what
// the APIs tell. Every page handler words its errors through it.
func ErrorAnswer(w http.ResponseWriter, err error) (status int, message string, ok bool) {
	SetErrorHeaders(w, err)
	return ErrorMessage(err)
}

// SetErrorHeaders sets the headers err's answer carries: Retry-After
// (RFC 9110 §10.2.3; RFC 6585 §4 for a 429) when its kind asks to wait.
func SetErrorHeaders(w http.ResponseWriter, err error) {
	var he *HTTPError
	switch kind := fault.KindOf(err); {
	case kind == fault.Throttled, kind == fault.Unavailable && fault.WaitOf(err) > 0:
		w.Header().Set("Retry-After", retryAfter(fault.WaitOf(err)))
	case kind == fault.Internal && errors.As(err, &he):
		for k, v := range he.header {
			w.Header().Set(k, v)
		}
	}
}

// retryAfter is d in whole seconds, rounded up, as Retry-After says it.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}

// WriteAPIError renders err as {"error": …} with its status. Unknown errors are
// logged once with the request ID and answered with a bare 500; a service
// that is gone (the database, ListenBrainz) is logged as a warning.
func WriteAPIError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, msg, ok := ErrorAnswer(w, err)
	switch kind := fault.KindOf(err); {
	case !ok:
		log.Error("request failed", "request_id", RequestID(r.Context()), "path", r.URL.Path, "err", err)
	case kind == fault.Unavailable, kind == fault.Upstream:
		log.Warn("request failed: "+kind.String(), "request_id", RequestID(r.Context()), "path", r.URL.Path, "err", err)
	}
	WriteError(w, status, msg)
}

// PageWriter renders a page: the Site, or a Renderer of it under another
// policy.
type PageWriter interface {
	Render(w http.ResponseWriter, r *http.Request, status int, name string, data any)
}

// FailPage answers a page request that failed with an error no handler
// could word: a 503 page with Retry-After while the database is gone, else
// a 500 page. err is logged once (doing names the request: "page failed")
// and never shown. Every page and sign-in step fails through it.
func FailPage(w http.ResponseWriter, r *http.Request, pages PageWriter, log *slog.Logger, doing string, err error) {
	if UnavailablePageShown(w, r, pages, log, err) {
		return
	}
	log.Error(doing, "request_id", RequestID(r.Context()), "path", r.URL.Path, "err", err)
	ShowErrorPage(w, r, pages, http.StatusInternalServerError, locale.M("Something went wrong"), locale.M("Something went wrong on our side. Try again later."))
}

// UnavailablePageShown answers with the 503 page and its Retry-After when
// err is the database being gone (logged as a warning), and reports whether
// it did.
func UnavailablePageShown(w http.ResponseWriter, r *http.Request, pages PageWriter, log *slog.Logger, err error) bool {
	if !Unavailable(err) {
		return false
	}
	log.Warn("database unavailable", "request_id", RequestID(r.Context()), "path", r.URL.Path, "err", err)
	SetUnavailable(w)
	pages.Render(w, r, http.StatusServiceUnavailable, "error.html", UnavailablePage)
	return true
}

// ShowErrorPage renders the one error page (error.html) with status:
// title is a marked message (locale.M), message a marked message, a
// locale.Message or Said.
func ShowErrorPage(w http.ResponseWriter, r *http.Request, pages PageWriter, status int, title string, message any) {
	pages.Render(w, r, status, "error.html", ErrorPage{Title: title, Message: message})
}

// Said is a message for people that an error words at run time (a
// fault's message, ErrorMessage), as a page prints it in l: the message
// in l when a catalog has it (the catalogs hold faults' messages without
// the full stop a page adds), then the stop, which is itself a message so
// that a language may write its own ("。"). A message no catalog has
// stays English.
func Said(l *locale.Lang, message string) locale.Message {
	message = strings.TrimSuffix(message, ".")
	return locale.MF("{{.Message}}.", "Message", l.Lenient(message))
}
