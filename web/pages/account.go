package pages

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// accountPage is the data of account.html.
type accountPage struct {
	CSRFToken, Base, Done string
	User                  storage.User
	IsAdmin               bool
	// Profile holds the form's values (the user's, or what was posted).
	Profile   profileForm
	TokenHint string // the end of the linked ListenBrainz token, never all of it
	Sessions  []sessionView
	Apps      []appView
	Errors    fieldErrors
	LogoutURL string
	// Activity is the account's latest events: its owner learns of
	// guesses at the password here (failed sign-ins from anywhere).
	Activity []activityView
	// PasskeysOn shows the passkeys section (and loads its script).
	PasskeysOn bool
	Passkeys   []passkeyRow
	// Methods are the linked sign-in methods (connectors); LinkMore the
	// connectors not linked yet.
	Methods  []methodView
	LinkMore []web.ConnectorButton
	// TOTP is the second-factor section.
	TOTP totpView
	// MFARequired: this admin must set up a second factor before using
	// the console (TONEARM_ADMIN_MFA=required).
	MFARequired bool
}

// RunsScript: the passkeys section loads the passkey script.
func (a accountPage) RunsScript() bool { return a.PasskeysOn }

type activityView struct {
	Time     time.Time
	What, IP string
}

// activityWords word the events a person sees about their account.
var activityWords = map[string]string{
	audit.SignInSucceeded: locale.M("Signed in"), audit.SignInFailed: locale.M("Wrong password entered"), audit.SignOut: locale.M("Signed out"),
	audit.PasswordChanged: locale.M("Password changed"), audit.PasswordReset: locale.M("Password reset by email link"), audit.UserCreated: locale.M("Account created"),
	audit.UserChanged: locale.M("Account changed by an admin"), audit.UserDisabled: locale.M("Account disabled"), audit.ConsentGranted: locale.M("App allowed"),
	audit.ConsentRevoked: locale.M("App access revoked"), audit.EmailVerified: locale.M("Email address verified"), audit.RefreshReuse: locale.M("A stolen app token was detected and revoked"),
	audit.PasskeyAdded: locale.M("Passkey added"), audit.PasskeyRemoved: locale.M("Passkey removed"),
	audit.IdentityLinked: locale.M("Sign-in method linked"), audit.IdentityUnlinked: locale.M("Sign-in method unlinked"),
	audit.UpstreamFailed:        locale.M("Sign-in through another provider failed"),
	audit.PasskeyCloneSuspected: locale.M("A passkey that looks copied was refused"),
	audit.SecondFactorEnrolled:  locale.M("Authenticator app set up"), audit.SecondFactorRemoved: locale.M("Authenticator app removed"),
	audit.SecondFactorFailed: locale.M("Wrong second-factor code entered"), audit.RecoveryCodeUsed: locale.M("Recovery code used"),
}

// signInWords word a signin.succeeded by its detail: how it was made, or
// that only the password step passed (an account with a second factor).
func signInWords(detail []byte) string {
	var d struct{ Method, SecondFactor string }
	_ = json.Unmarshal(detail, &d)
	switch {
	case d.SecondFactor == "pending":
		return locale.M("Right password entered; the second factor was asked next (not a sign-in by itself)")
	case d.Method == "passkey":
		return locale.M("Signed in with a passkey")
	case d.Method == "totp":
		return locale.M("Signed in with the authenticator app")
	case d.Method == "recovery_code":
		return locale.M("Signed in with a recovery code")
	}
	return activityWords[audit.SignInSucceeded]
}

// activityShown is how many events the account page lists.
const activityShown = 15

type profileForm struct{ Name, Email, Bio, Pronouns, Website string }

type sessionView struct {
	SID, UserAgent, IP string
	Created, LastUsed  time.Time
	Current            bool
}

type appView struct {
	Client  web.ClientView
	Scopes  []string
	Granted time.Time
	// LastUsed is when the app last got a token (zero when it holds none).
	LastUsed time.Time
}

// doneMessages word the redirects after a change (only these are shown).
var doneMessages = map[string]string{
	"signup":             locale.M("Welcome! Your account is ready."),
	"profile":            locale.M("Your profile is saved."),
	"verify":             locale.M("A verification link is on its way to your email address."),
	"linked":             locale.M("Your ListenBrainz account is linked."),
	"connector-linked":   locale.M("The sign-in method is linked: you can sign in with it now."),
	"connector-unlinked": locale.M("The sign-in method is unlinked."),
	"totp-removed":       locale.M("The authenticator app is removed, with your recovery codes."),
	"unlinked":           locale.M("Your ListenBrainz account is unlinked."),
	"password":           locale.M("Your password is changed. Every other session is signed out."),
	"session-ended":      locale.M("That session is signed out."),
	"others-ended":       locale.M("Every other session is signed out."),
	"revoked":            locale.M("The app's access is revoked."),
	"apps-signed-out":    locale.M("Every app is signed out: each asks you to sign in again."),
	"passkey-added":      locale.M("Your passkey is added. You can sign in with it now."),
	"passkey-renamed":    locale.M("The passkey is renamed."),
	"passkey-removed":    locale.M("The passkey is removed."),
	"passkey-only":       locale.M("Your password is turned off: sign in with your passkeys. Every other session is signed out."),
	"password-set":       locale.M("Your password is set: you can sign in with it again."),
}

func profileOf(u storage.User) profileForm {
	return profileForm{Name: u.Name, Email: u.Email, Bio: u.Bio, Pronouns: u.Pronouns, Website: u.Website}
}

func (p *Pages) account(w http.ResponseWriter, r *http.Request) {
	c, ok := p.caller(w, r)
	if !ok {
		return
	}
	p.renderAccount(w, r, c, http.StatusOK, profileOf(c.User), nil)
}

// renderAccount shows the account page, with errors next to their fields.
func (p *Pages) renderAccount(w http.ResponseWriter, r *http.Request, c web.Caller, status int, form profileForm, errs fieldErrors) {
	p.renderAccountWith(w, r, c, status, form, errs, nil)
}

// renderAccountWith is renderAccount with a last change to the page's
// data (new recovery codes to show once).
func (p *Pages) renderAccountWith(w http.ResponseWriter, r *http.Request, c web.Caller, status int, form profileForm, errs fieldErrors, extra func(*accountPage)) {
	ctx := r.Context()
	lang := p.lang(r)
	data := accountPage{
		CSRFToken: p.csrf.Token(w, r), Base: p.base, User: c.User, IsAdmin: c.User.IsActiveAdmin(), Profile: form, Errors: errs,
		Done: doneMessages[r.URL.Query().Get("done")], LogoutURL: p.base + "/oauth2/logout",
	}
	if status != http.StatusOK {
		data.Done = ""
	}
	if tok, err := p.c.Accounts.ListenBrainzToken(c.User); err == nil && len(tok) > 4 {
		data.TokenHint = "…" + tok[len(tok)-4:]
	}
	if p.c.Passkeys != nil {
		keys, err := p.c.Accounts.Passkeys(ctx, c.User.ID)
		if err != nil {
			p.internal(w, r, err)
			return
		}
		data.PasskeysOn, data.Passkeys = true, passkeyRows(keys)
	}
	var err error
	if data.Methods, data.LinkMore, err = p.signInMethods(ctx, c.User.ID); err != nil {
		p.internal(w, r, err)
		return
	}
	if data.TOTP, err = p.totpSection(r, c.User); err != nil {
		p.internal(w, r, err)
		return
	}
	data.MFARequired = p.mfaMissing(r, c.User)
	sessions, err := p.c.Accounts.Sessions(ctx, c.User.ID)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	for _, s := range sessions {
		data.Sessions = append(data.Sessions, sessionView{
			SID: s.SID, Created: s.CreatedAt, LastUsed: s.LastUsedAt, UserAgent: describeAgent(lang, s.UserAgent),
			IP: s.IP, Current: s.SID == c.Session.SID,
		})
	}
	consents, err := p.c.Accounts.ConnectedApps(ctx, c.User.ID)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	for _, cs := range consents {
		view := web.ClientView{ID: cs.ClientID}
		if cl, err := p.c.Clients.Get(ctx, cs.ClientID); err == nil {
			view = web.ViewOf(cl)
		}
		app := appView{Client: view, Scopes: p.c.Scopes.DescribeScopes(ctx, cs.Scopes), Granted: cs.GrantedAt, LastUsed: cs.LastUsed}
		for i, s := range app.Scopes {
			app.Scopes[i] = lang.Lenient(s)
		}
		data.Apps = append(data.Apps, app)
	}
	events, err := p.c.Events.ListEvents(ctx, storage.EventFilter{User: c.User.ID, Limit: activityShown})
	if err != nil {
		p.internal(w, r, err)
		return
	}
	for _, e := range events {
		what := activityWords[e.Type]
		if what == "" {
			continue
		}
		if e.Type == audit.SignInSucceeded {
			what = signInWords(e.Detail)
		}
		what = lang.S(what)
		if e.Client != "" && (e.Type == audit.ConsentGranted || e.Type == audit.ConsentRevoked) {
			what = lang.S("{{.Event}}: {{.App}}", "Event", what, "App", e.Client)
		}
		data.Activity = append(data.Activity, activityView{Time: e.Time, What: what, IP: e.IP})
	}
	if extra != nil {
		extra(&data)
	}
	// The notices and errors in the page's language (see say).
	data.Done, data.Errors, data.TOTP.Error = say(lang, data.Done), sayAll(lang, data.Errors), say(lang, data.TOTP.Error)
	p.site.Render(w, r, status, "account.html", data)
}

// describeAgent shortens a User-Agent to the browser and system a person
// recognises.
func describeAgent(l *locale.Lang, ua string) string {
	if ua == "" {
		return l.S("Unknown browser")
	}
	browser := ""
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"}, {"curl/", "curl"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	system := ""
	for _, s := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, s.token) {
			system = s.name
			break
		}
	}
	switch {
	case browser != "" && system != "":
		return l.S("{{.Browser}} on {{.System}}", "Browser", browser, "System", system)
	case browser != "":
		return browser
	case system != "":
		return system
	}
	if len(ua) > 60 {
		return ua[:60] + "…"
	}
	return ua
}

// accountActions are the account page's forms, by path under /account/.
func (p *Pages) accountActions() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"profile":             p.signedIn(p.saveProfile),
		"email/verify":        p.signedIn(p.resendVerification),
		"listenbrainz":        p.signedIn(p.linkListenBrainz),
		"listenbrainz/unlink": p.signedIn(p.unlinkListenBrainz),
		"password":            p.signedIn(p.changePassword),
		"sessions/end":        p.signedIn(p.endSession),
		"sessions/end-others": p.signedIn(p.endOtherSessions),
		"apps/revoke":         p.signedIn(p.revokeApp),
		"apps/sign-out":       p.signedIn(p.signOutOfEveryApp),
		"connectors/link":     p.signedIn(p.linkConnector),
		"totp/enrol":          p.signedIn(p.enrolTOTP),
		"totp/remove":         p.signedIn(p.removeTOTP),
		"totp/recovery-codes": p.signedIn(p.regenerateRecoveryCodes),
		"connectors/unlink":   p.signedIn(p.unlinkConnector),
		"delete":              p.signedIn(p.deleteAccount),
	}
}

func (p *Pages) signedIn(h func(w http.ResponseWriter, r *http.Request, c web.Caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c, ok := p.caller(w, r); ok {
			h(w, r, c)
		}
	}
}

// optional turns a text field into a partial update: unchanged is unset,
// emptied is cleared.
func optional(posted, current string) accounts.Optional {
	switch {
	case posted == current:
		return accounts.Optional{}
	case posted == "":
		return accounts.Optional{Set: true, Null: true}
	}
	return accounts.Value(posted)
}

// profileField names the field a profile validation message is about.
func profileField(msg string) string {
	first := strings.ToLower(strings.SplitN(msg, " ", 2)[0])
	switch first {
	case "name", "email", "bio", "pronouns", "website":
		return first
	case "invalid":
		return "email"
	}
	return ""
}

func (p *Pages) saveProfile(w http.ResponseWriter, r *http.Request, c web.Caller) {
	form := profileForm{
		Name: strings.TrimSpace(r.PostFormValue("name")), Email: strings.TrimSpace(r.PostFormValue("email")),
		Bio: strings.TrimSpace(r.PostFormValue("bio")), Pronouns: strings.TrimSpace(r.PostFormValue("pronouns")),
		Website: strings.TrimSpace(r.PostFormValue("website")),
	}
	cur := c.User
	update := accounts.ProfileUpdate{
		Name: optional(form.Name, cur.Name), Email: optional(form.Email, cur.Email), Bio: optional(form.Bio, cur.Bio),
		Pronouns: optional(form.Pronouns, cur.Pronouns), Website: optional(form.Website, cur.Website),
	}
	_, err := p.c.Accounts.UpdateOwnProfile(r.Context(), cur.ID, update,
		accounts.Reauth{AuthTime: c.AuthTime, Password: r.PostFormValue("current_password"), Guard: p.c.Limiter.Guard(r)})
	if err != nil {
		status, msg := p.message(w, r, err)
		field := ""
		switch {
		case fault.Is(err, fault.Invalid):
			field = profileField(msg)
		case errors.Is(err, accounts.ErrEmailTaken):
			field = "email"
		case errors.Is(err, accounts.ErrReauthRequired), errors.Is(err, accounts.ErrWrongPassword):
			field, msg = "current_password", locale.M("To change your email address, enter your current password.")
			if errors.Is(err, accounts.ErrWrongPassword) {
				msg = locale.M("The current password is wrong.")
			}
		}
		p.renderAccount(w, r, c, status, form, fieldErrors{field: msg})
		return
	}
	p.done(w, r, AccountPath, "profile")
}

func (p *Pages) resendVerification(w http.ResponseWriter, r *http.Request, c web.Caller) {
	if err := p.c.Limiter.VerificationMail(r.Context(), r, c.User.ID); err != nil {
		status, msg := p.message(w, r, err)
		p.renderAccount(w, r, c, status, profileOf(c.User), fieldErrors{"email": msg})
		return
	}
	if err := p.c.Accounts.ResendEmailVerification(r.Context(), c.User.ID); err != nil {
		status, msg := p.message(w, r, err)
		p.renderAccount(w, r, c, status, profileOf(c.User), fieldErrors{"email": msg})
		return
	}
	p.done(w, r, AccountPath, "verify")
}

func (p *Pages) linkListenBrainz(w http.ResponseWriter, r *http.Request, c web.Caller) {
	token := strings.TrimSpace(r.PostFormValue("listenbrainz_token"))
	if token == "" {
		p.renderAccount(w, r, c, http.StatusBadRequest, profileOf(c.User), fieldErrors{"listenbrainz_token": locale.M("Paste your ListenBrainz user token.")})
		return
	}
	if _, err := p.c.Accounts.AssociateToken(r.Context(), c.User.ID, token); err != nil {
		status, msg := p.message(w, r, err)
		msg = strings.ReplaceAll(msg, "scrobbleToken", "The token")
		p.renderAccount(w, r, c, status, profileOf(c.User), fieldErrors{"listenbrainz_token": msg})
		return
	}
	p.done(w, r, AccountPath, "linked")
}

func (p *Pages) unlinkListenBrainz(w http.ResponseWriter, r *http.Request, c web.Caller) {
	if err := p.c.Accounts.UnlinkListenBrainz(r.Context(), c.User.ID); err != nil {
		p.internal(w, r, err)
		return
	}
	p.done(w, r, AccountPath, "unlinked")
}

// changePassword changes the password; every session ends (the relying
// parties are told) and this browser gets a new one.
func (p *Pages) changePassword(w http.ResponseWriter, r *http.Request, c web.Caller) {
	current, next := r.PostFormValue("password_current"), r.PostFormValue("new_password")
	errs := fieldErrors{}
	if current == "" {
		errs["password_current"] = locale.M("Enter your current password.")
	}
	if err := accounts.ValidatePassword(next); err != nil {
		_, errs["new_password"] = p.message(w, r, err)
	}
	status := http.StatusBadRequest
	if len(errs) == 0 {
		err := p.c.Accounts.ChangePassword(r.Context(), c.User.ID, current, next, p.c.Limiter.Guard(r))
		if err != nil {
			// 403 for a wrong password, 429 (with Retry-After) throttled.
			status, errs["password_current"] = p.message(w, r, err)
		}
	}
	if len(errs) > 0 {
		p.renderAccount(w, r, c, status, profileOf(c.User), errs)
		return
	}
	u, err := p.c.Accounts.GetUser(r.Context(), c.User.ID)
	if err == nil {
		_, err = p.signIn.Start(w, r, u, accounts.AMRPassword)
	}
	if err != nil {
		p.internal(w, r, err)
		return
	}
	p.done(w, r, AccountPath, "password")
}

func (p *Pages) endSession(w http.ResponseWriter, r *http.Request, c web.Caller) {
	sid := r.PostFormValue("sid")
	if sid == "" || sid == c.Session.SID {
		p.renderAccount(w, r, c, http.StatusBadRequest, profileOf(c.User), fieldErrors{"sessions": locale.M("Choose another session; sign out of this one with “Sign out”.")})
		return
	}
	if err := p.c.Accounts.EndSessionBySID(r.Context(), c.User.ID, sid); err != nil {
		p.internal(w, r, err)
		return
	}
	p.done(w, r, AccountPath, "session-ended")
}

func (p *Pages) endOtherSessions(w http.ResponseWriter, r *http.Request, c web.Caller) {
	if _, err := p.c.Accounts.EndOtherSessions(r.Context(), c.User.ID, c.Session.SID); err != nil {
		p.internal(w, r, err)
		return
	}
	p.done(w, r, AccountPath, "others-ended")
}

// revokeApp withdraws a connected app's consent and deletes its tokens.
func (p *Pages) revokeApp(w http.ResponseWriter, r *http.Request, c web.Caller) {
	err := p.c.Accounts.RevokeApp(r.Context(), c.User.ID, r.PostFormValue("client_id"))
	if errors.Is(err, storage.ErrNotFound) {
		p.renderAccount(w, r, c, http.StatusNotFound, profileOf(c.User), fieldErrors{"apps": locale.M("That app is not connected to your account.")})
		return
	}
	if err != nil {
		p.internal(w, r, err)
		return
	}
	p.done(w, r, AccountPath, "revoked")
}

// signOutOfEveryApp ends every app's tokens, the offline_access refresh
// tokens a sign-out keeps included.
func (p *Pages) signOutOfEveryApp(w http.ResponseWriter, r *http.Request, c web.Caller) {
	if err := p.c.Accounts.SignOutOfEveryApp(r.Context(), c.User.ID); err != nil {
		p.internal(w, r, err)
		return
	}
	p.done(w, r, AccountPath, "apps-signed-out")
}

func (p *Pages) deleteAccount(w http.ResponseWriter, r *http.Request, c web.Caller) {
	password := r.PostFormValue("delete_password")
	if (password == "" && !c.User.PasskeyOnly) || r.PostFormValue("confirm") != "yes" {
		msg := locale.M("Enter your password and tick the box to delete your account.")
		if c.User.PasskeyOnly {
			msg = locale.M("Tick the box to delete your account.")
		}
		p.renderAccount(w, r, c, http.StatusBadRequest, profileOf(c.User), fieldErrors{"delete": msg})
		return
	}
	proof := accounts.Reauth{AuthTime: c.Session.AuthTime, Password: password, Guard: p.c.Limiter.Guard(r)}
	if err := p.c.Accounts.DeleteAccount(r.Context(), c.User.ID, proof); err != nil {
		status, msg := p.message(w, r, err)
		p.renderAccount(w, r, c, status, profileOf(c.User), fieldErrors{"delete": msg})
		return
	}
	p.cookies.Clear(w)
	p.log.Info("account deleted by its owner", "request_id", web.RequestID(r.Context()), "user", c.User.ID)
	p.site.Render(w, r, http.StatusOK, "notice.html", web.ErrorPage{Title: locale.M("Account deleted"), Message: locale.M("Your account and everything tied to it are gone.")})
}
