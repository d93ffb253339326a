// Package pages serves tonearm's pages for people outside an
// authorization request: sign-up, a stand-alone sign-in, the account
// centre and the admin console. Every page is an html/template with a
// typed data struct; every change is a POST with a CSRF token that
// answers with a redirect (or the page again, with the error next to its
// field); destructive ones need a ticked confirmation. No page runs
// script but the passkey one (templates/static/passkey.js), on the pages
// that offer passkeys.
package pages

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/device"
	"github.com/tonearm-idp/tonearm/provider/keys"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
	"github.com/tonearm-idp/tonearm/web/interaction"
)

// Paths of the pages (under the issuer's path).
const (
	SignupPath  = web.SignupPath
	LoginPath   = "/login"
	AccountPath = "/account"
	AdminPath   = "/admin"
	// DeveloperPath is where people register their own apps.
	DeveloperPath = "/developer"
)

// Accounts is what the pages need from accounts.
type Accounts interface {
	web.SessionResolver
	web.SignInAccounts
	Create(ctx context.Context, n accounts.NewUser) (storage.User, error)
	UpdateOwnProfile(ctx context.Context, userID string, p accounts.ProfileUpdate, proof accounts.Reauth) (storage.User, error)
	ResendEmailVerification(ctx context.Context, userID string) error
	AssociateToken(ctx context.Context, userID, token string) (string, error)
	UnlinkListenBrainz(ctx context.Context, userID string) error
	ListenBrainzToken(u storage.User) (string, error)
	ChangePassword(ctx context.Context, userID, current, next string, guard accounts.PasswordGuard) error
	Sessions(ctx context.Context, userID string) ([]storage.Session, error)
	EndSessionBySID(ctx context.Context, userID, sid string) error
	EndOtherSessions(ctx context.Context, userID, keepSID string) (int, error)
	ConnectedApps(ctx context.Context, userID string) ([]storage.Consent, error)
	RevokeApp(ctx context.Context, userID, clientID string) error
	SignOutOfEveryApp(ctx context.Context, userID string) error
	GrantApp(ctx context.Context, userID, clientID string, scopes []string) error
	DeleteAccount(ctx context.Context, userID string, proof accounts.Reauth) error
	ListUsers(ctx context.Context, f storage.UserFilter) ([]storage.User, error)
	AdminUpdate(ctx context.Context, userID string, c accounts.AdminChange) (storage.User, error)
	AdminSetPassword(ctx context.Context, userID, password string) error
	DeleteUser(ctx context.Context, userID string) error
	Passkeys(ctx context.Context, userID string) ([]storage.Passkey, error)
	RenamePasskey(ctx context.Context, userID string, id []byte, name string) error
	RemovePasskey(ctx context.Context, userID string, id []byte) error
	SetPasskeyOnly(ctx context.Context, userID string, current storage.Session) error
	SetPassword(ctx context.Context, userID, password string, proof accounts.Reauth) error
	AdminRemovePasskeys(ctx context.Context, userID string) (int64, error)
	SecondFactors
	LinkedIdentities(ctx context.Context, userID string) ([]storage.LinkedIdentity, error)
	Unlink(ctx context.Context, userID, connectorID, kind string) error
}

// ClientRegistry is what the console needs to manage clients.
type ClientRegistry interface {
	Create(ctx context.Context, spec clients.Spec) (storage.Client, string, error)
	Update(ctx context.Context, id string, change func(*clients.Spec)) (storage.Client, error)
	RotateSecret(ctx context.Context, id string, keepOld time.Duration) (string, error)
	Get(ctx context.Context, id string) (storage.Client, error)
	List(ctx context.Context) ([]storage.Client, error)
	Delete(ctx context.Context, id string) error
}

// APIRegistry is what the console needs to manage resource servers.
type APIRegistry interface {
	Create(ctx context.Context, spec apis.Spec) (storage.API, error)
	Update(ctx context.Context, id string, u apis.Update) (storage.API, error)
	List(ctx context.Context) ([]storage.API, error)
	Delete(ctx context.Context, id string) error
}

// Recovery runs the password-reset and email-verification flows, with
// their limits, for the JSON API and these pages alike (accounts.Recovery).
type Recovery interface {
	StartReset(ctx context.Context, email string, lim accounts.RecoveryLimits) error
	FinishReset(ctx context.Context, token, password string, lim accounts.RecoveryLimits) error
	VerifyEmail(ctx context.Context, token string, lim accounts.RecoveryLimits) (storage.User, error)
}

// Signups decides who may create which account (accounts.Signups), for
// the User API, the connectors and the sign-up page alike.
type Signups interface {
	Open() bool
	Create(ctx context.Context, req accounts.SignUp, who accounts.Requester, lim accounts.SignupLimits) (storage.User, error)
}

// Events records what admins do and lists a person's recent account
// activity.
type Events interface {
	audit.Store
	ListEvents(ctx context.Context, f storage.EventFilter) ([]storage.Event, error)
}

// Keys is what the console needs of the signing keys.
type Keys interface {
	Published() []*keys.Key
	Rotate(ctx context.Context) ([]*keys.Key, error)
}

// ScopeWords describes scopes for people (the consent page's words).
type ScopeWords interface {
	DescribeScopes(ctx context.Context, scopes []string) []string
}

// Config wires New.
type Config struct {
	Site     *web.Site
	Accounts Accounts
	Clients  ClientRegistry
	APIs     APIRegistry
	Keys     Keys
	Recovery Recovery
	// Devices serves the device page (nil: no device grant).
	Devices *device.Codes
	// Passkeys offers passkeys on the sign-in and account pages (nil:
	// off).
	Passkeys Passkeys
	Events   Events
	Scopes   ScopeWords
	// Interactions runs sign-ins (sign-up continues one; the account page
	// links connectors through one).
	Interactions *interaction.Interactions
	Connectors   ConnectorRegistry
	// Apps and InitialTokens serve /developer (apps registered by their
	// developers, RFC 7591 initial access tokens).
	Apps          AppRegistry
	InitialTokens InitialTokens
	Limiter       *web.LoginLimiter
	Metrics       *web.Metrics
	CSRFKey       []byte
	Issuer        string
	// Signups is the account creation policy (and whether registration
	// is open).
	Signups Signups
	// AdminMFA required: admins use the console only with a second
	// factor.
	AdminMFA config.AdminMFA
	// ForgetClient drops a deleted client from the protocol's cache.
	ForgetClient func(id string)
	Logger       *slog.Logger
	Now          func() time.Time
}

// Pages serves the pages.
type Pages struct {
	c       Config
	site    *web.Site
	csrf    *web.CSRF
	cookies web.Cookies
	signIn  *web.SignIn
	base    string
	log     *slog.Logger
	now     func() time.Time
}

// New returns the pages; every dependency is required but Metrics and
// ForgetClient.
func New(c Config) (*Pages, error) {
	if c.Site == nil || c.Accounts == nil || c.Clients == nil || c.APIs == nil || c.Keys == nil || c.Recovery == nil || c.Signups == nil || c.Events == nil ||
		c.Scopes == nil || c.Interactions == nil || c.Connectors == nil || c.Apps == nil || c.InitialTokens == nil || c.Limiter == nil || c.Logger == nil || len(c.CSRFKey) < 32 || c.Issuer == "" {
		return nil, errors.New("pages: New needs Site, Accounts, Clients, APIs, Keys, Recovery, Signups, Events, Scopes, Limiter, Logger, Issuer and a 32-byte CSRFKey")
	}
	if c.ForgetClient == nil {
		c.ForgetClient = func(string) {}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	signIn, err := web.NewSignIn(c.Accounts, c.Passkeys, c.Limiter, c.Issuer, c.Metrics, c.Logger)
	if err != nil {
		return nil, err
	}
	return &Pages{
		c: c, site: c.Site, csrf: web.NewCSRF(c.CSRFKey, c.Issuer), cookies: web.NewCookies(c.Issuer), signIn: signIn,
		base: web.IssuerPath(c.Issuer), log: c.Logger, now: c.Now,
	}, nil
}

// Routes mounts the pages.
func (p *Pages) Routes(mux *http.ServeMux) {
	mux.HandleFunc(SignupPath, p.form(p.signup))
	mux.HandleFunc(web.ForgotPath, p.forgot)
	mux.HandleFunc(web.ResetPath, p.reset)
	mux.HandleFunc(web.VerifyEmailPath, p.verifyEmail)
	mux.HandleFunc(provider.DevicePath, p.form(p.device))
	mux.HandleFunc("GET "+AccountPath, p.account)
	mux.HandleFunc("POST "+LanguagePath, p.pickLanguage)
	for action, h := range p.accountActions() {
		mux.HandleFunc("POST "+AccountPath+"/"+action, p.post(h))
	}
	for action, h := range p.passkeyActions() {
		mux.HandleFunc("POST "+AccountPath+"/"+action, p.post(h))
	}
	if p.c.Passkeys != nil {
		mux.HandleFunc("POST "+web.PasskeyOptionsPath, p.post(p.signIn.PasskeyOptions))
	}
	mux.HandleFunc("GET "+AdminPath, p.admin(p.consoleHome))
	mux.HandleFunc("GET "+AdminPath+"/users", p.admin(p.usersPage))
	mux.HandleFunc("GET "+AdminPath+"/users/{id}", p.admin(p.userPage))
	mux.HandleFunc("POST "+AdminPath+"/users/create", p.post(p.admin(p.createUser)))
	mux.HandleFunc("POST "+AdminPath+"/users/{id}/{action}", p.post(p.admin(p.userAction)))
	mux.HandleFunc("GET "+AdminPath+"/clients", p.admin(p.clientsPage))
	mux.HandleFunc("POST "+AdminPath+"/clients", p.post(p.admin(p.createClient)))
	mux.HandleFunc("POST "+AdminPath+"/clients/delete", p.post(p.admin(p.deleteClient)))
	mux.HandleFunc("GET "+AdminPath+"/clients/{id}", p.admin(p.clientPage))
	mux.HandleFunc("POST "+AdminPath+"/clients/{id}/update", p.post(p.admin(p.updateClient)))
	mux.HandleFunc("POST "+AdminPath+"/clients/{id}/rotate", p.post(p.admin(p.rotateClientSecret)))
	mux.HandleFunc("POST "+AdminPath+"/clients/{id}/disabled", p.post(p.admin(p.setClientDisabled)))
	mux.HandleFunc("GET "+DeveloperPath, p.developer)
	for action, h := range p.developerActions() {
		mux.HandleFunc("POST "+DeveloperPath+"/"+action, p.post(p.signedIn(h)))
	}
	mux.HandleFunc("GET "+AdminPath+"/apis", p.admin(p.apisPage))
	mux.HandleFunc("POST "+AdminPath+"/apis", p.post(p.admin(p.createAPI)))
	mux.HandleFunc("POST "+AdminPath+"/apis/update", p.post(p.admin(p.updateAPI)))
	mux.HandleFunc("POST "+AdminPath+"/apis/delete", p.post(p.admin(p.deleteAPI)))
	mux.HandleFunc("GET "+AdminPath+"/connectors", p.admin(p.connectorsPage))
	mux.HandleFunc("POST "+AdminPath+"/connectors", p.post(p.admin(p.createConnector)))
	mux.HandleFunc("POST "+AdminPath+"/connectors/update", p.post(p.admin(p.updateConnector)))
	mux.HandleFunc("POST "+AdminPath+"/connectors/delete", p.post(p.admin(p.deleteConnector)))
	mux.HandleFunc("GET "+AdminPath+"/keys", p.admin(p.keysPage))
	mux.HandleFunc("POST "+AdminPath+"/keys/rotate", p.post(p.admin(p.rotateKeys)))
}

// form admits GET and POST with a bounded body.
func (p *Pages) form(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p.site.Admit(w, r) {
			h(w, r)
		}
	}
}

// post bounds the body and checks the CSRF token of a POST.
func (p *Pages) post(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, web.MaxBodyBytes)
		if err := r.ParseForm(); err != nil {
			p.fail(w, r, http.StatusRequestEntityTooLarge, locale.M("Too much"), locale.M("This form is too large."))
			return
		}
		if !p.csrf.Valid(r) {
			p.formExpired(w, r)
			return
		}
		h(w, r)
	}
}

// formExpired answers a POST whose CSRF token is missing or not this
// browser's.
func (p *Pages) formExpired(w http.ResponseWriter, r *http.Request) {
	p.fail(w, r, http.StatusForbidden, locale.M("Form expired"), locale.M("This form is no longer valid. Go back, reload the page and try again."))
}

// fail shows the error page: title is a marked message (locale.M), msg a
// marked message or a locale.Message.
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, status int, title string, msg any) {
	web.ShowErrorPage(w, r, p.site, status, title, msg)
}

// internal logs an unexpected error once and shows a page without it.
func (p *Pages) internal(w http.ResponseWriter, r *http.Request, err error) {
	web.FailPage(w, r, p.site, p.log, "page failed", err)
}

// caller is the signed-in person, or ok=false after redirecting to the
// sign-in page (or failing).
func (p *Pages) caller(w http.ResponseWriter, r *http.Request) (web.Caller, bool) {
	c, err := web.SessionCaller(r.Context(), r, p.cookies, p.c.Accounts)
	if errors.Is(err, web.ErrNoCaller) {
		back := r.URL.Path
		if r.URL.Path == provider.DevicePath && r.Method == http.MethodGet {
			back = deviceContinue(r)
		}
		if r.Method != http.MethodGet {
			back = AccountPath
			if strings.HasPrefix(r.URL.Path, AdminPath) {
				back = AdminPath
			}
		}
		http.Redirect(w, r, p.base+LoginPath+"?"+url.Values{web.ContinueParam: {p.base + back}}.Encode(), http.StatusSeeOther)
		return web.Caller{}, false
	}
	if err != nil {
		p.internal(w, r, err)
		return web.Caller{}, false
	}
	audit.SetActor(r.Context(), c.User.ID, "")
	// The pages of a signed-in person are in their saved language, over
	// the picker's cookie and Accept-Language (issue 35). In place: every
	// handler renders with the request it passed here.
	*r = *web.WithAccountLanguage(r, c.User.Language)
	if c.User.Language == "" {
		// A mail a change sends (a new address's verification link) is
		// in the page's language when the account has none saved.
		*r = *r.WithContext(locale.WithTag(r.Context(), p.site.Lang(r).Tag))
	}
	return c, true
}

// done redirects after a change, naming what was done.
func (p *Pages) done(w http.ResponseWriter, r *http.Request, path, what string) {
	http.Redirect(w, r, p.base+path+"?"+url.Values{"done": {what}}.Encode(), http.StatusSeeOther)
}

// localContinue accepts a path on this server to continue to (no open
// redirect).
func (p *Pages) localContinue(raw string) string { return web.LocalContinue(p.base, raw) }

// fieldErrors are messages shown next to their fields ("" key: the form).
type fieldErrors map[string]string

// message words err for a page; unknown errors are logged and worded
// vaguely.
func (p *Pages) message(w http.ResponseWriter, r *http.Request, err error) (int, string) {
	status, msg, ok := web.ErrorAnswer(w, err)
	if !ok {
		p.log.Error("page action failed", "request_id", web.RequestID(r.Context()), "path", r.URL.Path, "err", err)
		return status, locale.M("Something went wrong on our side. Try again later.")
	}
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return status, msg
}

// said is message for a page that translates it: err's message in r's
// language (web.Said), or, for an error it does not know (logged), a
// marked message.
func (p *Pages) said(w http.ResponseWriter, r *http.Request, err error) (int, any) {
	status, msg, ok := web.ErrorAnswer(w, err)
	if !ok {
		p.log.Error("page action failed", "request_id", web.RequestID(r.Context()), "path", r.URL.Path, "err", err)
		return status, locale.M("Something went wrong on our side. Try again later.")
	}
	return status, web.Said(p.site.Lang(r), msg)
}

func (p *Pages) record(r *http.Request, typ, user, client string, detail map[string]any) {
	if err := audit.Record(r.Context(), p.c.Events, p.now(), typ, user, client, detail); err != nil {
		p.log.Warn("recording an audit event", "request_id", web.RequestID(r.Context()), "type", typ, "err", err)
	}
}
