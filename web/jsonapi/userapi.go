package jsonapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"log/slog"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// UserAPI serves the four /api/User/ endpoints (createUser, startSession,
// associateToken, endSession; README.md shows them with curl).
type UserAPI struct {
	apiBase
	signups Signups
	limiter *web.LoginLimiter
	metrics *web.Metrics
}

// Signups is the account creation policy (accounts.Signups), shared with
// the sign-up page and the connectors.
type Signups interface {
	Create(ctx context.Context, req accounts.SignUp, who accounts.Requester, lim accounts.SignupLimits) (storage.User, error)
}

// UserAPIConfig configures NewUserAPI.
type UserAPIConfig struct {
	Accounts Accounts
	// Signups decides who may create which account.
	Signups Signups
	Issuer  string
	Logger  *slog.Logger
	// Limiter throttles failed sign-ins; share it with the login page.
	Limiter *web.LoginLimiter
	// Tokens verifies bearer access tokens (optional).
	Tokens web.TokenVerifier
	// Metrics counts sign-ins (optional).
	Metrics *web.Metrics
}

// NewUserAPI returns the User API, refusing missing dependencies.
func NewUserAPI(c UserAPIConfig) (*UserAPI, error) {
	if c.Limiter == nil {
		return nil, errors.New("web: UserAPI needs a Limiter")
	}
	if c.Signups == nil {
		return nil, errors.New("web: UserAPI needs Signups")
	}
	base, err := newAPIBase(c.Accounts, c.Issuer, c.Tokens, c.Logger)
	if err != nil {
		return nil, err
	}
	return &UserAPI{apiBase: base, signups: c.Signups, limiter: c.Limiter, metrics: c.Metrics}, nil
}

// Endpoints lists the routes.
func (a *UserAPI) Endpoints() []Endpoint {
	return []Endpoint{
		{http.MethodPost, "/api/User/createUser"}, {http.MethodPost, "/api/User/associateToken"},
		{http.MethodPost, "/api/User/startSession"}, {http.MethodPost, "/api/User/endSession"},
	}
}

// Routes mounts the endpoints on mux.
func (a *UserAPI) Routes(mux *http.ServeMux) {
	mux.Handle("/api/User/createUser", a.route(map[string]apiHandler{http.MethodPost: a.createUser}))
	mux.Handle("/api/User/associateToken", a.route(map[string]apiHandler{http.MethodPost: a.associateToken}))
	mux.Handle("/api/User/startSession", a.route(map[string]apiHandler{http.MethodPost: a.startSession}))
	mux.Handle("/api/User/endSession", a.route(map[string]apiHandler{http.MethodPost: a.endSession}))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		web.WriteError(w, http.StatusNotFound, "no such endpoint")
	})
}

// actingOn checks that the caller may act on *user: themself or an admin.
// An empty *user is the caller themself (the cookie or token says who).
func (a *UserAPI) actingOn(r *http.Request, user *string) (web.Caller, error) {
	c, err := a.caller(r, provider.ScopeAccount, provider.ScopeAdmin)
	if err != nil {
		return web.Caller{}, err
	}
	if *user == "" {
		if c.User.ID == "" {
			return web.Caller{}, web.Errorf(http.StatusBadRequest, "user cannot be empty: this token names no user")
		}
		*user = c.User.ID
	} else if self := c.SelfID(); c.User.ID != "" && self != c.User.ID {
		// A pairwise client's token: the client names the person by the
		// sub it was given (OpenID Connect Core §8), never by the user ID
		// it should not know, which then names someone else.
		switch {
		case subtle.ConstantTimeCompare([]byte(*user), []byte(self)) == 1:
			*user = c.User.ID
		case *user == c.User.ID && !c.IsAdmin():
			return web.Caller{}, web.Errorf(http.StatusForbidden, "You may only act on your own account: name it by the sub this client was given")
		}
	}
	if c.IsAdmin() {
		if c.User.ID != *user {
			if err := a.adminSecondFactor(c); err != nil {
				return web.Caller{}, err
			}
		}
		return c, nil
	}
	if c.User.ID != *user {
		return web.Caller{}, web.Errorf(http.StatusForbidden, "You may only act on your own account")
	}
	if c.Bearer && !slices.Contains(c.Scopes, provider.ScopeAccount) {
		return web.Caller{}, web.Errorf(http.StatusForbidden, "This access token lacks the account scope")
	}
	return c, nil
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type createUserBody struct {
	Username     string     `json:"username"`
	Password     string     `json:"password"`
	Role         string     `json:"role"`
	SecurityCode flexString `json:"securityCode"`
	profileFields
}

// createUser asks the policy (accounts.Signups) for the account and words
// its refusals for the API.
func (a *UserAPI) createUser(w http.ResponseWriter, r *http.Request) error {
	var body createUserBody
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	req := accounts.SignUp{
		NewUser:      accounts.NewUser{Username: body.Username, Password: body.Password, Role: body.Role, Profile: body.profileFields.update()},
		SecurityCode: string(body.SecurityCode),
	}
	u, err := a.signups.Create(r.Context(), req, &requester{a: a, r: r}, a.limiter.Attempts(r))
	var adminOnly *accounts.AdminOnlyError
	switch {
	case err == nil:
	case errors.Is(err, accounts.ErrBadSecurityCode):
		a.log.Warn("wrong bootstrap security code", "request_id", web.RequestID(r.Context()), "remote", web.ClientAddr(r))
		return err
	case errors.Is(err, accounts.ErrAdminCredentials):
		return web.Errorf(http.StatusUnauthorized, "Creating an admin needs an admin's access token or, while no admin exists, "+
			"the securityCode the server logged at start-up (a WARN line with \"security_code\")")
	case errors.Is(err, accounts.ErrRegistrationClosed):
		return web.Errorf(http.StatusForbidden, "Registration is closed: only admins create users")
	case errors.As(err, &adminOnly):
		return web.Errorf(http.StatusForbidden, "Only admins (or the bootstrap security code) can create %s accounts", adminOnly.Role)
	default:
		return err
	}
	a.log.Info("user created", "request_id", web.RequestID(r.Context()), "user", u.ID, "role", u.Role)
	web.WriteJSON(w, http.StatusOK, map[string]string{"user": u.ID})
	return nil
}

// requester is the caller of createUser as the policy asks for it: a
// session or a bearer token with the admin scope, resolved once.
type requester struct {
	a    *UserAPI
	r    *http.Request
	done bool
	c    web.Caller
	err  error
}

func (q *requester) caller() (web.Caller, error) {
	if !q.done {
		q.done = true
		q.c, q.err = q.a.caller(q.r, provider.ScopeAdmin)
		var he *web.HTTPError
		if errors.As(q.err, &he) && he.Status() == http.StatusUnauthorized {
			q.err = &accounts.AnonymousError{Err: q.err}
		}
	}
	return q.c, q.err
}

// Admin reports whether the caller is an admin.
func (q *requester) Admin(context.Context) (bool, error) {
	c, err := q.caller()
	return err == nil && c.IsAdmin(), err
}

// ActAsAdmin applies TONEARM_ADMIN_MFA to the admin.
func (q *requester) ActAsAdmin(context.Context) error {
	c, err := q.caller()
	if err != nil {
		return err
	}
	return q.a.adminSecondFactor(c)
}

func (a *UserAPI) startSession(w http.ResponseWriter, r *http.Request) error {
	var body credentials
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.Username == "" {
		return web.Errorf(http.StatusBadRequest, "Username cannot be empty")
	}
	if body.Password == "" {
		return web.Errorf(http.StatusBadRequest, "Password cannot be empty")
	}
	// Nothing longer than the creation limits can match: refuse it before
	// spending a hash on it. (The username field also takes an email.)
	if utf8.RuneCountInString(body.Username) > accounts.MaxEmailLen {
		return web.Errorf(http.StatusBadRequest, "Username cannot be over %d characters", accounts.MaxEmailLen)
	}
	if utf8.RuneCountInString(body.Password) > accounts.MaxPasswordLen {
		return web.Errorf(http.StatusBadRequest, "Password cannot be over %d characters", accounts.MaxPasswordLen)
	}
	u, token, sess, err := a.accounts.StartSession(r.Context(), body.Username, body.Password, a.limiter.Guard(r), web.Origin(r))
	a.metrics.SignInDone(err)
	if errors.Is(err, accounts.ErrInvalidCredentials) {
		a.log.Info("sign-in failed", "request_id", web.RequestID(r.Context()), "remote", web.ClientAddr(r))
		return err
	}
	if err != nil {
		return err
	}
	// A browser that signs in again drops its previous session.
	if old := a.cookies.Value(r); old != "" {
		_ = a.accounts.EndSession(r.Context(), old)
	}
	a.cookies.Set(w, token, sess.ExpiresAt)
	a.limiter.Devices().Set(w, u.ID, u.DeviceEpoch)
	a.log.Info("session started", "request_id", web.RequestID(r.Context()), "user", u.ID)
	web.WriteJSON(w, http.StatusOK, map[string]string{"user": u.ID})
	return nil
}

type associateBody struct {
	User          string `json:"user"`
	ScrobbleToken string `json:"scrobbleToken"`
}

func (a *UserAPI) associateToken(w http.ResponseWriter, r *http.Request) error {
	var body associateBody
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	if _, err := a.actingOn(r, &body.User); err != nil {
		return err
	}
	if body.ScrobbleToken == "" {
		return web.Errorf(http.StatusBadRequest, "scrobbleToken cannot be empty")
	}
	// Bound the wait on ListenBrainz even if the client waits forever.
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	name, err := a.accounts.AssociateToken(ctx, body.User, body.ScrobbleToken)
	if err != nil {
		return err
	}
	a.log.Info("ListenBrainz token associated", "request_id", web.RequestID(r.Context()), "user", body.User)
	web.WriteJSON(w, http.StatusOK, map[string]string{"listenBrainzName": name})
	return nil
}

type endSessionBody struct {
	User string `json:"user"`
}

func (a *UserAPI) endSession(w http.ResponseWriter, r *http.Request) error {
	var body endSessionBody
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	c, err := a.actingOn(r, &body.User)
	if err != nil {
		return err
	}
	if err := a.accounts.EndUserSessions(r.Context(), body.User); err != nil {
		return err
	}
	if c.User.ID == body.User && !c.Bearer {
		a.cookies.Clear(w)
	}
	a.log.Info("sessions ended", "request_id", web.RequestID(r.Context()), "user", body.User, "by", c.User.ID+c.ClientID)
	web.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}
