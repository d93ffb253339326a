package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/tonearm-idp/tonearm/provider/accounts"
)

// Password-reset request limits: per address and per email, per window.
const (
	maxResetRequestsPerAddr  = 10
	maxResetRequestsPerEmail = 3
	maxResetAttemptsPerAddr  = 20
	resetWorkers             = 8
)

// PublicAPI serves what needs no sign-in: public profiles and password
// reset.
type PublicAPI struct {
	apiBase
	mailer          accounts.Mailer
	resetsByAddr    *FailureLimiter
	resetsByEmail   *FailureLimiter
	confirmsByAddr  *FailureLimiter
	workers         chan struct{}
	processingReset func() // test hook: called when a reset request is done
}

// NewPublicAPI returns the public API; mailer delivers reset tokens.
func NewPublicAPI(acc Accounts, mailer accounts.Mailer, issuer string, log *slog.Logger, now func() time.Time) (*PublicAPI, error) {
	base, err := newAPIBase(acc, issuer, nil, log)
	if err != nil {
		return nil, err
	}
	if mailer == nil {
		return nil, errors.New("web: PublicAPI needs a mailer")
	}
	return &PublicAPI{
		apiBase: base, mailer: mailer,
		resetsByAddr:   NewFailureLimiter(maxResetRequestsPerAddr, loginWindow, now),
		resetsByEmail:  NewFailureLimiter(maxResetRequestsPerEmail, loginWindow, now),
		confirmsByAddr: NewFailureLimiter(maxResetAttemptsPerAddr, loginWindow, now),
		workers:        make(chan struct{}, resetWorkers),
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
	writeJSON(w, http.StatusOK, publicProfile{Username: u.Username, Name: u.Name, Bio: u.Bio, Pronouns: u.Pronouns, Website: u.Website})
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
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if err := accounts.ValidateEmail(body.Email); err != nil {
		return err
	}
	addr := clientAddr(r)
	for _, l := range []struct {
		lim *FailureLimiter
		key string
	}{{a.resetsByAddr, addr}, {a.resetsByEmail, foldEmail(body.Email)}} {
		if blocked, wait := l.lim.Blocked(l.key); blocked {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			return errorf(http.StatusTooManyRequests, "Too many reset requests; try again later")
		}
	}
	a.resetsByAddr.Fail(addr)
	a.resetsByEmail.Fail(foldEmail(body.Email))
	select {
	case a.workers <- struct{}{}:
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
		reqID := RequestID(r.Context())
		go func() {
			defer func() { <-a.workers; cancel(); a.resetDone() }()
			if err := a.accounts.RequestPasswordReset(ctx, body.Email, a.mailer); err != nil {
				a.log.Error("password reset request failed", "request_id", reqID, "err", err)
			}
		}()
	default:
		a.log.Warn("password reset request dropped: too many in progress", "request_id", RequestID(r.Context()))
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "If an account has this email, a reset token is on its way."})
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
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.Token == "" {
		return errorf(http.StatusBadRequest, "token cannot be empty")
	}
	addr := clientAddr(r)
	if blocked, wait := a.confirmsByAddr.Blocked(addr); blocked {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return errorf(http.StatusTooManyRequests, "Too many attempts; try again later")
	}
	if err := a.accounts.ResetPassword(r.Context(), body.Token, body.NewPassword); err != nil {
		a.confirmsByAddr.Fail(addr)
		return err
	}
	a.log.Info("password reset completed", "request_id", RequestID(r.Context()))
	writeJSON(w, http.StatusOK, struct{}{})
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
