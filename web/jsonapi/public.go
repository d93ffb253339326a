package jsonapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// resetWorkers bounds the reset mails being made at once.
const resetWorkers = 8

// PublicAPI serves what needs no sign-in: public profiles and password
// reset, as JSON and as pages.
type PublicAPI struct {
	apiBase
	base            string // the issuer's path prefix
	mailer          accounts.Mailer
	limiter         *web.LoginLimiter
	workers         chan struct{}
	processingReset func() // test hook: called when a reset request is done
}

// NewPublicAPI returns the public API; mailer delivers reset tokens,
// limiter counts the requests and wrong tokens (its known-device cookies
// let the owner's browser past the per-email limit).
func NewPublicAPI(acc Accounts, mailer accounts.Mailer, issuer string, limiter *web.LoginLimiter, log *slog.Logger) (*PublicAPI, error) {
	base, err := newAPIBase(acc, issuer, nil, log)
	if err != nil {
		return nil, err
	}
	if mailer == nil || limiter == nil {
		return nil, errors.New("jsonapi: PublicAPI needs a mailer and a limiter")
	}
	// These forms answer on the same page: form-action can be 'self'.
	iss, _ := url.Parse(issuer)
	return &PublicAPI{
		apiBase: base, mailer: mailer, base: strings.TrimRight(iss.Path, "/"),
		limiter: limiter,
		workers: make(chan struct{}, resetWorkers),
	}, nil
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

// requestReset answers the same whether or not an account has this email:
// the lookup, the token and the mail happen after the answer, off the
// request, so neither the body nor the timing tells.
func (a *PublicAPI) requestReset(w http.ResponseWriter, r *http.Request) error {
	var body resetRequest
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	if err := accounts.ValidateEmail(body.Email); err != nil {
		return err
	}
	if err := a.StartReset(r, body.Email); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]string{"message": "If an account has this email, a reset token is on its way."})
	return nil
}

// StartReset applies the request limits, then looks the email up, makes
// the token and mails it after the caller has answered.
func (a *PublicAPI) StartReset(r *http.Request, email string) error {
	if err := a.limiter.ResetRequest(r.Context(), r, foldEmail(email), a.ownersBrowser(r, email)); err != nil {
		return err
	}
	select {
	case a.workers <- struct{}{}:
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
		reqID := web.RequestID(r.Context())
		go func() {
			defer func() { <-a.workers; cancel(); a.resetDone() }()
			if err := a.accounts.RequestPasswordReset(ctx, email, a.mailer); err != nil {
				a.log.Error("password reset request failed", "request_id", reqID, "err", err)
			}
		}()
	default:
		a.log.Warn("password reset request dropped: too many in progress", "request_id", web.RequestID(r.Context()))
	}
	return nil
}

// ownersBrowser reports whether r comes from a browser that has signed in
// to the account with this email (its known-device cookie). Only a request
// carrying a valid cookie costs a lookup, so timing tells a stranger
// nothing.
func (a *PublicAPI) ownersBrowser(r *http.Request, email string) bool {
	userID, epoch := a.limiter.Devices().Read(r).Owner()
	if userID == "" {
		return false
	}
	u, err := a.accounts.GetUser(r.Context(), userID)
	return err == nil && u.DeviceEpoch == epoch && u.Email != "" && foldEmail(u.Email) == foldEmail(email)
}

// FinishReset applies the attempt limit and sets the new password.
func (a *PublicAPI) FinishReset(r *http.Request, token, password string) error {
	attempt, err := a.limiter.ResetToken(r.Context(), r)
	if err != nil {
		return err
	}
	if err := a.accounts.ResetPassword(r.Context(), token, password); err != nil {
		// Every refusal keeps its count, as before: a wrong token, and a
		// right one with a password the policy refuses.
		return err
	}
	attempt.GiveBack(r.Context())
	a.log.Info("password reset completed", "request_id", web.RequestID(r.Context()))
	return nil
}

func (a *PublicAPI) resetDone() {
	if a.processingReset != nil {
		a.processingReset()
	}
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
	if err := a.FinishReset(r, body.Token, body.NewPassword); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

func foldEmail(e string) string {
	b := []byte(e)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// VerifyEmail spends a verification link's token, a limited number of
// wrong tokens per address.
func (a *PublicAPI) VerifyEmail(r *http.Request, token string) (storage.User, error) {
	attempt, err := a.limiter.VerifyToken(r.Context(), r)
	if err != nil {
		return storage.User{}, err
	}
	u, err := a.accounts.VerifyEmail(r.Context(), token)
	if !errors.Is(err, accounts.ErrInvalidVerification) {
		attempt.GiveBack(r.Context())
	}
	return u, err
}
