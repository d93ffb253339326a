package jsonapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// Accounts is what the JSON APIs need from the accounts service.
type Accounts interface {
	web.SessionResolver
	StartSession(ctx context.Context, username, password string, guard accounts.PasswordGuard, from accounts.Origin) (storage.User, string, storage.Session, error)
	NewSession(ctx context.Context, userID, amr string, from accounts.Origin) (string, storage.Session, error)
	EndSession(ctx context.Context, token string) error
	EndUserSessions(ctx context.Context, userID string) error
	AssociateToken(ctx context.Context, userID, token string) (string, error)
	UpdateProfile(ctx context.Context, userID string, p accounts.ProfileUpdate) (storage.User, error)
	UpdateOwnProfile(ctx context.Context, userID string, p accounts.ProfileUpdate, proof accounts.Reauth) (storage.User, error)
	AdminUpdate(ctx context.Context, userID string, c accounts.AdminChange) (storage.User, error)
	AdminSetPassword(ctx context.Context, userID, password string) error
	ChangePassword(ctx context.Context, userID, current, next string, guard accounts.PasswordGuard) error
	DeleteUser(ctx context.Context, userID string) error
	DeleteAccount(ctx context.Context, userID string, proof accounts.Reauth) error
	AdminRemovePasskeys(ctx context.Context, userID string) (int64, error)
	AdminRemoveSecondFactor(ctx context.Context, userID string) error
	ListUsers(ctx context.Context, f storage.UserFilter) ([]storage.User, error)
	GetUserByUsername(ctx context.Context, username string) (storage.User, error)
	ResendEmailVerification(ctx context.Context, userID string) error
}

// Endpoint is one route of a JSON API; the OpenAPI test checks every one
// against the published document.
type Endpoint struct {
	Method, Path string
}

// apiBase is what every JSON API shares: who is calling, the cross-site
// check, and one place that turns errors into {"error": …} answers.
type apiBase struct {
	accounts Accounts
	cookies  web.Cookies
	tokens   web.TokenVerifier
	origin   string // the issuer's origin
	issuer   string // a DPoP proof's htu is the issuer's external URL
	log      *slog.Logger
	// bearerOnly ignores session cookies.
	bearerOnly bool
	// adminMFA: an admin acting with a user token (or session) must have
	// signed in with two factors (TONEARM_ADMIN_MFA=required).
	adminMFA bool
}

// RequireAdminMFA keeps admins whose token's sign-in used one factor out
// of the admin calls of api (TONEARM_ADMIN_MFA=required); client-credentials
// tokens act for their client and are not concerned.
func RequireAdminMFA(api interface{ base() *apiBase }) { api.base().adminMFA = true }

func (a *apiBase) base() *apiBase { return a }

func newAPIBase(acc Accounts, issuer string, tokens web.TokenVerifier, log *slog.Logger) (apiBase, error) {
	if acc == nil || log == nil {
		return apiBase{}, errors.New("web: an API needs Accounts and a Logger")
	}
	iss, err := url.Parse(issuer)
	if err != nil || iss.Scheme == "" || iss.Host == "" {
		return apiBase{}, errors.New("web: issuer must be an absolute URL")
	}
	return apiBase{accounts: acc, cookies: web.NewCookies(issuer), tokens: tokens, origin: iss.Scheme + "://" + iss.Host, issuer: issuer, log: log}, nil
}

type apiHandler func(w http.ResponseWriter, r *http.Request) error

// route dispatches on the method; others get a JSON 405. Requests that
// change something must be same-origin: together with SameSite=Lax cookies
// and the JSON-only bodies (a form cannot send them cross-site without a
// CORS preflight), this closes the APIs to cross-site request forgery.
func (a *apiBase) route(handlers map[string]apiHandler) http.Handler {
	allowed := make([]string, 0, len(handlers))
	for m := range handlers {
		allowed = append(allowed, m)
	}
	sort.Strings(allowed)
	allow := strings.Join(allowed, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := handlers[r.Method]
		if !ok {
			w.Header().Set("Allow", allow)
			web.WriteError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: use "+allow)
			return
		}
		if r.Method != http.MethodGet && !a.sameOrigin(r) {
			web.WriteError(w, http.StatusForbidden, "cross-site request refused")
			return
		}
		if err := h(w, r); err != nil {
			a.fail(w, r, err)
		}
	})
}

func (a *apiBase) sameOrigin(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == a.origin {
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

// fail renders err as {"error": …} with its status. A 401 always carries
// a challenge (RFC 9110 §15.5.2): the APIs take bearer tokens, so one that
// named none gets `Bearer realm="tonearm"` (RFC 6750 §3: no error code,
// as no token was refused).
func (a *apiBase) fail(w http.ResponseWriter, r *http.Request, err error) {
	if status, _, _ := web.ErrorMessage(err); status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		var he *web.HTTPError
		if !errors.As(err, &he) || !he.Challenged() {
			web.SetChallenge(w, "Bearer", "realm", "tonearm")
		}
	}
	web.WriteAPIError(w, r, a.log, err)
}

// caller requires credentials: a bearer token for tonearm's API carrying
// one of anyOf, or (unless the API is bearer-only) the session cookie.
func (a *apiBase) caller(r *http.Request, anyOf ...string) (web.Caller, error) {
	bearer, _ := web.AccessToken(r)
	if bearer == "" {
		if a.bearerOnly {
			return web.Caller{}, web.Errorf(http.StatusUnauthorized, "A bearer access token is required").Challenge("Bearer", "realm", "tonearm")
		}
		c, err := web.SessionCaller(r.Context(), r, a.cookies, a.accounts)
		if errors.Is(err, web.ErrNoCaller) {
			return web.Caller{}, web.Errorf(http.StatusUnauthorized, "Sign in first: no valid session or access token")
		}
		if err == nil {
			audit.SetActor(r.Context(), c.Actor(), "")
		}
		return c, err
	}
	if a.tokens == nil {
		return web.Caller{}, web.Errorf(http.StatusUnauthorized, "Bearer tokens are not accepted here")
	}
	c, err := web.BearerCaller(r, a.issuer, a.tokens, a.accounts, anyOf)
	var tbe *web.TokenBindingError
	if errors.As(err, &tbe) {
		return web.Caller{}, tbe.HTTP() // RFC 9449 §7: 401 with a DPoP challenge
	}
	if err == nil {
		audit.SetActor(r.Context(), c.Actor(), c.ClientID)
	}
	switch {
	case errors.Is(err, provider.ErrAPITokenScope):
		need := strings.Join(anyOf, " or ")
		return web.Caller{}, web.Errorf(http.StatusForbidden, "This access token lacks the %s scope: the client must be registered with it and ask for it", need).
			Challenge("Bearer", "realm", "tonearm", "error", "insufficient_scope", "scope", strings.Join(anyOf, " "))
	case errors.Is(err, provider.ErrAPITokenAudience):
		return web.Caller{}, web.Errorf(http.StatusUnauthorized, "This access token was not issued for tonearm's API").
			Challenge("Bearer", "realm", "tonearm", "error", "invalid_token")
	case errors.Is(err, provider.ErrAPITokenInvalid):
		return web.Caller{}, web.Errorf(http.StatusUnauthorized, "The access token is invalid, expired or revoked").
			Challenge("Bearer", "realm", "tonearm", "error", "invalid_token")
	}
	return c, err
}

// userCaller requires a signed-in user (not a client): by session cookie,
// or by a user's bearer token granted the account scope.
func (a *apiBase) userCaller(r *http.Request) (web.Caller, error) {
	c, err := a.caller(r, provider.ScopeAccount)
	if err != nil {
		return web.Caller{}, err
	}
	if c.User.ID == "" {
		return web.Caller{}, web.Errorf(http.StatusForbidden, "This needs a user's session or token, not a client's")
	}
	return c, nil
}

// admin requires an admin: a bearer token granted the admin scope whose
// subject is the client itself or an active admin.
func (a *apiBase) admin(r *http.Request) (web.Caller, error) {
	c, err := a.caller(r, provider.ScopeAdmin)
	if err != nil {
		return web.Caller{}, err
	}
	if !c.IsAdmin() {
		return web.Caller{}, web.Errorf(http.StatusForbidden, "Admins only")
	}
	if err := a.adminSecondFactor(c); err != nil {
		return web.Caller{}, err
	}
	return c, nil
}

// adminSecondFactor applies TONEARM_ADMIN_MFA=required to an admin caller:
// a person's token (or session) counts only when its sign-in used two
// factors (the token's acr), whatever the account owns now.
func (a *apiBase) adminSecondFactor(c web.Caller) error {
	if !a.adminMFA || !c.NeedsAdminSecondFactor() {
		return nil
	}
	// RFC 9470's challenge tells the client what to ask for; the status
	// stays 403: the token is valid, its sign-in is too weak for this.
	return web.Errorf(http.StatusForbidden, "Admins need a sign-in with two factors here (TONEARM_ADMIN_MFA=required), and this sign-in used one: "+
		"sign in again with an authenticator app code or a passkey (an app asks with acr_values=%s), then retry with the new token or session", accounts.ACRMultiFactor).
		Challenge("Bearer", "realm", "tonearm", "error", "insufficient_user_authentication", "acr_values", accounts.ACRMultiFactor)
}

// UserJSON is a user as the APIs show it: never the password hash, never
// the ListenBrainz token.
type UserJSON struct {
	ID            string `json:"id"`
	Username      string `json:"username"`
	Role          string `json:"role"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"emailVerified"`
	Name          string `json:"name,omitempty"`
	Bio           string `json:"bio,omitempty"`
	Pronouns      string `json:"pronouns,omitempty"`
	Website       string `json:"website,omitempty"`
	// Language is the saved language of pages and mails (BCP 47).
	Language         string `json:"language,omitempty"`
	Disabled         bool   `json:"disabled"`
	PasskeyOnly      bool   `json:"passkeyOnly"`
	ListenBrainzName string `json:"listenBrainzName,omitempty"`
	// Claims are the custom claims (admin views only).
	Claims    json.RawMessage `json:"claims,omitempty"`
	CreatedAt string          `json:"createdAt"`
	UpdatedAt string          `json:"updatedAt"`
}

func toUserJSON(u storage.User) UserJSON {
	return UserJSON{
		ID: u.ID, Username: u.Username, Role: u.Role, Email: u.Email, EmailVerified: u.EmailVerified,
		Name: u.Name, Bio: u.Bio, Pronouns: u.Pronouns, Website: u.Website, Language: u.Language, Disabled: u.Disabled,
		PasskeyOnly: u.PasskeyOnly, ListenBrainzName: u.ListenBrainzName,
		CreatedAt: u.CreatedAt.UTC().Format(time.RFC3339), UpdatedAt: u.UpdatedAt.UTC().Format(time.RFC3339),
	}
}

// optional decodes a JSON field of a partial update: absent, null (clear)
// or a string.
type optional accounts.Optional

func (o *optional) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// profileFields are the profile fields every API accepts.
type profileFields struct {
	Email    optional `json:"email"`
	Name     optional `json:"name"`
	Bio      optional `json:"bio"`
	Pronouns optional `json:"pronouns"`
	Website  optional `json:"website"`
	Language optional `json:"language"`
}

func (p profileFields) update() accounts.ProfileUpdate {
	return accounts.ProfileUpdate{
		Email: accounts.Optional(p.Email), Name: accounts.Optional(p.Name), Bio: accounts.Optional(p.Bio),
		Pronouns: accounts.Optional(p.Pronouns), Website: accounts.Optional(p.Website), Language: accounts.Optional(p.Language),
	}
}

// flexString accepts a JSON string or number: API clients may send the
// six-digit security code as a number (123456) as well as a string.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil || n < 0 || n > 999999 {
		return &web.FieldError{Msg: "securityCode must be six digits, as a string or a number"}
	}
	// As a number the code loses its leading zeros: 012345 arrives as 12345.
	*f = flexString(fmt.Sprintf("%06d", n))
	return nil
}

func queryInt(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, web.Errorf(http.StatusBadRequest, "%s must be a number from %d to %d", name, lo, hi)
	}
	return n, nil
}
