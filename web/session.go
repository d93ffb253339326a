package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage"
)

// SessionResolver resolves a session cookie value, or a token's subject, to
// its user.
type SessionResolver interface {
	SessionUser(ctx context.Context, token string) (storage.User, storage.Session, error)
	GetUser(ctx context.Context, id string) (storage.User, error)
}

// TokenVerifier checks bearer access tokens issued by this provider.
type TokenVerifier interface {
	VerifyAccessToken(ctx context.Context, token string) (fosite.AccessRequester, error)
}

// Cookies sets and reads the browser-session cookie. On an https issuer the
// cookie is Secure and carries the __Host- prefix, which browsers only accept
// from a secure origin for the whole host (no Domain, Path=/).
type Cookies struct {
	name   string
	secure bool
}

// NewCookies derives the cookie settings from the issuer URL.
func NewCookies(issuer string) Cookies {
	u, err := url.Parse(issuer)
	if err == nil && u.Scheme == "https" {
		return Cookies{name: "__Host-tonearm_session", secure: true}
	}
	return Cookies{name: "tonearm_session"}
}

// Name is the cookie's name.
func (c Cookies) Name() string { return c.name }

// Set sends the session cookie.
func (c Cookies) Set(w http.ResponseWriter, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: c.name, Value: token, Path: "/",
		Expires: expires, MaxAge: int(time.Until(expires).Seconds()),
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	})
}

// Clear deletes the session cookie in the browser.
func (c Cookies) Clear(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: c.name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	})
}

// Value returns the cookie value from r, or "".
func (c Cookies) Value(r *http.Request) string {
	ck, err := r.Cookie(c.name)
	if err != nil {
		return ""
	}
	return ck.Value
}

// Caller is who made a request.
type Caller struct {
	User    storage.User    // zero for a client acting for itself
	Session storage.Session // zero for a bearer token
	Bearer  bool
	// ClientID and Scopes describe a bearer token.
	ClientID string
	Scopes   []string
}

// IsAdmin reports whether the caller may act on any user: an active admin,
// or a client whose client-credentials token carries the admin scope.
func (c Caller) IsAdmin() bool {
	if c.User.ID != "" {
		return c.User.IsActiveAdmin()
	}
	return c.ClientID != "" && contains(c.Scopes, "admin")
}

// errNoCaller: the request carries no valid credentials.
var errNoCaller = errors.New("no credentials")

// callerFrom resolves a bearer access token (when tokens is set) or else the
// session cookie. A token counts only when its subject is a user.
func callerFrom(ctx context.Context, r *http.Request, cookies Cookies, sessions SessionResolver, tokens TokenVerifier) (Caller, error) {
	if bearer := bearerToken(r); bearer != "" && tokens != nil {
		ar, err := tokens.VerifyAccessToken(ctx, bearer)
		if err != nil {
			return Caller{}, errNoCaller
		}
		c := Caller{Bearer: true, ClientID: ar.GetClient().GetID(), Scopes: ar.GetGrantedScopes()}
		subject := ar.GetSession().GetSubject()
		if subject == c.ClientID {
			return c, nil // client credentials: the client acts for itself
		}
		u, err := sessions.GetUser(ctx, subject)
		if errors.Is(err, accounts.ErrUserNotFound) || (err == nil && u.Disabled) {
			return Caller{}, errNoCaller
		}
		if err != nil {
			return Caller{}, err
		}
		c.User = u
		return c, nil
	}
	token := cookies.Value(r)
	if token == "" {
		return Caller{}, errNoCaller
	}
	u, sess, err := sessions.SessionUser(ctx, token)
	if errors.Is(err, accounts.ErrNoSession) {
		return Caller{}, errNoCaller
	}
	if err != nil {
		return Caller{}, err
	}
	return Caller{User: u, Session: sess}, nil
}
