package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage"
)

// Accounts is what the User API needs from the accounts service.
type Accounts interface {
	SessionResolver
	CreateUser(ctx context.Context, username, password, role string) (storage.User, error)
	StartSession(ctx context.Context, username, password string) (storage.User, string, storage.Session, error)
	EndSession(ctx context.Context, token string) error
	EndUserSessions(ctx context.Context, userID string) error
	AssociateToken(ctx context.Context, userID, token string) (string, error)
}

// Registration modes (TONEARM_REGISTRATION).
const (
	RegistrationOpen  = "open"
	RegistrationAdmin = "admin"
)

// UserAPI serves the four /api/User/ endpoints of SPEC.md.
type UserAPI struct {
	accounts     Accounts
	cookies      Cookies
	origin       string // the issuer's origin, for the cross-site check
	registration string
	log          *slog.Logger
	limiter      *LoginLimiter
	tokens       TokenVerifier
}

// UserAPIConfig configures NewUserAPI.
type UserAPIConfig struct {
	Accounts     Accounts
	Issuer       string
	Registration string // RegistrationOpen or RegistrationAdmin
	Logger       *slog.Logger
	// Limiter throttles failed sign-ins; share it with the login page.
	Limiter *LoginLimiter
	// Tokens verifies bearer access tokens (optional).
	Tokens TokenVerifier
}

// NewUserAPI returns the User API, refusing missing dependencies.
func NewUserAPI(c UserAPIConfig) (*UserAPI, error) {
	if c.Accounts == nil || c.Logger == nil || c.Limiter == nil {
		return nil, errors.New("web: UserAPI needs Accounts, Logger and Limiter")
	}
	if c.Registration != RegistrationOpen && c.Registration != RegistrationAdmin {
		return nil, errors.New("web: registration must be open or admin")
	}
	iss, err := url.Parse(c.Issuer)
	if err != nil || iss.Scheme == "" || iss.Host == "" {
		return nil, errors.New("web: issuer must be an absolute URL")
	}
	return &UserAPI{
		accounts: c.Accounts, cookies: NewCookies(c.Issuer),
		origin: iss.Scheme + "://" + iss.Host, registration: c.Registration, log: c.Logger,
		limiter: c.Limiter, tokens: c.Tokens,
	}, nil
}

// Routes mounts the endpoints on mux.
func (a *UserAPI) Routes(mux *http.ServeMux) {
	mux.Handle("/api/User/createUser", a.post(a.createUser))
	mux.Handle("/api/User/associateToken", a.post(a.associateToken))
	mux.Handle("/api/User/startSession", a.post(a.startSession))
	mux.Handle("/api/User/endSession", a.post(a.endSession))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	})
}

// post admits only same-origin POSTs and renders the handler's error.
// Together with SameSite=Lax cookies and the JSON-only content type (a form
// cannot send it cross-site without a CORS preflight), this closes the User
// API to cross-site request forgery.
func (a *UserAPI) post(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: use POST")
			return
		}
		if !a.sameOrigin(r) {
			writeError(w, http.StatusForbidden, "cross-site request refused")
			return
		}
		if err := h(w, r); err != nil {
			a.fail(w, r, err)
		}
	})
}

func (a *UserAPI) sameOrigin(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser, or a same-origin GET-style request
	}
	if origin == a.origin {
		return true
	}
	// The server's own host, as the client reached it (a proxy in front
	// may rewrite the issuer's host).
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return origin == scheme+"://"+r.Host
}

// fail renders err as {"error": …} with its status. Unknown errors are
// logged once with the request ID and answered with a bare 500.
func (a *UserAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	var ve *accounts.ValidationError
	switch {
	case errors.As(err, &he):
		writeError(w, he.status, he.message)
	case errors.As(err, &ve):
		writeError(w, http.StatusBadRequest, ve.Message)
	case errors.Is(err, accounts.ErrUsernameTaken):
		writeError(w, http.StatusConflict, "Username is already taken")
	case errors.Is(err, accounts.ErrInvalidCredentials):
		writeError(w, http.StatusUnauthorized, "Invalid username or password")
	case errors.Is(err, accounts.ErrUserNotFound):
		writeError(w, http.StatusNotFound, "No such user")
	case errors.Is(err, accounts.ErrInvalidToken):
		writeError(w, http.StatusBadRequest, "ListenBrainz does not accept this token")
	case errors.Is(err, accounts.ErrGuestNoToken):
		writeError(w, http.StatusForbidden, "Guest accounts cannot associate a ListenBrainz token")
	case errors.Is(err, accounts.ErrTokenCheckFailed):
		a.log.Warn("ListenBrainz token check failed", "request_id", RequestID(r.Context()), "err", err)
		writeError(w, http.StatusBadGateway, "ListenBrainz could not be reached; try again later")
	case errors.Is(err, accounts.ErrBusy):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "Too many sign-ins in progress; try again shortly")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "Request was cancelled or took too long")
	default:
		a.log.Error("request failed", "request_id", RequestID(r.Context()), "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

// caller requires a signed-in user.
func (a *UserAPI) caller(r *http.Request) (Caller, error) {
	c, err := callerFrom(r.Context(), r, a.cookies, a.accounts, a.tokens)
	if errors.Is(err, errNoCaller) {
		return Caller{}, errorf(http.StatusUnauthorized, "Sign in first: no valid session")
	}
	return c, err
}

// actingOn checks that the caller may act on user: themself or an admin.
func (a *UserAPI) actingOn(r *http.Request, user string) (Caller, error) {
	if user == "" {
		return Caller{}, errorf(http.StatusBadRequest, "user cannot be empty")
	}
	c, err := a.caller(r)
	if err != nil {
		return Caller{}, err
	}
	if c.User.ID != user && !c.IsAdmin() {
		return Caller{}, errorf(http.StatusForbidden, "You may only act on your own account")
	}
	return c, nil
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (a *UserAPI) createUser(w http.ResponseWriter, r *http.Request) error {
	var body credentials
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if a.registration == RegistrationAdmin {
		c, err := a.caller(r)
		if err != nil {
			return err
		}
		if !c.IsAdmin() {
			return errorf(http.StatusForbidden, "Registration is closed: only admins create users")
		}
	}
	u, err := a.accounts.CreateUser(r.Context(), body.Username, body.Password, storage.RoleUser)
	if err != nil {
		return err
	}
	a.log.Info("user created", "request_id", RequestID(r.Context()), "user", u.ID)
	writeJSON(w, http.StatusOK, map[string]string{"user": u.ID})
	return nil
}

func (a *UserAPI) startSession(w http.ResponseWriter, r *http.Request) error {
	var body credentials
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.Username == "" {
		return errorf(http.StatusBadRequest, "Username cannot be empty")
	}
	if body.Password == "" {
		return errorf(http.StatusBadRequest, "Password cannot be empty")
	}
	// Nothing longer than the creation limits can match: refuse it before
	// spending a hash on it.
	if utf8.RuneCountInString(body.Username) > accounts.MaxUsernameLen {
		return errorf(http.StatusBadRequest, "Username cannot be over %d characters", accounts.MaxUsernameLen)
	}
	if utf8.RuneCountInString(body.Password) > accounts.MaxPasswordLen {
		return errorf(http.StatusBadRequest, "Password cannot be over %d characters", accounts.MaxPasswordLen)
	}
	addr := clientAddr(r)
	if blocked, wait := a.limiter.Blocked(addr, body.Username); blocked {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return errorf(http.StatusTooManyRequests, "Too many failed sign-in attempts; try again later")
	}
	u, token, sess, err := a.accounts.StartSession(r.Context(), body.Username, body.Password)
	if errors.Is(err, accounts.ErrInvalidCredentials) {
		a.limiter.Failed(addr, body.Username)
		a.log.Info("sign-in failed", "request_id", RequestID(r.Context()), "remote", addr)
		return err
	}
	if err != nil {
		return err
	}
	a.limiter.Succeeded(addr, body.Username)
	// A browser that signs in again drops its previous session.
	if old := a.cookies.Value(r); old != "" {
		_ = a.accounts.EndSession(r.Context(), old)
	}
	a.cookies.Set(w, token, sess.ExpiresAt)
	a.log.Info("session started", "request_id", RequestID(r.Context()), "user", u.ID)
	writeJSON(w, http.StatusOK, map[string]string{"user": u.ID})
	return nil
}

type associateBody struct {
	User          string `json:"user"`
	ScrobbleToken string `json:"scrobbleToken"`
}

func (a *UserAPI) associateToken(w http.ResponseWriter, r *http.Request) error {
	var body associateBody
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if _, err := a.actingOn(r, body.User); err != nil {
		return err
	}
	if body.ScrobbleToken == "" {
		return errorf(http.StatusBadRequest, "scrobbleToken cannot be empty")
	}
	// Bound the wait on ListenBrainz even if the client waits forever.
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	name, err := a.accounts.AssociateToken(ctx, body.User, body.ScrobbleToken)
	if err != nil {
		return err
	}
	a.log.Info("ListenBrainz token associated", "request_id", RequestID(r.Context()), "user", body.User)
	writeJSON(w, http.StatusOK, map[string]string{"listenBrainzName": name})
	return nil
}

type endSessionBody struct {
	User string `json:"user"`
}

func (a *UserAPI) endSession(w http.ResponseWriter, r *http.Request) error {
	var body endSessionBody
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	c, err := a.actingOn(r, body.User)
	if err != nil {
		return err
	}
	if err := a.accounts.EndUserSessions(r.Context(), body.User); err != nil {
		return err
	}
	if c.User.ID == body.User && !c.Bearer {
		a.cookies.Clear(w)
	}
	a.log.Info("sessions ended", "request_id", RequestID(r.Context()), "user", body.User, "by", c.User.ID)
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// clientAddr is the peer's IP address. X-Forwarded-For is not trusted: a
// client could set it to dodge the rate limits.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
