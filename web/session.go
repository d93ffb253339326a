package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/dpop"
	"github.com/tonearm-idp/tonearm/storage"
)

// SessionResolver resolves a session cookie value, or a token's subject, to
// its user.
type SessionResolver interface {
	SessionUser(ctx context.Context, token string) (storage.User, storage.Session, error)
	GetUser(ctx context.Context, id string) (storage.User, error)
}

// TokenVerifier checks a bearer access token presented to tonearm's own
// APIs: whole (signature, typ, iss, exp), issued for tonearm's API, live,
// and carrying at least one of anyOf.
type TokenVerifier interface {
	VerifyAPIToken(ctx context.Context, token string, anyOf ...string) (provider.APIToken, error)
	// DPoP checks the proofs that come with DPoP-bound tokens.
	DPoP() *dpop.Verifier
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
	// Subject is a bearer token's sub: the user as the token's client
	// sees them (User.ID but for a pairwise client, OpenID Connect Core
	// §8), the ID tonearm's APIs show and take from that client.
	Subject string
	// AuthTime is when the user last proved who they are: the session's
	// sign-in, or the sign-in behind a bearer token.
	AuthTime time.Time
	// MultiFactor: this sign-in, not merely the account, used two factors:
	// the session's amr holds "mfa" (RFC 8176), or the token's acr is the
	// multi-factor class (OpenID PAPE).
	MultiFactor bool
}

// NeedsAdminSecondFactor is the TONEARM_ADMIN_MFA=required rule, written
// once for the console and the admin APIs: an admin acting as a person (a
// session, or a user's token) is let in only when the sign-in behind it
// used two factors. It asks how this sign-in was made, never what the
// account owns: a password-only session opened before a passkey was added
// gains nothing by the passkey. A client acting for itself (client
// credentials) has no sign-in and is not concerned.
func (c Caller) NeedsAdminSecondFactor() bool {
	return c.User.ID != "" && c.User.IsActiveAdmin() && !c.MultiFactor
}

// IsAdmin reports whether the caller may act on any user: an active admin
// signed in by session cookie, or a bearer token granted the admin scope
// for tonearm's API whose subject is the client itself or a user who is an
// active admin now.
func (c Caller) IsAdmin() bool {
	if c.Bearer && !slices.Contains(c.Scopes, provider.ScopeAdmin) {
		return false
	}
	if c.User.ID != "" {
		return c.User.IsActiveAdmin()
	}
	return c.Bearer
}

// Actor names the caller in audit events: the user, or the client acting
// for itself.
func (c Caller) Actor() string {
	if c.User.ID != "" {
		return c.User.ID
	}
	return "client:" + c.ClientID
}

// ErrNoCaller: the request carries no valid credentials.
var ErrNoCaller = errors.New("no credentials")

// SessionCaller resolves the browser-session cookie.
func SessionCaller(ctx context.Context, r *http.Request, cookies Cookies, sessions SessionResolver) (Caller, error) {
	token := cookies.Value(r)
	if token == "" {
		return Caller{}, ErrNoCaller
	}
	u, sess, err := sessions.SessionUser(ctx, token)
	if errors.Is(err, accounts.ErrNoSession) {
		return Caller{}, ErrNoCaller
	}
	if err != nil {
		return Caller{}, err
	}
	return Caller{User: u, Session: sess, AuthTime: sess.AuthTime, MultiFactor: slices.Contains(strings.Fields(sess.AMR), accounts.AMRMFA)}, nil
}

// BearerCaller resolves the access token of r (AccessToken) for
// tonearm's API carrying one of anyOf. A user's token counts only while
// the user exists and is enabled; a DPoP-bound one only with a proof by
// its key (CheckTokenBinding: a *TokenBindingError otherwise).
func BearerCaller(r *http.Request, issuer string, tokens TokenVerifier, sessions SessionResolver, anyOf []string) (Caller, error) {
	ctx := r.Context()
	bearer, dpopScheme := AccessToken(r)
	t, err := tokens.VerifyAPIToken(ctx, bearer, anyOf...)
	if err != nil && !errors.Is(err, provider.ErrAPITokenScope) && !errors.Is(err, provider.ErrAPITokenAudience) {
		return Caller{}, err
	}
	// The binding before the scope (RFC 9449 §7.1): a bound token without
	// its key is refused as such, whatever it was granted.
	if err := CheckTokenBinding(r, tokens.DPoP(), issuer, bearer, t.JKT, dpopScheme); err != nil {
		return Caller{}, err
	}
	if err != nil {
		return Caller{}, err
	}
	c := Caller{Bearer: true, ClientID: t.ClientID, Scopes: t.Scopes, Subject: t.ClientSubject, AuthTime: t.AuthTime, MultiFactor: t.ACR == provider.ACRMultiFactor}
	if t.Subject == t.ClientID {
		return c, nil // client credentials: the client acts for itself
	}
	u, err := sessions.GetUser(ctx, t.Subject)
	if errors.Is(err, accounts.ErrUserNotFound) || (err == nil && u.Disabled) {
		return Caller{}, provider.ErrAPITokenInvalid
	}
	if err != nil {
		return Caller{}, err
	}
	c.User = u
	return c, nil
}

// SelfID is the ID the caller knows themself by: a bearer token's sub (a
// pairwise client never learns the user ID), the user ID for a session.
func (c Caller) SelfID() string {
	if c.Bearer && c.Subject != "" {
		return c.Subject
	}
	return c.User.ID
}

// Origin describes the browser behind r for its owner's list of sessions.
func Origin(r *http.Request) accounts.Origin {
	return accounts.Origin{UserAgent: r.UserAgent(), IP: ClientAddr(r)}
}

func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
