package pages

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/totp"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// The second factor on the account page (an authenticator app and its
// recovery codes) and in the console (removing a user's).

// SecondFactors is what the pages need of second factors.
type SecondFactors interface {
	NewTOTPEnrolment(u storage.User, issuer string) (accounts.TOTPEnrolment, error)
	EnrolTOTP(ctx context.Context, userID, token, code string, proof accounts.Reauth) ([]string, error)
	RemoveTOTP(ctx context.Context, userID, password, code string, guard accounts.PasswordGuard) error
	RegenerateRecoveryCodes(ctx context.Context, userID string, proof accounts.Reauth) ([]string, error)
	RecoveryCodesLeft(ctx context.Context, userID string) (int, error)
	AdminRemoveSecondFactor(ctx context.Context, userID string) error
	HasSecondFactor(ctx context.Context, u storage.User) (bool, error)
}

// totpView is the account page's second-factor section: the enrolled
// state, or a fresh key to set up (shown as text and as a QR code).
type totpView struct {
	Enrolled     bool
	RecoveryLeft int
	Secret       string        // base32, in id="totp_secret"
	QR           template.HTML // an SVG tonearm drew
	Token        string        // the sealed key, posted back with the code
	NewCodes     []string      // recovery codes to show once
	Error        string
	// HasPassword: the forms take the current password, for a sign-in
	// older than accounts.RecentAuth; SignInAgain re-authenticates
	// otherwise.
	HasPassword bool
	SignInAgain string
}

func (p *Pages) totpSection(r *http.Request, u storage.User) (totpView, error) {
	again := p.base + LoginPath + "?" + url.Values{web.ContinueParam: {p.base + AccountPath + "#second-factor"}}.Encode()
	hasPassword := u.PasswordHash != "" && !u.PasskeyOnly
	if accounts.HasTOTP(u) {
		left, err := p.c.Accounts.RecoveryCodesLeft(r.Context(), u.ID)
		return totpView{Enrolled: true, RecoveryLeft: left, HasPassword: hasPassword, SignInAgain: again}, err
	}
	e, err := p.c.Accounts.NewTOTPEnrolment(u, p.site.Name())
	if err != nil {
		return totpView{}, err
	}
	svg, err := totp.QRSVG(e.URI)
	if err != nil {
		return totpView{}, err
	}
	// The SVG is markup tonearm generated from numbers alone.
	return totpView{Secret: totp.Base32(e.Secret), QR: template.HTML(svg), Token: e.Token, HasPassword: hasPassword, SignInAgain: again}, nil //nolint:gosec
}

// enrolTOTP confirms a key with a code from the app and shows the
// recovery codes, once.
func (p *Pages) enrolTOTP(w http.ResponseWriter, r *http.Request, c web.Caller) {
	codes, err := p.c.Accounts.EnrolTOTP(r.Context(), c.User.ID, r.PostFormValue("totp_enrolment"), r.PostFormValue("totp_code"), p.reauth(r, c))
	if err != nil {
		status, msg := p.secondFactorMessage(w, r, err)
		p.renderAccountWith(w, r, c, status, profileOf(c.User), nil, func(a *accountPage) { a.TOTP.Error = msg })
		return
	}
	u, err := p.c.Accounts.GetUser(r.Context(), c.User.ID)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	c.User = u
	p.renderAccountWith(w, r, c, http.StatusOK, profileOf(u), nil, func(a *accountPage) {
		a.TOTP.NewCodes = codes
		a.Done = locale.M("Your authenticator app is set up. Save these recovery codes now: each works once if you lose your phone, and they are not shown again.")
	})
}

// regenerateRecoveryCodes replaces the recovery codes and shows the new
// ones, once.
func (p *Pages) regenerateRecoveryCodes(w http.ResponseWriter, r *http.Request, c web.Caller) {
	codes, err := p.c.Accounts.RegenerateRecoveryCodes(r.Context(), c.User.ID, p.reauth(r, c))
	if err != nil {
		status, msg := p.secondFactorMessage(w, r, err)
		p.renderAccountWith(w, r, c, status, profileOf(c.User), nil, func(a *accountPage) { a.TOTP.Error = msg })
		return
	}
	p.renderAccountWith(w, r, c, http.StatusOK, profileOf(c.User), nil, func(a *accountPage) {
		a.TOTP.NewCodes, a.TOTP.RecoveryLeft = codes, len(codes)
		a.Done = locale.M("New recovery codes: the old ones no longer work. Save these now; they are not shown again.")
	})
}

// reauth is the proof a sensitive change of the account page carries:
// when the session's sign-in was, and the current password if typed (the
// rule is accounts' and the same as for the email address).
func (p *Pages) reauth(r *http.Request, c web.Caller) accounts.Reauth {
	return accounts.Reauth{AuthTime: c.AuthTime, Password: r.PostFormValue("current_password"), Guard: p.c.Limiter.Guard(r)}
}

// secondFactorMessage words an error of the second-factor forms.
func (p *Pages) secondFactorMessage(w http.ResponseWriter, r *http.Request, err error) (int, string) {
	switch {
	case errors.Is(err, accounts.ErrReauthRequired):
		return http.StatusForbidden, locale.M("You signed in more than 5 minutes ago: enter your current password, or sign in again, to set up an app or make new recovery codes.")
	case errors.Is(err, accounts.ErrWrongPassword):
		return http.StatusForbidden, locale.M("The current password is wrong.")
	}
	return p.message(w, r, err)
}

// removeTOTP removes the app, proved by the password or a current code.
func (p *Pages) removeTOTP(w http.ResponseWriter, r *http.Request, c web.Caller) {
	err := p.c.Accounts.RemoveTOTP(r.Context(), c.User.ID, r.PostFormValue("password"), strings.TrimSpace(r.PostFormValue("totp_code")), p.c.Limiter.Guard(r))
	if err != nil {
		status, msg := p.message(w, r, err)
		if errors.Is(err, accounts.ErrWrongPassword) || errors.Is(err, accounts.ErrWrongCode) {
			status = http.StatusForbidden
		}
		p.renderAccountWith(w, r, c, status, profileOf(c.User), nil, func(a *accountPage) { a.TOTP.Error = msg })
		return
	}
	p.done(w, r, AccountPath, "totp-removed")
}

// stepUp answers a console request whose session was signed in with one
// factor (TONEARM_ADMIN_MFA=required): an admin who has a second factor
// proves it now, in place, and comes back to the page asked for (a form's
// POST cannot be replayed: it comes back to the console's home instead);
// one with none is sent to set one up.
func (p *Pages) stepUp(w http.ResponseWriter, r *http.Request, c web.Caller) {
	if p.mfaMissing(r, c.User) {
		http.Redirect(w, r, p.base+AccountPath+"#second-factor", http.StatusSeeOther)
		return
	}
	back := r.URL.RequestURI()
	if r.Method != http.MethodGet {
		back = AdminPath
	}
	p.c.Interactions.StepUp(w, r, c.User, c.Session, p.base+back)
}

// mfaMissing reports whether TONEARM_ADMIN_MFA=required asks this admin
// to set up a second factor: no authenticator app and no passkey yet
// (owning one is not enough to use the console: NeedsAdminSecondFactor).
func (p *Pages) mfaMissing(r *http.Request, u storage.User) bool {
	if p.c.AdminMFA != config.AdminMFARequired || !u.IsActiveAdmin() {
		return false
	}
	ok, err := p.c.Accounts.HasSecondFactor(r.Context(), u)
	return err != nil || !ok
}
