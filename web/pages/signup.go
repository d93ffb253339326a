package pages

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
	"github.com/tonearm-idp/tonearm/web/interaction"
)

// signupPage is the data of signup.html.
type signupPage struct {
	Action, CSRFToken, Continue, LoginURL string
	// Interaction is the sign-in interaction the page continues (its ID:
	// never the authorization request's parameters).
	Interaction     string
	Username, Email string
	Errors          map[string]any // by field ("": the form): marked messages or locale.Messages
	// Connectors offer "Continue with …" instead of a password; their
	// form posts to ConnectorAction.
	Connectors      []web.ConnectorButton
	ConnectorAction string
}

// signup creates an account when registration is open (the policy of
// accounts.Signups, as for createUser), signs the browser in and continues the sign-in
// interaction it came from, if any (or the page named by continue).
func (p *Pages) signup(w http.ResponseWriter, r *http.Request) {
	if !p.c.Signups.Open() {
		p.fail(w, r, http.StatusForbidden, locale.M("Registration is closed"), locale.M("Only the administrators of this site create accounts."))
		return
	}
	cont := p.localContinue(r.FormValue(web.ContinueParam))
	ixID := r.FormValue(interaction.Param)
	if len(ixID) > 64 {
		ixID = ""
	}
	if ixID != "" {
		r = p.c.Interactions.InLanguage(r, ixID) // an app's ui_locales (issue 35)
	}
	data := signupPage{Action: p.base + SignupPath, Continue: cont, Interaction: ixID, LoginURL: p.base + LoginPath,
		Connectors: p.c.Interactions.ConnectorButtons(r.Context()), ConnectorAction: p.base + LoginPath}
	if cont != "" {
		data.LoginURL += "?" + url.Values{web.ContinueParam: {cont}}.Encode()
	}
	if ixID != "" {
		// The interaction shows its own sign-in page.
		data.LoginURL = p.c.Interactions.URL(ixID)
		data.ConnectorAction, data.Continue = data.LoginURL, ""
	}
	if r.Method == http.MethodGet {
		data.CSRFToken = p.csrf.Token(w, r)
		p.continuing().Render(w, r, http.StatusOK, "signup.html", data)
		return
	}
	if !p.csrf.Valid(r) {
		p.formExpired(w, r)
		return
	}
	data.Username, data.Email = strings.TrimSpace(r.PostFormValue("username")), strings.TrimSpace(r.PostFormValue("email"))
	n := accounts.NewUser{Username: data.Username, Password: r.PostFormValue("password"), Role: storage.RoleUser}
	// The new account keeps the sign-up page's language: its mails (the
	// verification link first) and pages are in it (issue 35).
	n.Profile.Language = accounts.Value(p.site.Lang(r).Tag)
	if data.Email != "" {
		n.Profile.Email = accounts.Value(data.Email)
	}
	// Every field the rules refuse is shown at once, and nothing is
	// counted for them (Create checks them again before counting).
	errs := map[string]any{}
	for _, f := range accounts.Problems(n) {
		field := f.Field
		if field == "profile" {
			field = "email" // the only profile field of this form
		}
		_, errs[field] = p.said(w, r, f.Err)
	}
	status := http.StatusBadRequest
	var u storage.User
	if len(errs) == 0 {
		var err error
		u, err = p.c.Signups.Create(r.Context(), accounts.SignUp{NewUser: n}, accounts.Anonymous, p.c.Limiter.Attempts(r))
		switch {
		case err == nil:
		case errors.Is(err, accounts.ErrUsernameTaken):
			status, errs["username"] = p.said(w, r, err)
		case errors.Is(err, accounts.ErrEmailTaken):
			status, errs["email"] = p.said(w, r, err)
		default:
			status, errs[""] = p.said(w, r, err)
		}
	}
	if len(errs) > 0 {
		data.Errors, data.CSRFToken = errs, p.csrf.Token(w, r)
		p.continuing().Render(w, r, status, "signup.html", data)
		return
	}
	p.log.Info("user signed up", "request_id", web.RequestID(r.Context()), "user", u.ID)
	sess, err := p.signIn.Start(w, r, u, accounts.AMRPassword)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	if ixID != "" {
		p.c.Interactions.Identified(w, r, ixID, u, sess)
		return
	}
	next := cont
	if next == "" {
		next = p.base + AccountPath + "?done=signup"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// continuing is the renderer of the sign-up page, whose forms' answers
// may go on to a relying party (an authorization request: a first-party
// app answers without a consent page in between) or an upstream provider
// (a connector): the page has no form-action, since Chromium applies
// form-action to every redirect that follows the form's answer and would
// stop there, leaving the person on this page with nothing shown.
func (p *Pages) continuing() interface {
	Render(w http.ResponseWriter, r *http.Request, status int, name string, data any)
} {
	return p.site.WithCSP(web.ProtocolCSP)
}
