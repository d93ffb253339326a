package protocol

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/web"
)

// Bounds on what an anonymous authorization request may leave stored. A
// request that needs a page is kept whole in a sign-in interaction for 10
// minutes, and a pushed one for as long; without a bound on its size and a
// count per address, one client fills the database (500 requests with a
// 60 KB state stored 30 MB in 3 s).

// maxAuthorizeRequestBytes bounds an authorization request's parameters,
// form-encoded as they are stored. Real clients send a few hundred bytes
// (state and nonce under 200 each, a request_uri from PAR under 100); 8 KB
// leaves room for claims, resource and login_hint, and is what common
// proxies accept in a request line anyway (nginx's large_client_header_buffers).
const maxAuthorizeRequestBytes = 8 << 10

// errRequestTooLarge refuses a request over maxAuthorizeRequestBytes
// (RFC 6749 §4.1.2.1 invalid_request; RFC 9126 §2.3 for a pushed one). A
// new value each time: fosite's errors write to themselves as they are
// rendered, so a shared one races between requests.
func errRequestTooLarge() *fosite.RFC6749Error {
	return fosite.ErrInvalidRequest.WithHint(fmt.Sprintf(
		"The authorization request's parameters are over %d KB together; this server refuses larger requests. Send less (a shorter state or nonce), or keep data on the client side.",
		maxAuthorizeRequestBytes>>10))
}

// clientAuthFields are a pushed request's client authentication (RFC 9126
// §2.1): not part of the authorization request, and not counted.
var clientAuthFields = map[string]bool{"client_secret": true, "client_assertion": true, "client_assertion_type": true}

// requestTooLarge reports whether form, less its client authentication,
// is over maxAuthorizeRequestBytes form-encoded.
func requestTooLarge(form url.Values) bool {
	n := -1 // the first pair has no "&" before it
	for k, vs := range form {
		if clientAuthFields[k] {
			continue
		}
		for _, v := range vs {
			n += 1 + len(url.QueryEscape(k)) + 1 + len(url.QueryEscape(v)) // "&k=v"
		}
		if n > maxAuthorizeRequestBytes {
			return true
		}
	}
	return false
}

// refuseTooLarge answers an authorization request over the bound:
// invalid_request to the client when its redirect URI is verified, else the
// error page. The state goes back, as RFC 6749 §4.1.2.1 asks, unless it
// alone is over the bound: echoing it would make the answer as large as the
// request (a Location header most proxies refuse), and such a state is
// no client's real one.
func (o *OAuth) refuseTooLarge(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester) {
	if a, ok := ar.(*fosite.AuthorizeRequest); ok && len(a.State) > maxAuthorizeRequestBytes {
		a.State = ""
	}
	o.authorizeError(w, r, ar, errRequestTooLarge())
}

// countStoredSignIn counts the interaction about to be stored for r's
// address (web.LoginLimiter.StoredSignIn); past the budget the client
// hears temporarily_unavailable (RFC 6749 §4.1.2.1) and nothing is stored.
// ar's redirect URI is verified: readRequest admitted it.
func (o *OAuth) countStoredSignIn(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester) bool {
	refusal, err := o.storedSignInRefusal(w, r)
	switch {
	case refusal != nil:
		o.authorizeError(w, r, ar, refusal)
	case err != nil:
		o.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
	default:
		return true
	}
	return false
}

// countPush counts a pushed request of a public client, about to be
// stored, in the same per-address budget as the sign-ins the authorization
// endpoint stores: such a client proves nothing, so anyone can push as it.
// A confidential client pushes from its server for all its users, so its
// pushes are not counted per address (docs/security.md says what they can
// hold). Past the budget: 429 temporarily_unavailable with Retry-After
// (RFC 9126 §2.3 allows 429 and the codes of RFC 6749 §4.1.2.1), and
// nothing is stored.
func (o *OAuth) countPush(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester) bool {
	refusal, err := o.storedSignInRefusal(w, r)
	switch {
	case refusal != nil:
		o.p.OAuth2.WritePushedAuthorizeError(r.Context(), w, ar, refusal)
	case err != nil:
		if !writeUnavailable(w, r, o.log, err) {
			o.p.OAuth2.WritePushedAuthorizeError(r.Context(), w, ar, fosite.ErrServerError.WithWrap(err))
		}
	default:
		return true
	}
	return false
}

// storedSignInRefusal counts one stored sign-in for r's address, first.
// Past the budget it returns the OAuth error to answer, with status 429,
// not fosite's 503 for temporarily_unavailable: it is no fault of the
// server's and must not be logged as one for every refused request; w
// carries its Retry-After. Another error (the database) comes back as err.
func (o *OAuth) storedSignInRefusal(w http.ResponseWriter, r *http.Request) (*fosite.RFC6749Error, error) {
	err := o.limiter.StoredSignIn(r.Context(), r)
	if !fault.Is(err, fault.Throttled) {
		return nil, err
	}
	status, msg, _ := web.ErrorAnswer(w, err)
	return &fosite.RFC6749Error{
		ErrorField: fosite.ErrTemporarilyUnavailable.ErrorField, CodeField: status,
		DescriptionField: msg + ".",
	}, nil
}
