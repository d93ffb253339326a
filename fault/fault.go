// Package fault is tonearm's one error model: a domain error carries a Kind
// (what went wrong, in terms a transport can answer) and a message for
// people. Services and storage return these; each transport maps the kind to
// its own answer once (web: one table of statuses), so no transport needs
// to know the domain packages' errors, as zitadel/oidc renders its one error
// type in one place. It imports nothing of tonearm's, so every package may
// use it.
package fault

import (
	"errors"
	"fmt"
	"time"
)

// Kind is what went wrong, as a caller can act on it.
type Kind uint8

const (
	// Internal is no domain error: a bug or a failure nobody can act on.
	// Transports log it and answer without its text.
	Internal Kind = iota
	// Invalid: the input is refused; sending it again will not help.
	Invalid
	// NotFound: no such thing (or not one the caller may see).
	NotFound
	// Conflict: the state does not allow it (taken, in use, the last one).
	Conflict
	// Forbidden: the caller is known but may not do this (yet).
	Forbidden
	// Unauthenticated: the credentials are wrong or missing.
	Unauthenticated
	// Throttled: too many attempts; try again after the error's Wait.
	Throttled
	// Unavailable: the service cannot serve this now (the database is
	// gone, the queue is full); nothing was changed; try again.
	Unavailable
	// Upstream: a service tonearm depends on failed (RFC 9110 §15.6.3's
	// bad gateway), not the caller and not tonearm.
	Upstream
)

var kindNames = [...]string{Internal: "internal", Invalid: "invalid", NotFound: "not found", Conflict: "conflict",
	Forbidden: "forbidden", Unauthenticated: "unauthenticated", Throttled: "throttled", Unavailable: "unavailable",
	Upstream: "upstream"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Described is a domain error: its kind and what to tell a person. Error()
// stays the text for logs and Go callers.
type Described interface {
	error
	Kind() Kind
	Message() string
}

// Waiter is an error that says how long to wait before trying again (a
// transport's Retry-After); 0 says nothing.
type Waiter interface{ Wait() time.Duration }

// Error is the domain error value: sentinels are *Error values, so callers
// keep testing them with errors.Is.
type Error struct {
	kind Kind
	text string // Error(): for logs and Go callers
	msg  string // for people; text when empty
	// field names the input at fault, when it is one field.
	field string
	wait  time.Duration
	err   error
}

// New is an error of kind whose text is also its message for people.
func New(kind Kind, text string) *Error { return &Error{kind: kind, text: text} }

// Errorf is New with a formatted text; %w wraps as fmt.Errorf does (one
// cause or several).
func Errorf(kind Kind, format string, args ...any) *Error {
	formatted := fmt.Errorf(format, args...)
	e := &Error{kind: kind, text: formatted.Error()}
	switch formatted.(type) {
	case interface{ Unwrap() error }, interface{ Unwrap() []error }:
		e.err = formatted
	}
	return e
}

// Saying is e with another message for people (its Error() text unchanged).
func (e *Error) Saying(message string) *Error {
	c := *e
	c.msg = message
	return &c
}

// On is e naming the input field at fault.
func (e *Error) On(field string) *Error {
	c := *e
	c.field = field
	return &c
}

// After is e asking the caller to wait d before trying again.
func (e *Error) After(d time.Duration) *Error {
	c := *e
	c.wait = d
	return &c
}

func (e *Error) Error() string { return e.text }

// Kind is what went wrong.
func (e *Error) Kind() Kind { return e.kind }

// Message is what to tell a person.
func (e *Error) Message() string {
	if e.msg != "" {
		return e.msg
	}
	return e.text
}

// Field is the input at fault, or "".
func (e *Error) Field() string { return e.field }

// Wait is how long to wait before trying again, or 0.
func (e *Error) Wait() time.Duration { return e.wait }

// Unwrap is what Errorf's %w named (through fmt's wrapper), or nil.
func (e *Error) Unwrap() error { return e.err }

// Find is the domain error in err's tree that decides the answer: an
// Unavailable one wherever it is (a database failure may come wrapped in any
// domain error, and the caller must be told to retry rather than that its
// input was wrong), else the first one errors.As finds.
func Find(err error) (Described, bool) {
	if u := findUnavailable(err); u != nil {
		return u, true
	}
	var d Described
	if errors.As(err, &d) {
		return d, true
	}
	return nil, false
}

// KindOf is the kind Find decides; Internal when err carries none.
func KindOf(err error) Kind {
	if d, ok := Find(err); ok {
		return d.Kind()
	}
	return Internal
}

// Is reports whether err's deciding kind is k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// WaitOf is how long the deciding error asks to wait, or 0.
func WaitOf(err error) time.Duration {
	d, ok := Find(err)
	if !ok {
		return 0
	}
	if w, ok := d.(Waiter); ok {
		return w.Wait()
	}
	return 0
}

// findUnavailable walks err's tree (Unwrap() error and Unwrap() []error)
// for a Described of kind Unavailable.
func findUnavailable(err error) Described {
	for err != nil {
		if d, ok := err.(Described); ok && d.Kind() == Unavailable {
			return d
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if d := findUnavailable(e); d != nil {
					return d
				}
			}
			return nil
		default:
			return nil
		}
	}
	return nil
}
