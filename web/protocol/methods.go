package protocol

import (
	"net/http"
	"slices"
	"strings"

	"github.com/tonearm-idp/tonearm/web"
)

// allowOnly answers a method the endpoint does not serve with 405, the
// Allow header RFC 9110 §15.5.6 asks for, and the endpoint's own error
// shape (RFC 6749 §5.2's JSON, invalid_request), not the mux's text/plain:
// an OAuth client parses every answer of these endpoints as JSON. HEAD is
// served where GET is (RFC 9110 §9.3.2).
func allowOnly(h http.HandlerFunc, methods ...string) http.HandlerFunc {
	if slices.Contains(methods, http.MethodGet) && !slices.Contains(methods, http.MethodHead) {
		methods = append(methods, http.MethodHead)
	}
	refuse := notAllowed(methods...)
	return func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(methods, r.Method) {
			refuse(w, r)
			return
		}
		h(w, r)
	}
}

// notAllowed is allowOnly's 405 alone, mounted on an endpoint's bare path
// beside its "METHOD path" patterns (which keep naming the route in the
// metrics): the mux sends it every other method.
func notAllowed(methods ...string) http.HandlerFunc {
	if slices.Contains(methods, http.MethodGet) && !slices.Contains(methods, http.MethodHead) {
		methods = append(methods, http.MethodHead)
	}
	allow := strings.Join(methods, ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		web.WriteOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "The method "+r.Method+" is not allowed here: use "+allow+".")
	}
}

// clientChallenge gives every 401 of an endpoint where clients
// authenticate with their credentials (token, introspection, revocation,
// pushed authorization, device authorization) the challenge RFC 6749 §5.2
// asks for, `Basic realm="tonearm"`, when the handler (or fosite's writer,
// which sets none) did not set one: RFC 9110 §15.5.2 makes it a MUST for
// every 401, and a client that sent no Authorization header learns the
// scheme it may use.
func clientChallenge(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h(&challengeWriter{ResponseWriter: w}, r)
	}
}

type challengeWriter struct{ http.ResponseWriter }

func (c *challengeWriter) WriteHeader(status int) {
	if status == http.StatusUnauthorized && c.Header().Get("WWW-Authenticate") == "" {
		web.SetChallenge(c.ResponseWriter, "Basic", "realm", "tonearm")
	}
	c.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the connection.
func (c *challengeWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
