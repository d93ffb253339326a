package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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

// Paths of the password-reset pages (the mailed link opens ResetPath) and
// of the email verification page (the mailed link opens it).
const (
	ForgotPath      = "/password/forgot"
	ResetPath       = "/password/reset"
	VerifyEmailPath = "/email/verify"
)

// PublicAPI serves what needs no sign-in: public profiles and password
// reset, as JSON and as pages.
type PublicAPI struct {
	apiBase
	pages           *Renderer
	csrf            *CSRF
	base            string // the issuer's path prefix
	mailer          accounts.Mailer
	resetsByAddr    *FailureLimiter
	resetsByEmail   *FailureLimiter
	confirmsByAddr  *FailureLimiter
	verifiesByAddr  *FailureLimiter
	workers         chan struct{}
	processingReset func() // test hook: called when a reset request is done
	// devices lets the owner's known browser past the per-email limit.
	devices *DeviceCookies
}

// NewPublicAPI returns the public API; mailer delivers reset tokens,
// csrfKey protects the reset pages, devices are the known-device cookies of
// the sign-in limiter.
func NewPublicAPI(acc Accounts, mailer accounts.Mailer, site *Site, issuer string, csrfKey []byte, devices *DeviceCookies, log *slog.Logger, now func() time.Time) (*PublicAPI, error) {
	base, err := newAPIBase(acc, issuer, nil, log)
	if err != nil {
		return nil, err
	}
	if mailer == nil || site == nil || len(csrfKey) < 32 || devices == nil {
		return nil, errors.New("web: PublicAPI needs a mailer, a site, a 32-byte CSRF key and device cookies")
	}
	// These forms answer on the same page: form-action can be 'self'.
	pages := site.WithCSP(PageCSP)
	iss, _ := url.Parse(issuer)
	return &PublicAPI{
		apiBase: base, mailer: mailer, pages: pages, csrf: NewCSRF(csrfKey, issuer), base: strings.TrimRight(iss.Path, "/"),
		resetsByAddr:   NewFailureLimiter(maxResetRequestsPerAddr, loginWindow, now),
		resetsByEmail:  NewFailureLimiter(maxResetRequestsPerEmail, loginWindow, now),
		confirmsByAddr: NewFailureLimiter(maxResetAttemptsPerAddr, loginWindow, now),
		verifiesByAddr: NewFailureLimiter(maxResetAttemptsPerAddr, loginWindow, now),
		workers:        make(chan struct{}, resetWorkers),
		devices:        devices,
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
	mux.HandleFunc(ForgotPath, a.forgotPage)
	mux.HandleFunc(ResetPath, a.resetPage)
	mux.HandleFunc(VerifyEmailPath, a.verifyEmailPage)
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
	WriteJSON(w, http.StatusOK, publicProfile{Username: u.Username, Name: u.Name, Bio: u.Bio, Pronouns: u.Pronouns, Website: u.Website})
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
	if err := a.startReset(r, body.Email); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, map[string]string{"message": "If an account has this email, a reset token is on its way."})
	return nil
}

// startReset applies the request limits, then looks the email up, makes
// the token and mails it after the caller has answered.
func (a *PublicAPI) startReset(r *http.Request, email string) error {
	addr := ClientAddr(r)
	limits := []struct {
		lim *FailureLimiter
		key string
	}{{a.resetsByAddr, addr}}
	if !a.ownersBrowser(r, email) {
		// Anyone may ask for anyone's reset: per email they may ask only a
		// few times, so an inbox is not flooded; the owner's own browser
		// is not held to it, so a stranger cannot keep them from resetting.
		limits = append(limits, struct {
			lim *FailureLimiter
			key string
		}{a.resetsByEmail, foldEmail(email)})
	}
	for _, l := range limits {
		if blocked, wait := l.lim.Blocked(l.key); blocked {
			return &httpError{status: http.StatusTooManyRequests, message: "Too many reset requests; try again in " + strconv.Itoa(int(wait.Minutes())+1) + " minutes"}
		}
	}
	a.resetsByAddr.Fail(addr)
	a.resetsByEmail.Fail(foldEmail(email))
	select {
	case a.workers <- struct{}{}:
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
		reqID := RequestID(r.Context())
		go func() {
			defer func() { <-a.workers; cancel(); a.resetDone() }()
			if err := a.accounts.RequestPasswordReset(ctx, email, a.mailer); err != nil {
				a.log.Error("password reset request failed", "request_id", reqID, "err", err)
			}
		}()
	default:
		a.log.Warn("password reset request dropped: too many in progress", "request_id", RequestID(r.Context()))
	}
	return nil
}

// ownersBrowser reports whether r comes from a browser that has signed in
// to the account with this email (its known-device cookie). Only a request
// carrying a valid cookie costs a lookup, so timing tells a stranger
// nothing.
func (a *PublicAPI) ownersBrowser(r *http.Request, email string) bool {
	d := a.devices.Read(r)
	if d.userID == "" {
		return false
	}
	u, err := a.accounts.GetUser(r.Context(), d.userID)
	return err == nil && u.DeviceEpoch == d.epoch && u.Email != "" && foldEmail(u.Email) == foldEmail(email)
}

// finishReset applies the attempt limit and sets the new password.
func (a *PublicAPI) finishReset(r *http.Request, token, password string) error {
	addr := ClientAddr(r)
	if blocked, wait := a.confirmsByAddr.Blocked(addr); blocked {
		return &httpError{status: http.StatusTooManyRequests, message: "Too many attempts; try again in " + strconv.Itoa(int(wait.Minutes())+1) + " minutes"}
	}
	if err := a.accounts.ResetPassword(r.Context(), token, password); err != nil {
		a.confirmsByAddr.Fail(addr)
		return err
	}
	a.log.Info("password reset completed", "request_id", RequestID(r.Context()))
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
	if err := a.finishReset(r, body.Token, body.NewPassword); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

type forgotPage struct {
	Action, CSRFToken, Error string
	Sent                     bool
}

type resetPage struct {
	Action, CSRFToken, Token, Error string
	Done                            bool
}

func (a *PublicAPI) page(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	a.pages.Render(w, r, status, name, data)
}

// pageError turns an error of the reset flow into a message for the page.
func pageError(err error) (int, string) {
	var he *httpError
	var ve *accounts.ValidationError
	switch {
	case errors.As(err, &he):
		return he.status, he.message
	case errors.As(err, &ve):
		return http.StatusBadRequest, ve.Message
	case errors.Is(err, accounts.ErrInvalidResetCode):
		return http.StatusBadRequest, "This reset link is invalid or has expired. Ask for a new one."
	}
	return http.StatusInternalServerError, "Something went wrong; try again later."
}

// forgotPage asks for the email and starts a reset (the same flow as the
// JSON request).
func (a *PublicAPI) forgotPage(w http.ResponseWriter, r *http.Request) {
	if !a.pages.Admit(w, r) {
		return
	}
	data := forgotPage{Action: a.base + ForgotPath}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		if !a.csrf.Valid(r) {
			data.CSRFToken = a.csrf.Token(w, r)
			data.Error = "This form expired; try again."
			a.page(w, r, http.StatusForbidden, "forgot.html", data)
			return
		}
		email := strings.TrimSpace(r.PostFormValue("email"))
		err := accounts.ValidateEmail(email)
		if err == nil {
			err = a.startReset(r, email)
		}
		if err != nil {
			status, msg := pageError(err)
			data.CSRFToken, data.Error = a.csrf.Token(w, r), msg
			a.page(w, r, status, "forgot.html", data)
			return
		}
		data.Sent = true
		a.page(w, r, http.StatusOK, "forgot.html", data)
		return
	}
	data.CSRFToken = a.csrf.Token(w, r)
	a.page(w, r, http.StatusOK, "forgot.html", data)
}

// resetPage is where the mailed link lands: it asks for the new password.
func (a *PublicAPI) resetPage(w http.ResponseWriter, r *http.Request) {
	if !a.pages.Admit(w, r) {
		return
	}
	data := resetPage{Action: a.base + ResetPath}
	switch r.Method {
	case http.MethodGet:
		data.Token = r.URL.Query().Get("token")
	case http.MethodPost:
		data.Token = r.PostFormValue("token")
		if !a.csrf.Valid(r) {
			data.CSRFToken = a.csrf.Token(w, r)
			data.Error = "This form expired; try again."
			a.page(w, r, http.StatusForbidden, "reset.html", data)
			return
		}
		if err := a.finishReset(r, data.Token, r.PostFormValue("password")); err != nil {
			status, msg := pageError(err)
			data.CSRFToken, data.Error = a.csrf.Token(w, r), msg
			a.page(w, r, status, "reset.html", data)
			return
		}
		data.Done = true
		a.page(w, r, http.StatusOK, "reset.html", data)
		return
	}
	data.CSRFToken = a.csrf.Token(w, r)
	a.page(w, r, http.StatusOK, "reset.html", data)
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

type verifyEmailPage struct {
	Action, CSRFToken, Token, Error, Email string
	Done                                   bool
}

// verifyEmailPage is where a verification mail's link lands. Opening it
// changes nothing: mail scanners fetch links before people do. The address
// is verified only when its owner presses the button (a CSRF-protected
// POST).
func (a *PublicAPI) verifyEmailPage(w http.ResponseWriter, r *http.Request) {
	if !a.pages.Admit(w, r) {
		return
	}
	data := verifyEmailPage{Action: a.base + VerifyEmailPath}
	status := http.StatusOK
	switch r.Method {
	case http.MethodPost:
		data.Token = r.PostFormValue("token")
		addr := ClientAddr(r)
		if !a.csrf.Valid(r) {
			status, data.Error = http.StatusForbidden, "This form expired. Open the link from the mail again."
			break
		}
		if blocked, _ := a.verifiesByAddr.Blocked(addr); blocked {
			status, data.Error = http.StatusTooManyRequests, "Too many attempts; try again later."
			break
		}
		u, err := a.accounts.VerifyEmail(r.Context(), data.Token)
		switch {
		case errors.Is(err, accounts.ErrInvalidVerification):
			a.verifiesByAddr.Fail(addr)
			status, data.Error = http.StatusBadRequest, "This verification link is invalid, already used or expired. Ask for a new one from your account."
		case err != nil:
			a.log.Error("email verification failed", "request_id", RequestID(r.Context()), "err", err)
			status, data.Error = http.StatusInternalServerError, "Something went wrong; try again later."
		default:
			a.log.Info("email verified", "request_id", RequestID(r.Context()), "user", u.ID)
			data.Done, data.Email = true, u.Email
		}
	default:
		data.Token = r.URL.Query().Get("token")
		if data.Token == "" {
			status, data.Error = http.StatusBadRequest, "This link is incomplete. Open the whole link from the mail."
		}
	}
	data.CSRFToken = a.csrf.Token(w, r)
	a.page(w, r, status, "verify_email.html", data)
}
