package jsonapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/web"
)

// Recovery is the password reset and email verification service
// (accounts.Recovery): its flows and limits are shared with the pages.
type Recovery interface {
	StartReset(ctx context.Context, email string, lim accounts.RecoveryLimits) error
	FinishReset(ctx context.Context, token, password string, lim accounts.RecoveryLimits) error
}

// PublicAPI serves what needs no sign-in: public profiles and password
// reset.
type PublicAPI struct {
	apiBase
	recovery Recovery
	limiter  *web.LoginLimiter
}

// NewPublicAPI returns the public API; recovery runs the reset, limiter
// counts the requests and wrong tokens (its known-device cookies let the
// owner's browser past the per-email limit).
func NewPublicAPI(acc Accounts, recovery Recovery, issuer string, limiter *web.LoginLimiter, log *slog.Logger) (*PublicAPI, error) {
	base, err := newAPIBase(acc, issuer, nil, log)
	if err != nil {
		return nil, err
	}
	if recovery == nil || limiter == nil {
		return nil, errors.New("jsonapi: PublicAPI needs the recovery service and a limiter")
	}
	return &PublicAPI{apiBase: base, recovery: recovery, limiter: limiter}, nil
}

// Endpoints lists the routes.
func (a *PublicAPI) Endpoints() []Endpoint {
	return []Endpoint{
		{http.MethodGet, "/api/users/{username}"},
		{http.MethodPost, "/api/password-reset/request"},
		{http.MethodPost, "/api/password-reset/confirm"},
	}
}

// Routes mounts the endpoints on mux.
func (a *PublicAPI) Routes(mux *http.ServeMux) {
	mux.Handle("/api/users/{username}", a.route(map[string]apiHandler{http.MethodGet: a.profile}))
	mux.Handle("/api/password-reset/request", a.route(map[string]apiHandler{http.MethodPost: a.requestReset}))
	mux.Handle("/api/password-reset/confirm", a.route(map[string]apiHandler{http.MethodPost: a.confirmReset}))
}

type publicProfile struct {
	Username string `json:"username"`
	Name     string `json:"name,omitempty"`
	Bio      string `json:"bio,omitempty"`
	Pronouns string `json:"pronouns,omitempty"`
	Website  string `json:"website,omitempty"`
}

func (a *PublicAPI) profile(w http.ResponseWriter, r *http.Request) error {
	u, err := a.accounts.GetUserByUsername(r.Context(), r.PathValue("username"))
	if err != nil {
		return err
	}
	if u.Disabled {
		return accounts.ErrUserNotFound
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	web.WriteJSON(w, http.StatusOK, publicProfile{Username: u.Username, Name: u.Name, Bio: u.Bio, Pronouns: u.Pronouns, Website: u.Website})
	return nil
}

type resetRequest struct {
	Email string `json:"email"`
}

// requestReset answers the same whether or not an account has this email
// (accounts.Recovery.StartReset mails after the answer).
func (a *PublicAPI) requestReset(w http.ResponseWriter, r *http.Request) error {
	var body resetRequest
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	if err := a.recovery.StartReset(r.Context(), body.Email, a.limiter.Attempts(r)); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]string{"message": "If an account has this email, a reset token is on its way."})
	return nil
}

type resetConfirm struct {
	Token       string `json:"token"`
	NewPassword string `json:"newPassword"`
}

func (a *PublicAPI) confirmReset(w http.ResponseWriter, r *http.Request) error {
	var body resetConfirm
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.Token == "" {
		return web.Errorf(http.StatusBadRequest, "token cannot be empty")
	}
	if err := a.recovery.FinishReset(r.Context(), body.Token, body.NewPassword, a.limiter.Attempts(r)); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}
