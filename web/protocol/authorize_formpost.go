package protocol

import (
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/web"
)

// The form_post response mode (OAuth 2.0 Form Post Response Mode, §2): the
// authorization response, success or error, goes to the client's redirect
// URI as the hidden fields of a form the browser posts. A long response
// then stays out of URLs (logs, history, Referer), and clients such as
// ASP.NET Core's OpenID Connect handler ask for it by default. The query
// mode is the default; fragment is not offered (see
// fositestore.GetResponseModes).

// formPostPage is the data of form_post.html.
type formPostPage struct {
	Action string // the client's redirect URI
	Fields []formPostField
}

type formPostField struct{ Name, Value string }

// refuseResponseMode takes a response_mode tonearm does not offer out of
// r's form, so that fosite reads the request in the default (query) mode
// and the refusal, invalid_request, reaches the client's redirect URI once
// it is verified (fosite would refuse an unknown mode before it knows
// where an answer may go, and would call it unsupported_response_mode, an
// error OAuth does not define).
func refuseResponseMode(r *http.Request) error {
	mode := r.Form.Get("response_mode")
	switch fosite.ResponseModeType(mode) {
	case fosite.ResponseModeDefault, fosite.ResponseModeQuery, fosite.ResponseModeFormPost:
		return nil
	}
	for _, form := range []url.Values{r.Form, r.PostForm} {
		form.Del("response_mode")
	}
	if len(mode) > 40 {
		mode = mode[:40] + "…"
	}
	return fosite.ErrInvalidRequest.WithHintf("The response_mode '%s' is not supported: use query or form_post.", mode)
}

// formPostAllowed refuses form_post for a redirect URI a browser cannot
// post to (a native app's custom scheme) or whose origin cannot be named
// in the page's Content-Security-Policy; such a client hears it in the
// query mode.
func formPostAllowed(ar *fosite.AuthorizeRequest) error {
	if ar.GetResponseMode() != fosite.ResponseModeFormPost {
		return nil
	}
	if _, ok := formPostOrigin(ar.GetRedirectURI()); !ok {
		ar.ResponseMode = fosite.ResponseModeQuery
		return fosite.ErrInvalidRequest.WithHint("response_mode form_post needs an http or https redirect_uri.")
	}
	return nil
}

// formPostOrigin is the origin of the redirect URI as a CSP source
// (scheme://host[:port]), and false when it is not http(s) or holds a
// character that would end the source expression (CSP 3 §2.3.1).
func formPostOrigin(u *url.URL) (string, bool) {
	if u == nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", false
	}
	for _, c := range u.Host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return "", false
		}
	}
	return u.Scheme + "://" + u.Host, true
}

// writeFormPost writes the authorization response (params) as the
// form_post page when ar asked for that mode, and reports whether it did.
// The page's form posts to the redirect URI; the CSP sets no form-action,
// because browsers apply it to the redirects that follow the post too and
// a callback that sends the person on to another origin (oauth2-proxy in
// front of several hosts) would be blocked — Keycloak and Hydra set none
// either. Its one script is tonearm's own file (script-src 'self': no inline
// script), it is never cached (§2: the response carries a code) and sends
// no Referer.
func (o *OAuth) writeFormPost(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, params url.Values) bool {
	if ar.GetResponseMode() != fosite.ResponseModeFormPost {
		return false
	}
	if _, ok := formPostOrigin(ar.GetRedirectURI()); !ok {
		return false // refused at admission (formPostAllowed); answered by the query
	}
	redirect := *ar.GetRedirectURI()
	redirect.Fragment = "" // RFC 6749 §3.1.2
	page := formPostPage{Action: redirect.String()}
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range params[name] {
			page.Fields = append(page.Fields, formPostField{Name: name, Value: v})
		}
	}
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Referrer-Policy", "no-referrer")
	o.site.WithCSP(web.ProtocolCSP+"; script-src 'self'").Render(w, r, http.StatusOK, "form_post.html", page)
	return true
}
