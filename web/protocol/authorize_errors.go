package protocol

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/web"
)

// How the authorization endpoint answers a request it cannot serve: to the
// client when its redirect URI is known to be its own, else a page in plain
// words.

// authorizeError redirects an error to the client when its redirect URI is
// known to be registered, and otherwise shows an error page: an unknown
// client or an unregistered redirect_uri is never redirected to.
func (o *OAuth) authorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	// A page, not a redirect with temporarily_unavailable (RFC 6749
	// §4.1.2.1): the person can reload it once the database is back, while
	// the app would have to start the sign-in over.
	if web.UnavailablePageShown(w, r, o.pages, o.log, err) {
		return
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.CodeField >= 500 {
		o.log.Error("authorization failed", "request_id", web.RequestID(r.Context()), "err", rfc.WithExposeDebug(true).GetDescription())
	}
	if redirectAllowed(ar) {
		o.consumePAR(r, ar)
		o.writeAuthorizeError(w, r, ar, rfc)
		return
	}
	status := http.StatusBadRequest
	if rfc.CodeField >= 500 {
		status = http.StatusInternalServerError
	}
	o.page(w, r, status, "error.html", web.ErrorPage{Title: locale.M("This sign-in request is invalid"), Message: plainAuthorizeError(rfc, ar, r.Form), Detail: rfc.ErrorField})
}

// plainAuthorizeError says in plain words why a sign-in request cannot go
// on, for the person who followed it; fosite's descriptions are written for
// developers (they go to the client, in the redirect, when it is safe).
func plainAuthorizeError(rfc *fosite.RFC6749Error, ar fosite.AuthorizeRequester, form url.Values) string {
	switch {
	case rfc.CodeField >= 500:
		return locale.M("Something went wrong on our side while handling this sign-in. Please try again in a moment.")
	case rfc.ErrorField == fosite.ErrInvalidClient.ErrorField:
		return locale.M("The application that sent you here is not registered with this site.")
	case rfc.ErrorField == fosite.ErrInvalidRequestObject.ErrorField:
		return locale.M("The application's signed sign-in request could not be verified, so the sign-in stops here.")
	case rfc.ErrorField == fosite.ErrInvalidRequestURI.ErrorField && strings.HasPrefix(form.Get("request_uri"), provider.PARRequestURIPrefix):
		return locale.M("This sign-in link has expired, was already used, or belongs to another browser.")
	case rfc.ErrorField == fosite.ErrInvalidRequestURI.ErrorField:
		return locale.M("The application's sign-in request could not be fetched from the address it gave, so the sign-in stops here.")
	case ar != nil && ar.GetClient() != nil && !redirectAllowed(ar) && (form.Has("redirect_uri") || ar.GetRedirectURI() != nil && ar.GetRedirectURI().String() != ""):
		// A redirect URI was named (or found) and is not the client's;
		// with none named and several registered, there is nothing to
		// call unregistered.
		return locale.M("The application asked to send you back to an address it has not registered with this site, so the sign-in stops here.")
	default:
		return locale.M("The application that sent you here made a sign-in request this site cannot accept.")
	}
}

// writeAuthorizeError sends an error to the client in the request's
// response mode (query, or form_post), with iss (RFC 9207) like every
// authorization response.
func (o *OAuth) writeAuthorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, rfc *fosite.RFC6749Error) {
	values := rfc.ToValues()
	if ar.GetState() != "" {
		values.Set("state", ar.GetState())
	}
	values.Set("iss", o.p.Issuer())
	if o.writeFormPost(w, r, ar, values) {
		return
	}
	u := *ar.GetRedirectURI()
	u.Fragment = ""
	for k, vs := range u.Query() {
		for _, v := range vs {
			values.Add(k, v)
		}
	}
	u.RawQuery = values.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusSeeOther)
}

// redirectAllowed reports whether the request's redirect URI may be sent
// to: fosite found it registered, and for a confidential client it is
// registered exactly. fosite accepts any port on a registered loopback URI
// for every client; RFC 8252 §7.3 grants that to native apps (public
// clients) only, and a confidential web app on http://127.0.0.1:PORT/ must
// not have its codes sent to whatever else listens on another port.
func redirectAllowed(ar fosite.AuthorizeRequester) bool {
	if ar == nil || !ar.IsRedirectURIValid() || ar.GetClient() == nil {
		return false
	}
	if ar.GetClient().IsPublic() {
		return true
	}
	got := ar.GetRedirectURI().String()
	for _, raw := range ar.GetClient().GetRedirectURIs() {
		if u, err := url.Parse(raw); err == nil && u.String() == got {
			return true
		}
	}
	return false
}
