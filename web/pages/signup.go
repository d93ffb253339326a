package pages

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// signupPage is the data of signup.html.
type signupPage struct {
	Action, CSRFToken, Continue, LoginURL string
	Username, Email                       string
	Errors                                fieldErrors
}

// signup creates an account when registration is open (the rules and
// messages of createUser), signs the browser in and continues the
// authorization request it came from, if any.
func (p *Pages) signup(w http.ResponseWriter, r *http.Request) {
	if p.c.Registration != web.RegistrationOpen {
		p.fail(w, r, http.StatusForbidden, "Registration is closed", "Only the administrators of this site create accounts.")
		return
	}
	cont := p.localContinue(r.FormValue(web.ContinueParam))
	data := signupPage{Action: p.base + SignupPath, Continue: cont, LoginURL: p.base + LoginPath}
	if cont != "" {
		data.LoginURL = cont // the authorization request shows its own login page
	}
	if r.Method == http.MethodGet {
		data.CSRFToken = p.csrf.Token(w, r)
		p.continuing(cont).Render(w, r, http.StatusOK, "signup.html", data)
		return
	}
	if !p.csrf.Valid(r) {
		p.formExpired(w, r)
		return
	}
	data.Username, data.Email = strings.TrimSpace(r.PostFormValue("username")), strings.TrimSpace(r.PostFormValue("email"))
	password := r.PostFormValue("password")
	errs := fieldErrors{}
	if err := accounts.ValidateUsername(data.Username); err != nil {
		_, errs["username"] = p.message(r, err)
	}
	if err := accounts.ValidatePassword(password); err != nil {
		_, errs["password"] = p.message(r, err)
	}
	if data.Email != "" {
		if err := accounts.ValidateEmail(data.Email); err != nil {
			_, errs["email"] = p.message(r, err)
		}
	}
	status := http.StatusBadRequest
	var u storage.User
	if len(errs) == 0 {
		err := p.c.Limiter.Signup(r.Context(), r)
		if err == nil {
			n := accounts.NewUser{Username: data.Username, Password: password, Role: storage.RoleUser}
			if data.Email != "" {
				n.Profile.Email = accounts.Value(data.Email)
			}
			u, err = p.c.Accounts.Create(r.Context(), n)
		}
		switch {
		case err == nil:
		case errors.Is(err, accounts.ErrUsernameTaken):
			status, errs["username"] = p.message(r, err)
		case errors.Is(err, accounts.ErrEmailTaken):
			status, errs["email"] = p.message(r, err)
		default:
			status, errs[""] = p.message(r, err)
		}
	}
	if len(errs) > 0 {
		data.Errors, data.CSRFToken = errs, p.csrf.Token(w, r)
		p.continuing(cont).Render(w, r, status, "signup.html", data)
		return
	}
	p.log.Info("user signed up", "request_id", web.RequestID(r.Context()), "user", u.ID)
	if _, err := p.signIn.Start(w, r, u, accounts.AMRPassword); err != nil {
		p.internal(w, r, err)
		return
	}
	next := cont
	if next == "" {
		next = p.base + AccountPath + "?done=signup"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// continuing is the renderer of a page whose form's answer goes on to
// cont. When cont may end at a relying party (an authorization request: a
// first-party app answers without a consent page in between), the page
// has no form-action: Chromium applies form-action to every redirect that
// follows the form's answer, and would stop at the app's redirect URI,
// leaving the person on this page with nothing shown.
func (p *Pages) continuing(cont string) interface {
	Render(w http.ResponseWriter, r *http.Request, status int, name string, data any)
} {
	if cont != "" && !strings.HasPrefix(cont, p.base+AccountPath) && !strings.HasPrefix(cont, p.base+AdminPath) {
		return p.site.WithCSP(web.ProtocolCSP)
	}
	return p.site
}

// login is the stand-alone sign-in page, for the account centre and the
// console; an authorization request has its own.
func (p *Pages) login(w http.ResponseWriter, r *http.Request) {
	cont := p.localContinue(r.FormValue(web.ContinueParam))
	if cont == "" {
		cont = p.base + AccountPath
	}
	data := web.LoginPage{Action: p.base + LoginPath, ForgotURL: p.base + web.ForgotPath, PasskeyURL: p.signIn.PasskeyURL(),
		Hidden: []web.HiddenField{{Name: web.ContinueParam, Value: cont}}}
	if p.c.Registration == web.RegistrationOpen {
		data.SignupURL = p.base + SignupPath
	}
	if r.Method == http.MethodGet {
		data.CSRFToken = p.csrf.Token(w, r)
		p.continuing(cont).Render(w, r, http.StatusOK, "login.html", data)
		return
	}
	if !p.csrf.Valid(r) {
		p.formExpired(w, r)
		return
	}
	if _, _, msg := p.signIn.Form(w, r); msg != "" {
		data.Username, data.Error, data.CSRFToken = r.PostFormValue("username"), msg, p.csrf.Token(w, r)
		p.continuing(cont).Render(w, r, http.StatusUnauthorized, "login.html", data)
		return
	}
	http.Redirect(w, r, cont, http.StatusSeeOther)
}
