package protocol

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/web"
)

// The end-session endpoint (RP-Initiated Logout).

type logoutPage struct {
	Action, CSRFToken, ClientID, Username string
	Hidden                                []web.HiddenField
}

// logout is the end_session_endpoint (OpenID Connect RP-Initiated Logout
// 1.0). It ends the browser session and returns to post_logout_redirect_uri
// only when that URI is registered for the client the request names. Without
// an id_token_hint proving it is the signed-in user's relying party, the
// user confirms first, so a foreign page cannot sign them out.
func (o *OAuth) logout(w http.ResponseWriter, r *http.Request) {
	if !o.pages.Admit(w, r) {
		return
	}
	ctx := r.Context()
	if err := r.ParseForm(); tooLarge(err) {
		web.ShowErrorPage(w, r, o.pages, http.StatusRequestEntityTooLarge, locale.M("Invalid sign-out request"), locale.M("The request is too large."))
		return
	} else if err != nil {
		web.ShowErrorPage(w, r, o.pages, http.StatusBadRequest, locale.M("Invalid sign-out request"), locale.M("The request could not be read."))
		return
	}
	bad := func(msg string) {
		web.ShowErrorPage(w, r, o.pages, http.StatusBadRequest, locale.M("Invalid sign-out request"), msg)
	}
	hint, clientID, target, msg := o.logoutRequest(r)
	if msg != "" {
		bad(msg)
		return
	}
	done := func() {
		if target != nil {
			http.Redirect(w, r, target.String(), http.StatusSeeOther)
			return
		}
		o.page(w, r, http.StatusOK, "logged_out.html", nil)
	}

	caller, err := web.SessionCaller(ctx, r, o.cookies, o.accounts)
	hintUser := o.hintUser(ctx, hint, caller)
	if hint.SID != "" && hintUser != "" && (err == nil || errors.Is(err, web.ErrNoCaller)) {
		// An ID token issued in the session names it: end that session,
		// whether or not this request carries its cookie (a relying
		// party's server calling, as oauth2-proxy's backend logout does).
		if err := o.accounts.EndSessionBySID(ctx, hintUser, hint.SID); err != nil {
			o.log.Error("logout: ending session", "request_id", web.RequestID(ctx), "err", err)
			bad(locale.M("The sign-out could not be completed; try again."))
			return
		}
		if caller.Session.SID == hint.SID {
			o.cookies.Clear(w)
		}
		o.log.Info("signed out by id_token_hint", "request_id", web.RequestID(ctx), "user", hintUser, "client", clientID)
		done()
		return
	}
	if errors.Is(err, web.ErrNoCaller) {
		o.cookies.Clear(w)
		done()
		return
	}
	if err != nil {
		o.log.Error("logout: resolving session", "request_id", web.RequestID(ctx), "err", err)
		bad(locale.M("The sign-out could not be completed; try again."))
		return
	}
	confirmed := hintUser != "" && hintUser == caller.User.ID
	if r.Method == http.MethodPost && r.PostFormValue("tonearm_action") == "logout" {
		if !o.csrf.Valid(r) {
			web.ShowErrorPage(w, r, o.pages, http.StatusForbidden, locale.M("Form expired"), locale.M("This form is no longer valid. Try signing out again."))
			return
		}
		confirmed = true
	}
	if !confirmed {
		o.page(w, r, http.StatusOK, "logout.html", logoutPage{
			Action: strings.TrimSuffix(o.action, provider.AuthorizePath) + provider.LogoutPath, CSRFToken: o.csrf.Token(w, r),
			ClientID: clientID, Username: caller.User.Username, Hidden: hiddenFields(r.Form),
		})
		return
	}
	if err := o.accounts.EndSession(ctx, o.cookies.Value(r)); err != nil {
		o.log.Error("logout: ending session", "request_id", web.RequestID(ctx), "err", err)
		bad(locale.M("The sign-out could not be completed; try again."))
		return
	}
	o.cookies.Clear(w)
	o.log.Info("signed out", "request_id", web.RequestID(ctx), "user", caller.User.ID, "client", clientID)
	done()
}

// hintUser is the user an id_token_hint names ("" when none can be
// told): its sub is the person as its client (aud) sees them, the user ID
// for a public client, a pairwise identifier otherwise (OpenID Connect
// Core §8), so it is compared, as that client sees each, with the
// signed-in user and with the user of the session its sid names. A hint
// whose sub is another person's, or another client's view of this one,
// names nobody.
func (o *OAuth) hintUser(ctx context.Context, hint provider.IDTokenHint, caller web.Caller) string {
	if hint.Subject == "" || len(hint.Audience) == 0 {
		return ""
	}
	match := func(id string) bool { return id != "" && o.p.IsSubjectOf(ctx, hint.Audience[0], hint.Subject, id) }
	for _, id := range []string{hint.Subject, caller.User.ID} {
		if match(id) {
			return id
		}
	}
	if hint.SID != "" {
		if id, err := o.accounts.SessionUserBySID(ctx, hint.SID); err == nil && match(id) {
			return id
		}
	}
	return ""
}

// logoutRequest reads who asks to sign out and where to go after: the
// id_token_hint (verified), the client it names or client_id, and the
// post_logout_redirect_uri, accepted only when registered for that client
// (with the request's state added). msg says in plain words what is wrong.
func (o *OAuth) logoutRequest(r *http.Request) (hint provider.IDTokenHint, clientID string, target *url.URL, msg string) {
	ctx := r.Context()
	if raw := r.Form.Get("id_token_hint"); raw != "" {
		h, err := o.p.VerifyIDTokenHint(ctx, raw)
		if err != nil {
			return hint, "", nil, locale.M("The id_token_hint is not an ID token issued by this server.")
		}
		hint, clientID = h, h.Audience[0]
	}
	if cid := r.Form.Get("client_id"); cid != "" {
		if clientID != "" && !contains(hint.Audience, cid) {
			return hint, "", nil, locale.M("client_id does not match the id_token_hint.")
		}
		clientID = cid
	}
	raw := r.Form.Get("post_logout_redirect_uri")
	if raw == "" {
		return hint, clientID, nil, ""
	}
	if clientID == "" {
		return hint, "", nil, locale.M("post_logout_redirect_uri needs an id_token_hint or a client_id.")
	}
	client, err := o.p.Client(ctx, clientID)
	if err != nil || !contains(client.PostLogoutRedirectURIs, raw) {
		return hint, "", nil, locale.M("The post_logout_redirect_uri is not registered for this client.")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return hint, "", nil, locale.M("The post_logout_redirect_uri is not a valid URI.")
	}
	if state := r.Form.Get("state"); state != "" {
		q := u.Query()
		q.Set("state", state)
		u.RawQuery = q.Encode()
	}
	return hint, clientID, u, ""
}
