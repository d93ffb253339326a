package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage"
)

// SignInAccounts is what signing in with the form needs.
type SignInAccounts interface {
	Authenticate(ctx context.Context, username, password string, guard accounts.PasswordGuard) (storage.User, error)
	NewSession(ctx context.Context, userID string, from accounts.Origin) (string, storage.Session, error)
	EndSession(ctx context.Context, token string) error
}

// SignIn checks a posted sign-in form (username, password) and opens the
// browser session: the login page of an authorization request and the
// stand-alone one share it.
type SignIn struct {
	accounts SignInAccounts
	limiter  *LoginLimiter
	cookies  Cookies
	metrics  *Metrics
	log      *slog.Logger
}

// NewSignIn returns the form check; metrics may be nil.
func NewSignIn(acc SignInAccounts, limiter *LoginLimiter, issuer string, metrics *Metrics, log *slog.Logger) (*SignIn, error) {
	if acc == nil || limiter == nil || log == nil {
		return nil, errors.New("web: SignIn needs accounts, a limiter and a logger")
	}
	return &SignIn{accounts: acc, limiter: limiter, cookies: NewCookies(issuer), metrics: metrics, log: log}, nil
}

// Form checks the form under the sign-in limiter. On success it replaces
// the browser's session cookie (ending the session it held) and marks the
// browser as known to the account. On failure it returns a message for
// the page, which never says which of the two fields was wrong.
func (s *SignIn) Form(w http.ResponseWriter, r *http.Request) (storage.User, storage.Session, string) {
	ctx := r.Context()
	username, password := r.PostFormValue("username"), r.PostFormValue("password")
	if username == "" || password == "" {
		return storage.User{}, storage.Session{}, "Enter your username and password."
	}
	addr := ClientAddr(r)
	if len(username) > 4*accounts.MaxUsernameLen || len(password) > 4*accounts.MaxPasswordLen {
		return storage.User{}, storage.Session{}, "Invalid username or password."
	}
	user, err := s.accounts.Authenticate(ctx, username, password, s.limiter.Guard(r))
	s.metrics.login(loginResult(err))
	var throttled *accounts.ThrottledError
	switch {
	case errors.Is(err, accounts.ErrInvalidCredentials):
		s.log.Info("sign-in failed", "request_id", RequestID(ctx), "remote", addr)
		return storage.User{}, storage.Session{}, "Invalid username or password."
	case errors.As(err, &throttled):
		return storage.User{}, storage.Session{}, throttledMessage(throttled)
	case errors.Is(err, accounts.ErrBusy):
		return storage.User{}, storage.Session{}, "Too many sign-ins in progress. Try again in a moment."
	case errors.Is(err, accounts.ErrDisabled):
		return storage.User{}, storage.Session{}, "This account is disabled. Ask the site's administrators if you think this is a mistake."
	case err != nil:
		s.log.Error("sign-in error", "request_id", RequestID(ctx), "err", err)
		return storage.User{}, storage.Session{}, "Sign-in is unavailable right now. Try again later."
	}
	sess, err := s.Start(w, r, user)
	if err != nil {
		return storage.User{}, storage.Session{}, "Sign-in is unavailable right now. Try again later."
	}
	return user, sess, ""
}

// Start opens a session for a user who has just proved who they are (a
// sign-in, a sign-up) and sets the browser's cookies.
func (s *SignIn) Start(w http.ResponseWriter, r *http.Request, user storage.User) (storage.Session, error) {
	ctx := r.Context()
	token, sess, err := s.accounts.NewSession(ctx, user.ID, Origin(r))
	if err != nil {
		s.log.Error("opening session", "request_id", RequestID(ctx), "err", err)
		return storage.Session{}, err
	}
	if old := s.cookies.Value(r); old != "" {
		_ = s.accounts.EndSession(ctx, old)
	}
	s.cookies.Set(w, token, sess.ExpiresAt)
	s.limiter.Devices().Set(w, user.ID, user.DeviceEpoch)
	s.log.Info("session started", "request_id", RequestID(ctx), "user", user.ID)
	return sess, nil
}

// HiddenField is a form field a page carries along unseen.
type HiddenField struct{ Name, Value string }

// LoginPage is the data of login.html: the login step of an
// authorization request, or the stand-alone sign-in page.
type LoginPage struct {
	Action, CSRFToken, Username, Error, ForgotURL, SignupURL string
	Client                                                   *ClientView
	Hidden                                                   []HiddenField
}

// SignupPath is the sign-up page; ContinueParam carries the authorization
// request (or page) to continue after sign-up or sign-in.
const (
	SignupPath    = "/signup"
	ContinueParam = "continue"
)

// Paths of the password-reset pages (the mailed link opens ResetPath) and
// of the email verification page (the mailed link opens it).
const (
	ForgotPath      = "/password/forgot"
	ResetPath       = "/password/reset"
	VerifyEmailPath = "/email/verify"
)

// Registration modes (TONEARM_REGISTRATION).
const (
	RegistrationOpen  = "open"
	RegistrationAdmin = "admin"
)
