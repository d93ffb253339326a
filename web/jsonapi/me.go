package jsonapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// MeAPI is self-service under /api/me: the caller's own account, by
// session cookie or a bearer token granted the account scope.
type MeAPI struct {
	apiBase
	// limiter throttles the current-password checks, with sign-in's counts.
	limiter *web.LoginLimiter
}

// NewMeAPI returns the self-service API.
func NewMeAPI(acc Accounts, issuer string, tokens web.TokenVerifier, limiter *web.LoginLimiter, log *slog.Logger) (*MeAPI, error) {
	if limiter == nil {
		return nil, errors.New("web: MeAPI needs a Limiter")
	}
	base, err := newAPIBase(acc, issuer, tokens, log)
	if err != nil {
		return nil, err
	}
	return &MeAPI{apiBase: base, limiter: limiter}, nil
}

// Endpoints lists the routes.
func (a *MeAPI) Endpoints() []Endpoint {
	return []Endpoint{
		{http.MethodGet, "/api/me"}, {http.MethodPatch, "/api/me"}, {http.MethodDelete, "/api/me"},
		{http.MethodPost, "/api/me/password"}, {http.MethodPost, "/api/me/email/verify"},
	}
}

// Routes mounts the endpoints on mux.
func (a *MeAPI) Routes(mux *http.ServeMux) {
	mux.Handle("/api/me", a.route(map[string]apiHandler{
		http.MethodGet: a.get, http.MethodPatch: a.update, http.MethodDelete: a.delete,
	}))
	mux.Handle("/api/me/password", a.route(map[string]apiHandler{http.MethodPost: a.password}))
	mux.Handle("/api/me/email/verify", a.route(map[string]apiHandler{http.MethodPost: a.resendVerification}))
}

func (a *MeAPI) get(w http.ResponseWriter, r *http.Request) error {
	c, err := a.userCaller(r)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, meJSON(c, c.User))
	return nil
}

// meJSON is the caller's account as /api/me shows it: with a bearer token,
// its id is the sub the token's client was given (a pairwise client's own
// identifier, OpenID Connect Core §8), never the user ID it must not learn.
func meJSON(c web.Caller, u storage.User) UserJSON {
	j := toUserJSON(u)
	j.ID = c.SelfID()
	return j
}

func (a *MeAPI) update(w http.ResponseWriter, r *http.Request) error {
	c, err := a.userCaller(r)
	if err != nil {
		return err
	}
	var body struct {
		profileFields
		// CurrentPassword proves the owner is here for an email change.
		CurrentPassword string `json:"currentPassword"`
	}
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	guard := a.limiter.Guard(r)
	u, err := a.accounts.UpdateOwnProfile(r.Context(), c.User.ID, body.update(),
		accounts.Reauth{AuthTime: c.AuthTime, Password: body.CurrentPassword, Guard: guard})
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, meJSON(c, u))
	return nil
}

type passwordChange struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

// password changes the password and ends every session of the user; the
// browser that asked gets a fresh session.
func (a *MeAPI) password(w http.ResponseWriter, r *http.Request) error {
	c, err := a.userCaller(r)
	if err != nil {
		return err
	}
	var body passwordChange
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.CurrentPassword == "" {
		return web.Errorf(http.StatusBadRequest, "currentPassword cannot be empty")
	}
	guard := a.limiter.Guard(r)
	if err := a.accounts.ChangePassword(r.Context(), c.User.ID, body.CurrentPassword, body.NewPassword, guard); err != nil {
		return err
	}
	if !c.Bearer {
		token, sess, err := a.accounts.NewSession(r.Context(), c.User.ID, accounts.AMRPassword, web.Origin(r))
		if err != nil {
			return err
		}
		a.cookies.Set(w, token, sess.ExpiresAt)
		// Every session ended, and known devices with them; this browser
		// has just proved the password.
		if u, err := a.accounts.GetUser(r.Context(), c.User.ID); err == nil {
			a.limiter.Devices().Set(w, u.ID, u.DeviceEpoch)
		}
	}
	a.log.Info("password changed", "request_id", web.RequestID(r.Context()), "user", c.User.ID)
	web.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

type passwordConfirm struct {
	Password string `json:"password"`
}

func (a *MeAPI) delete(w http.ResponseWriter, r *http.Request) error {
	c, err := a.userCaller(r)
	if err != nil {
		return err
	}
	var body passwordConfirm
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.Password == "" && !c.User.PasskeyOnly {
		return web.Errorf(http.StatusBadRequest, "password cannot be empty")
	}
	proof := accounts.Reauth{AuthTime: c.AuthTime, Password: body.Password, Guard: a.limiter.Guard(r)}
	if err := a.accounts.DeleteAccount(r.Context(), c.User.ID, proof); err != nil {
		return err
	}
	a.cookies.Clear(w)
	a.log.Info("account deleted by its owner", "request_id", web.RequestID(r.Context()), "user", c.User.ID)
	web.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

// resendVerification mails a new verification link to the caller's
// unverified address, a few times per window.
func (a *MeAPI) resendVerification(w http.ResponseWriter, r *http.Request) error {
	c, err := a.userCaller(r)
	if err != nil {
		return err
	}
	// The account page counts on the same counter: one budget per person.
	if err := a.limiter.VerificationMail(r.Context(), r, c.User.ID); err != nil {
		return err
	}
	if err := a.accounts.ResendEmailVerification(r.Context(), c.User.ID); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]string{"message": "A verification link is on its way to your email address."})
	return nil
}
