package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/passkeys"
	"github.com/tonearm-idp/tonearm/storage"
)

// SignInAccounts is what signing in with the form needs.
type SignInAccounts interface {
	Authenticate(ctx context.Context, username, password string, guard accounts.PasswordGuard) (storage.User, error)
	NewSession(ctx context.Context, userID, amr string, from accounts.Origin) (string, storage.Session, error)
	EndSession(ctx context.Context, token string) error
}

// PasskeyLogin is the passkey sign-in ceremony (provider/passkeys).
type PasskeyLogin interface {
	BeginLogin(ctx context.Context) ([]byte, error)
	FinishLogin(ctx context.Context, response []byte) (storage.User, error)
}

// PasskeyOptionsPath answers a sign-in page's script with the options of
// a passkey sign-in; PasskeyAssertionField carries the browser's answer
// back in the sign-in form.
const (
	PasskeyOptionsPath    = "/passkeys/sign-in"
	PasskeyAssertionField = "passkey_assertion"
)

// SignIn checks a posted sign-in form (username and password, or a
// passkey's answer) and opens the browser session: the login page of an
// authorization request and the stand-alone one share it.
type SignIn struct {
	accounts SignInAccounts
	passkeys PasskeyLogin // nil: passkeys are off
	limiter  *LoginLimiter
	cookies  Cookies
	metrics  *Metrics
	base     string
	log      *slog.Logger
}

// NewSignIn returns the form check; metrics and passkeys may be nil.
func NewSignIn(acc SignInAccounts, passkeys PasskeyLogin, limiter *LoginLimiter, issuer string, metrics *Metrics, log *slog.Logger) (*SignIn, error) {
	if acc == nil || limiter == nil || log == nil {
		return nil, errors.New("web: SignIn needs accounts, a limiter and a logger")
	}
	return &SignIn{accounts: acc, passkeys: passkeys, limiter: limiter, cookies: NewCookies(issuer), metrics: metrics, base: IssuerPath(issuer), log: log}, nil
}

// PasskeyURL is where a sign-in page's script asks for passkey options
// ("" when passkeys are off: the page offers none).
func (s *SignIn) PasskeyURL() string {
	if s.passkeys == nil {
		return ""
	}
	return s.base + PasskeyOptionsPath
}

// PasskeyOptions answers the sign-in page's script with the options of a
// new passkey ceremony, a limited number per address.
func (s *SignIn) PasskeyOptions(w http.ResponseWriter, r *http.Request) {
	if s.passkeys == nil {
		WriteError(w, http.StatusNotFound, "passkeys are not enabled")
		return
	}
	if err := s.limiter.PasskeyCeremony(r.Context(), r); err != nil {
		WriteAPIError(w, r, s.log, err)
		return
	}
	opts, err := s.passkeys.BeginLogin(r.Context())
	if err != nil {
		WriteAPIError(w, r, s.log, err)
		return
	}
	WriteRawJSON(w, opts)
}

// Form checks the form under the sign-in limiter. On success it replaces
// the browser's session cookie (ending the session it held) and marks the
// browser as known to the account. On failure it returns a message for
// the page, which never says which of the two fields was wrong.
func (s *SignIn) Form(w http.ResponseWriter, r *http.Request) (storage.User, storage.Session, *Refusal) {
	user, amr, no := s.Check(w, r)
	if no != nil {
		return storage.User{}, storage.Session{}, no
	}
	sess, err := s.Start(w, r, user, amr)
	if err != nil {
		return storage.User{}, storage.Session{}, refused(locale.M("Sign-in is unavailable right now. Try again later."))
	}
	return user, sess, nil
}

// Refusal is why a sign-in form was refused: the message for the page and
// the status to show it with (401, or 429 when a limit asks to wait, with
// Retry-After already set).
type Refusal struct {
	Status  int
	Message string // a marked message (locale.M), or "" for said
	said    string // an error's message, worded at run time
}

// Words is the refusal's message for a page in l (LoginPage.Error).
func (no *Refusal) Words(l *locale.Lang) any {
	if no.said != "" {
		return Said(l, no.said)
	}
	return no.Message
}

func refused(msg string) *Refusal { return &Refusal{Status: http.StatusUnauthorized, Message: msg} }

// Check checks the form (password or passkey) under the sign-in limiter
// without opening a session (an account with a second factor proves it
// first). It returns the user and how they proved who they are (amr,
// space-separated), or why not.
func (s *SignIn) Check(w http.ResponseWriter, r *http.Request) (storage.User, string, *Refusal) {
	ctx := r.Context()
	if answer := r.PostFormValue(PasskeyAssertionField); answer != "" && s.passkeys != nil {
		user, amr, msg := s.passkeyForm(r, answer)
		if msg != "" {
			return storage.User{}, "", refused(msg)
		}
		return user, amr, nil
	}
	username, password := r.PostFormValue("username"), r.PostFormValue("password")
	if username == "" || password == "" {
		return storage.User{}, "", refused(locale.M("Enter your username and password."))
	}
	addr := ClientAddr(r)
	if len(username) > 4*accounts.MaxUsernameLen || len(password) > 4*accounts.MaxPasswordLen {
		return storage.User{}, "", refused(locale.M("Invalid username or password."))
	}
	user, err := s.accounts.Authenticate(ctx, username, password, s.limiter.Guard(r))
	s.metrics.login(loginResult(err))
	switch {
	case errors.Is(err, accounts.ErrInvalidCredentials):
		s.log.Info("sign-in failed", "request_id", RequestID(ctx), "remote", addr)
		return storage.User{}, "", refused(locale.M("Invalid username or password."))
	case fault.Is(err, fault.Throttled):
		// 429 with Retry-After, as every throttled answer (docs/security.md).
		status, msg, _ := ErrorAnswer(w, err)
		return storage.User{}, "", &Refusal{Status: status, said: msg}
	case errors.Is(err, accounts.ErrBusy):
		// 503 with Retry-After, as the User API answers: the server is
		// busy, the password was not judged.
		status, _, _ := ErrorAnswer(w, err)
		return storage.User{}, "", &Refusal{Status: status, Message: locale.M("Too many sign-ins in progress. Try again in a moment.")}
	case errors.Is(err, accounts.ErrDisabled):
		return storage.User{}, "", refused(locale.M("This account is disabled. Ask the site's administrators if you think this is a mistake."))
	case err != nil:
		s.log.Error("sign-in error", "request_id", RequestID(ctx), "err", err)
		return storage.User{}, "", refused(locale.M("Sign-in is unavailable right now. Try again later."))
	}
	return user, accounts.AMRPassword, nil
}

// passkeyForm checks a passkey's answer. A passkey sign-in verifies the
// user (user verification is required): two factors, amr "hwk user mfa".
func (s *SignIn) passkeyForm(r *http.Request, answer string) (storage.User, string, string) {
	ctx := r.Context()
	user, err := s.passkeys.FinishLogin(ctx, []byte(answer))
	switch {
	case errors.Is(err, passkeys.ErrCloned):
		s.metrics.login("failed")
		return storage.User{}, "", locale.M("This passkey was refused: it may have been copied. Sign in another way and check the passkeys on your account page.")
	case errors.Is(err, passkeys.ErrRejected):
		s.metrics.login("failed")
		s.log.Info("passkey sign-in failed", "request_id", RequestID(ctx), "remote", ClientAddr(r))
		return storage.User{}, "", locale.M("That passkey could not be used. Try again, or sign in another way.")
	case err != nil:
		s.log.Error("passkey sign-in error", "request_id", RequestID(ctx), "err", err)
		return storage.User{}, "", locale.M("Sign-in is unavailable right now. Try again later.")
	case user.Disabled:
		s.metrics.login("disabled")
		return storage.User{}, "", locale.M("This account is disabled. Ask the site's administrators if you think this is a mistake.")
	}
	s.metrics.login("succeeded")
	return user, accounts.AMRPasskey + " " + accounts.AMRUser + " " + accounts.AMRMFA, ""
}

// Start opens a session for a user who has just proved who they are (a
// sign-in, a sign-up), by amr, and sets the browser's cookies.
func (s *SignIn) Start(w http.ResponseWriter, r *http.Request, user storage.User, amr string) (storage.Session, error) {
	ctx := r.Context()
	token, sess, err := s.accounts.NewSession(ctx, user.ID, amr, Origin(r))
	if err != nil {
		s.log.Error("opening session", "request_id", RequestID(ctx), "err", err)
		return storage.Session{}, err
	}
	if old := s.cookies.Value(r); old != "" {
		_ = s.accounts.EndSession(ctx, old)
	}
	s.cookies.Set(w, token, sess.ExpiresAt)
	s.limiter.Devices().Set(w, user.ID, user.DeviceEpoch)
	if user.Language != "" {
		// The account's saved language wins over Accept-Language on the
		// pages after sign-in (issue 35). Remembered as picked at the Unix
		// epoch, so that an app's ui_locales still wins during an
		// interaction (only a pick on a page since it began beats those).
		SetPickedLanguage(w, user.Language, time.Unix(0, 0), s.cookies.secure)
	}
	s.log.Info("session started", "request_id", RequestID(ctx), "user", user.ID)
	return sess, nil
}

// HiddenField is a form field a page carries along unseen.
type HiddenField struct{ Name, Value string }

// LoginPage is the data of login.html: the login step of an
// authorization request, or the stand-alone sign-in page. PasskeyURL
// (SignIn.PasskeyURL) offers "Sign in with a passkey".
type LoginPage struct {
	Action, CSRFToken, Username, ForgotURL, SignupURL, PasskeyURL string
	Client                                                        *ClientView
	Hidden                                                        []HiddenField
	// Error is why the form was refused, and Notice why the person is
	// asked to sign in (an upstream identity waiting to be linked to an
	// account): each a marked message (locale.M) or a locale.Message.
	Error, Notice any
	// Connectors are the "Continue with …" buttons.
	Connectors []ConnectorButton
}

// ConnectorButton is a "Continue with {Name}" button: a submit button
// name="connector" value="{ID}".
type ConnectorButton struct{ ID, Name string }

// RunsScript: a page offering passkeys loads the passkey script.
func (p LoginPage) RunsScript() bool { return p.PasskeyURL != "" }

// LocalContinue accepts a path on this server (under base, the issuer's
// path) to continue to, and nothing else (no open redirect): "" otherwise.
func LocalContinue(base, raw string) string {
	if raw == "" || !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") || strings.ContainsAny(raw, "\\\r\n") {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, base+"/") {
		return ""
	}
	return raw
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
