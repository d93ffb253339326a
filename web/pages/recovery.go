package pages

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/web"
)

// Account recovery pages: forgot password, reset password (where the mailed
// link lands) and email verification (likewise). The flows and their
// limits are accounts.Recovery's, shared with the JSON API; these are
// their forms.

type forgotPage struct {
	Action, CSRFToken string
	Error             any // a marked message or a locale.Message
	Sent              bool
}

type resetPage struct {
	Action, CSRFToken, Token string
	Error                    any // a marked message or a locale.Message
	Done                     bool
}

// pageError turns an error of the reset flow into a message for the page,
// with the headers of its status (Retry-After when a limit was hit).
func pageError(w http.ResponseWriter, l *locale.Lang, err error) (int, any) {
	if errors.Is(err, accounts.ErrInvalidResetCode) {
		return http.StatusBadRequest, locale.M("This reset link is invalid or has expired. Ask for a new one.")
	}
	status, msg, ok := web.ErrorAnswer(w, err)
	if !ok {
		return http.StatusInternalServerError, locale.M("Something went wrong; try again later.")
	}
	return status, web.Said(l, msg)
}

// forgot asks for the email and starts a reset (the same flow as the
// JSON request).
func (p *Pages) forgot(w http.ResponseWriter, r *http.Request) {
	if !p.site.Admit(w, r) {
		return
	}
	data := forgotPage{Action: p.base + web.ForgotPath}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		if !p.csrf.Valid(r) {
			status, data.Error = http.StatusForbidden, locale.M("This form expired; try again.")
		} else {
			email := strings.TrimSpace(r.PostFormValue("email"))
			// The mail is in this page's language unless the account has one saved.
			ctx := locale.WithTag(r.Context(), p.site.Lang(r).Tag)
			err := p.c.Recovery.StartReset(ctx, email, p.c.Limiter.Attempts(r))
			if err != nil {
				status, data.Error = pageError(w, p.site.Lang(r), err)
			}
			data.Sent = err == nil
		}
	}
	data.CSRFToken = p.csrf.Token(w, r)
	p.site.Render(w, r, status, "forgot.html", data)
}

// reset is where the mailed link lands: it asks for the new password.
func (p *Pages) reset(w http.ResponseWriter, r *http.Request) {
	if !p.site.Admit(w, r) {
		return
	}
	data := resetPage{Action: p.base + web.ResetPath, Token: r.URL.Query().Get("token")}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		data.Token = r.PostFormValue("token")
		if !p.csrf.Valid(r) {
			status, data.Error = http.StatusForbidden, locale.M("This form expired; try again.")
		} else if err := p.c.Recovery.FinishReset(r.Context(), data.Token, r.PostFormValue("password"), p.c.Limiter.Attempts(r)); err != nil {
			status, data.Error = pageError(w, p.site.Lang(r), err)
		} else {
			data.Done = true
		}
	}
	data.CSRFToken = p.csrf.Token(w, r)
	p.site.Render(w, r, status, "reset.html", data)
}

type verifyEmailPage struct {
	Action, CSRFToken, Token, Email string
	Error                           any // a marked message or a locale.Message
	Done                            bool
}

// verifyEmail is where a verification mail's link lands. Opening it
// changes nothing: mail scanners fetch links before people do. The address
// is verified only when its owner presses the button (a CSRF-protected
// POST).
func (p *Pages) verifyEmail(w http.ResponseWriter, r *http.Request) {
	if !p.site.Admit(w, r) {
		return
	}
	data := verifyEmailPage{Action: p.base + web.VerifyEmailPath}
	status := http.StatusOK
	switch r.Method {
	case http.MethodPost:
		data.Token = r.PostFormValue("token")
		if !p.csrf.Valid(r) {
			status, data.Error = http.StatusForbidden, locale.M("This form expired. Open the link from the mail again.")
			break
		}
		u, err := p.c.Recovery.VerifyEmail(r.Context(), data.Token, p.c.Limiter.Attempts(r))
		switch {
		case errors.Is(err, accounts.ErrInvalidVerification):
			status, data.Error = http.StatusBadRequest, locale.M("This verification link is invalid, already used or expired. Ask for a new one from your account.")
		case err != nil:
			// A limit (429 with Retry-After), the database gone (503):
			// what every page answers, through the one mapping.
			var ok bool
			var msg string
			status, msg, ok = web.ErrorAnswer(w, err)
			if !ok {
				p.log.Error("email verification failed", "request_id", web.RequestID(r.Context()), "err", err)
				status, data.Error = http.StatusInternalServerError, locale.M("Something went wrong; try again later.")
			} else {
				data.Error = web.Said(p.site.Lang(r), msg)
			}
		default:
			p.log.Info("email verified", "request_id", web.RequestID(r.Context()), "user", u.ID)
			data.Done, data.Email = true, u.Email
		}
	default:
		data.Token = r.URL.Query().Get("token")
		if data.Token == "" {
			status, data.Error = http.StatusBadRequest, locale.M("This link is incomplete. Open the whole link from the mail.")
		}
	}
	data.CSRFToken = p.csrf.Token(w, r)
	p.site.Render(w, r, status, "verify_email.html", data)
}
