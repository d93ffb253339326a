package interaction

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// secondFactorData is the data of second_factor.html.
type secondFactorData struct {
	Action, CSRFToken, Username, AccountURL string
	Error                                   any // a marked message or a locale.Message
	Client                                  *web.ClientView
	// NoFactor: the app asked for two factors and the account has none.
	NoFactor bool
	// Recovery shows the recovery-code field first (a wrong recovery
	// code was typed).
	Recovery bool
	// Passkeys: passkeys are on; a passkey sign-in is two factors.
	Passkeys bool
	// StepUp: a page of this server (the admin console) asked for two
	// factors, not an app.
	StepUp bool
}

// secondFactorPage asks for a code from the authenticator app (or a
// recovery code), or says the account has no second factor.
func (ix *Interactions) secondFactorPage(w http.ResponseWriter, r *http.Request, id string, st State, status int) {
	ix.site.Render(w, r, status, "second_factor.html", secondFactorData{
		Action: ix.url(id), CSRFToken: ix.csrf.Token(w, r), Username: st.Username, Client: st.Client,
		NoFactor: !st.HasTOTP, AccountURL: ix.base + "/account#second-factor", Passkeys: ix.signIn.PasskeyURL() != "",
		StepUp: FactsOf(st).Flow == FlowStepUp,
	})
}

// StepUp sends a person signed in with one factor (user, sess) through
// the second-factor step of a new interaction and back to cont, a page of
// this server: how the console applies TONEARM_ADMIN_MFA=required in
// place. The step is the one an app's acr_values ask for: a code from the
// app, or signing in again with a passkey; either opens a new session
// carrying mfa. Declining goes to the account page's second factor.
func (ix *Interactions) StepUp(w http.ResponseWriter, r *http.Request, user storage.User, sess storage.Session, cont string) {
	st := State{Kind: KindContinue, Continue: ix.localContinue(cont), RequireMFA: true}
	identified(&st, user, sess, nil)
	id, err := ix.create(w, r, st)
	if err != nil {
		ix.internal(w, r, err)
		return
	}
	http.Redirect(w, r, ix.url(id), http.StatusSeeOther)
}

// secondFactorAnswer checks the code. Only then is the browser session
// opened (with amr otp and mfa added): a password alone opens nothing for
// an account with an authenticator app.
func (ix *Interactions) secondFactorAnswer(w http.ResponseWriter, r *http.Request, id string, st State) {
	action := r.PostFormValue("tonearm_action")
	if action == "passkey" {
		// Sign in again, with a passkey (two factors by itself).
		ix.advance(w, r, id, func(s *State) error {
			s.UserID, s.Username, s.SID, s.AMR, s.SecondFactor = "", "", "", nil, false
			return nil
		})
		return
	}
	if !st.HasTOTP {
		if action != "unmet" {
			ix.dispatch(w, r, id, st, http.StatusOK)
			return
		}
		ix.c.Metrics.SecondFactorResult("unmet")
		ix.advance(w, r, id, func(s *State) error {
			s.Unmet, s.SecondFactor = true, true
			return nil
		})
		return
	}
	if action != "second_factor" {
		ix.dispatch(w, r, id, st, http.StatusOK)
		return
	}
	ctx := r.Context()
	user, err := ix.c.Accounts.GetUser(ctx, st.UserID)
	if err != nil {
		ix.internal(w, r, err)
		return
	}
	recovery := strings.TrimSpace(r.PostFormValue("recovery_code"))
	if recovery != "" {
		err = ix.c.Accounts.UseRecoveryCode(ctx, user, recovery, ix.c.Limiter.Guard(r))
	} else {
		err = ix.c.Accounts.CheckTOTP(ctx, user, r.PostFormValue("totp_code"), ix.c.Limiter.Guard(r))
	}
	if errors.Is(err, accounts.ErrNoTOTP) {
		// The app was removed meanwhile: the step no longer applies (the
		// session the password proved opens now, if none is open).
		if st.SID == "" {
			ix.startSession(w, r, id, st, user, strings.Join(st.AMR, " "), nil)
			return
		}
		ix.advance(w, r, id, func(s *State) error {
			s.HasTOTP = false
			return nil
		})
		return
	}
	if err != nil {
		data := secondFactorData{Action: ix.url(id), CSRFToken: ix.csrf.Token(w, r), Username: st.Username, Client: st.Client,
			AccountURL: ix.base + "/account#second-factor", Recovery: recovery != "", StepUp: FactsOf(st).Flow == FlowStepUp}
		status := http.StatusUnauthorized
		switch {
		case errors.Is(err, accounts.ErrWrongCode):
			ix.c.Metrics.SecondFactorResult("failed")
			data.Error = locale.M("That code is wrong, expired or used already. Try the code your app shows now.")
			if recovery != "" {
				data.Error = locale.M("That recovery code is wrong or used already.")
			}
		case fault.Is(err, fault.Throttled):
			ix.c.Metrics.SecondFactorResult("throttled")
			var msg string
			status, msg, _ = web.ErrorAnswer(w, err)
			data.Error = web.Said(ix.site.Lang(r), msg)
		default:
			ix.internal(w, r, err)
			return
		}
		ix.site.Render(w, r, status, "second_factor.html", data)
		return
	}
	ix.c.Metrics.SecondFactorResult("succeeded")
	method := "totp"
	if recovery != "" {
		method = "recovery_code"
	}
	if err := ix.c.Accounts.SecondFactorPassed(ctx, user.ID, method); err != nil {
		ix.internal(w, r, err)
		return
	}
	amr := slices.Clone(st.AMR)
	for _, m := range []string{accounts.AMROTP, accounts.AMRMFA} {
		if !slices.Contains(amr, m) {
			amr = append(amr, m)
		}
	}
	ix.startSession(w, r, id, st, user, strings.Join(amr, " "), func(s *State) { s.SecondFactor = true })
}

// proved goes on after the person proved who they are with amr: an
// account with an authenticator app (and one factor so far) goes to the
// second-factor step with no session opened yet; otherwise the session
// opens now.
func (ix *Interactions) proved(w http.ResponseWriter, r *http.Request, id string, st State, user storage.User, amr string, change func(*State)) {
	if accounts.HasTOTP(user) && !slices.Contains(strings.Fields(amr), accounts.AMRMFA) {
		ix.advance(w, r, id, func(s *State) error {
			s.UserID, s.Username, s.SID, s.AMR, s.HasTOTP, s.SecondFactor = user.ID, user.Username, "", strings.Fields(amr), true, false
			if change != nil {
				change(s)
			}
			return nil
		})
		return
	}
	ix.startSession(w, r, id, st, user, amr, change)
}

// startSession opens the browser session, links an upstream identity
// waiting for this account, and records the sign-in on the interaction.
func (ix *Interactions) startSession(w http.ResponseWriter, r *http.Request, id string, st State, user storage.User, amr string, change func(*State)) {
	if p := st.Pending; p != nil && (p.Reason == PendingEmail || p.Reason == PendingClosed) {
		if err := ix.c.Accounts.Link(r.Context(), user.ID, p.Upstream); err != nil {
			ix.linkFailed(w, r, p.ConnectorID, p.ConnectorName, err)
			return
		}
		ix.c.Metrics.ConnectorResult(p.ConnectorID, "linked")
	}
	sess, err := ix.signIn.Start(w, r, user, amr)
	if err != nil {
		ix.internal(w, r, err)
		return
	}
	ix.identify(w, r, id, st, user, sess, func(s *State) {
		if s.Pending != nil && s.Pending.Reason != PendingUsername {
			s.Pending = nil
		}
		if change != nil {
			change(s)
		}
	})
}
