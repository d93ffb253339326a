package pages

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// /developer: people register their own apps (third-party, never the
// account or admin scopes), see the secret once, rotate it, edit and
// delete them, and make initial access tokens for RFC 7591 registration.

// AppRegistry manages apps registered by their developers.
type AppRegistry interface {
	RegisterApp(ctx context.Context, spec clients.AppSpec, owner, registration string) (clients.App, error)
	UpdateApp(ctx context.Context, id string, spec clients.AppSpec) (storage.Client, error)
	AppsOf(ctx context.Context, owner string) ([]storage.Client, error)
	RotateAppSecret(ctx context.Context, id string, keepOld time.Duration) (string, error)
	Get(ctx context.Context, id string) (storage.Client, error)
	DeleteApp(ctx context.Context, id string) error
	SetDisabled(ctx context.Context, id string, disabled bool) (storage.Client, error)
}

// InitialTokens manages RFC 7591 initial access tokens.
type InitialTokens interface {
	Create(ctx context.Context, owner, description string, ttl time.Duration) (storage.RegistrationToken, string, error)
	List(ctx context.Context, owner string, all bool) ([]storage.RegistrationToken, error)
	Revoke(ctx context.Context, id, owner string, all bool) error
}

// developerPage is the data of developer.html.
type developerPage struct {
	CSRFToken, Base, Done, Error string
	Me                           storage.User
	Apps                         []appRow
	Tokens                       []tokenRow
	Form                         appForm
	// NewApp, NewSecret and NewToken are shown once.
	NewApp, NewSecret, NewToken string
	RegisterURL                 string
}

type appRow struct {
	View                   web.ClientView
	ID, Type, Scopes       string
	Kind                   string // Type for people: a marked word (appKindWords)
	Created                time.Time
	RedirectURIs           string
	PostLogoutRedirectURIs string
	BackchannelLogoutURI   string
	Disabled               bool
	Confidential           bool
	LogoURI                string
	Keys                   keysForm
}

// tokenRow is an initial access token: Expires is zero when it lasts
// until revoked.
type tokenRow struct {
	ID, Description  string
	Created, Expires time.Time
}

type appForm struct {
	Name, Type, RedirectURIs, LogoURI, ClientURI, PolicyURI, TosURI, Scopes string
	PostLogoutRedirectURIs, BackchannelLogoutURI                            string
	Keys                                                                    keysForm
}

var developerDone = map[string]string{
	"app-updated": locale.M("The app is saved."), "app-deleted": locale.M("The app is deleted, with every token it held."),
	"token-revoked": locale.M("The initial access token is revoked."),
}

func (p *Pages) developerActions() map[string]func(w http.ResponseWriter, r *http.Request, c web.Caller) {
	return map[string]func(w http.ResponseWriter, r *http.Request, c web.Caller){
		"apps":          p.registerApp,
		"apps/update":   p.updateApp,
		"apps/rotate":   p.rotateAppSecret,
		"apps/delete":   p.deleteApp,
		"tokens":        p.createInitialToken,
		"tokens/revoke": p.revokeInitialToken,
	}
}

func (p *Pages) developer(w http.ResponseWriter, r *http.Request) {
	c, ok := p.caller(w, r)
	if !ok {
		return
	}
	p.renderDeveloper(w, r, c, http.StatusOK, developerPage{Done: developerDone[r.URL.Query().Get("done")], Form: appForm{Type: clients.AppWeb}})
}

func (p *Pages) renderDeveloper(w http.ResponseWriter, r *http.Request, c web.Caller, status int, data developerPage) {
	ctx := r.Context()
	lang := p.lang(r)
	data.Done, data.Error = say(lang, data.Done), say(lang, data.Error)
	data.CSRFToken, data.Base, data.Me, data.RegisterURL = p.csrf.Token(w, r), p.base, c.User, strings.TrimRight(p.c.Issuer, "/")+"/oauth2/register"
	if data.Form.Type == "" {
		data.Form.Type = clients.AppWeb
	}
	if data.Form.Keys.SubjectType == "" {
		// An app is a third party: pairwise unless its developer asks.
		data.Form.Keys.SubjectType = storage.SubjectPairwise
	}
	apps, err := p.c.Apps.AppsOf(ctx, c.User.ID)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	for _, a := range apps {
		data.Apps = append(data.Apps, appRow{View: web.ViewOf(a), ID: a.ID, Type: clients.AppKind(a), Kind: appKindWords[clients.AppKind(a)], Created: a.CreatedAt,
			Scopes: strings.Join(a.Scopes, " "), RedirectURIs: strings.Join(a.RedirectURIs, "\n"),
			PostLogoutRedirectURIs: strings.Join(a.PostLogoutRedirectURIs, "\n"), BackchannelLogoutURI: a.BackchannelLogoutURI, Disabled: a.Disabled, Confidential: !a.Public && clients.AuthMethod(a) != clients.AuthPrivateKeyJWT, LogoURI: a.LogoURI,
			Keys: keysFormFrom(a, "-"+a.ID)})
	}
	tokens, err := p.c.InitialTokens.List(ctx, c.User.ID, false)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	for _, t := range tokens {
		data.Tokens = append(data.Tokens, tokenRow{ID: t.ID, Description: t.Description, Created: t.CreatedAt, Expires: t.ExpiresAt})
	}
	p.site.Render(w, r, status, "developer.html", data)
}

func appFormOf(r *http.Request) appForm {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return appForm{Name: v("name"), Type: v("type"), RedirectURIs: r.PostFormValue("redirect_uris"), LogoURI: v("logo_uri"),
		ClientURI: v("client_uri"), PolicyURI: v("policy_uri"), TosURI: v("tos_uri"), Scopes: v("scopes"),
		PostLogoutRedirectURIs: r.PostFormValue("post_logout_redirect_uris"), BackchannelLogoutURI: v("backchannel_logout_uri"), Keys: keysFormOf(r)}
}

func (f appForm) spec() clients.AppSpec {
	return clients.AppSpec{Type: f.Type, AuthMethod: f.Keys.AuthMethod, Keys: f.Keys.keys(), RedirectURIs: lines(f.RedirectURIs), Scopes: strings.Fields(f.Scopes),
		PostLogoutRedirectURIs: lines(f.PostLogoutRedirectURIs), BackchannelLogoutURI: f.BackchannelLogoutURI,
		Display: clients.Display{Name: f.Name, LogoURI: f.LogoURI, ClientURI: f.ClientURI, PolicyURI: f.PolicyURI, TosURI: f.TosURI}}
}

// registerApp registers an app for the signed-in person and shows its
// client ID and secret (once).
func (p *Pages) registerApp(w http.ResponseWriter, r *http.Request, c web.Caller) {
	f := appFormOf(r)
	fail := func(status int, msg string) {
		kept := f
		kept.RedirectURIs, kept.PostLogoutRedirectURIs = withoutOverlong(f.RedirectURIs), withoutOverlong(f.PostLogoutRedirectURIs)
		p.renderDeveloper(w, r, c, status, developerPage{Form: kept, Error: msg})
	}
	if err := p.c.Limiter.AppRegistration(r.Context(), c.User.ID); err != nil {
		status, msg := p.message(w, r, err)
		p.c.Metrics.AppRegistration(storage.RegisteredByDeveloper, "throttled")
		fail(status, msg)
		return
	}
	app, err := p.c.Apps.RegisterApp(r.Context(), f.spec(), c.User.ID, storage.RegisteredByDeveloper)
	if err != nil {
		status, msg := p.message(w, r, err)
		p.refusedApp(r, err, c.User.ID, "")
		fail(status, msg)
		return
	}
	p.c.Metrics.AppRegistration(storage.RegisteredByDeveloper, "registered")
	p.renderDeveloper(w, r, c, http.StatusOK, developerPage{NewApp: app.Client.ID, NewSecret: app.Secret,
		Done: registeredNotice(app.Secret != "")})
}

// registeredNotice is the notice after registering an app: two whole
// sentences, not one cut in two, so each translates as a whole.
func registeredNotice(withSecret bool) string {
	if withSecret {
		return locale.M("Your app is registered. Put its client ID in your app's configuration with the secret below, shown this once.")
	}
	return locale.M("Your app is registered. Put its client ID in your app's configuration.")
}

// ownApp returns the signed-in person's app named by the form, or
// answers 404.
func (p *Pages) ownApp(w http.ResponseWriter, r *http.Request, c web.Caller) (storage.Client, bool) {
	app, err := p.c.Apps.Get(r.Context(), r.PostFormValue("client_id"))
	if err != nil || app.Owner != c.User.ID || c.User.ID == "" {
		p.fail(w, r, http.StatusNotFound, locale.M("No such app"), locale.M("You have no app with this client ID."))
		return storage.Client{}, false
	}
	return app, true
}

func (p *Pages) updateApp(w http.ResponseWriter, r *http.Request, c web.Caller) {
	app, ok := p.ownApp(w, r, c)
	if !ok {
		return
	}
	f := appFormOf(r)
	f.Type = clients.AppKind(app)
	if _, err := p.c.Apps.UpdateApp(r.Context(), app.ID, f.spec()); err != nil {
		status, msg := p.message(w, r, err)
		p.refusedApp(r, err, c.User.ID, app.ID)
		p.renderDeveloper(w, r, c, status, developerPage{Error: msg})
		return
	}
	p.forgetClient(app.ID)
	p.c.Metrics.AppRegistration(storage.RegisteredByDeveloper, "updated")
	p.done(w, r, DeveloperPath, "app-updated")
}

// refusedApp counts and records a developer's registration or edit that
// the registry refused, as the registration endpoint does for RFC
// 7591/7592 (app.registration_refused with the developer, the app when it
// exists, and RFC 7591's error code): the same refusal is on record
// whichever door it came through. A failure that is not the metadata's
// (the database) is no refusal.
func (p *Pages) refusedApp(r *http.Request, err error, developer, app string) {
	if !fault.Is(err, fault.Invalid) {
		return
	}
	p.c.Metrics.AppRegistration(storage.RegisteredByDeveloper, "refused")
	p.record(r, audit.AppRefused, developer, app, map[string]any{"how": storage.RegisteredByDeveloper, "error": clients.RefusalCode(err)})
}

func (p *Pages) rotateAppSecret(w http.ResponseWriter, r *http.Request, c web.Caller) {
	app, ok := p.ownApp(w, r, c)
	if !ok {
		return
	}
	hours, _ := strconv.Atoi(r.PostFormValue("keep_old_hours"))
	secret, err := p.c.Apps.RotateAppSecret(r.Context(), app.ID, time.Duration(hours)*time.Hour)
	if err != nil {
		status, msg := p.message(w, r, err)
		p.renderDeveloper(w, r, c, status, developerPage{Error: msg})
		return
	}
	p.forgetClient(app.ID)
	p.renderDeveloper(w, r, c, http.StatusOK, developerPage{NewApp: app.ID, NewSecret: secret, Done: locale.M("A new secret, shown this once.")})
}

func (p *Pages) deleteApp(w http.ResponseWriter, r *http.Request, c web.Caller) {
	app, ok := p.ownApp(w, r, c)
	if !ok {
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		p.renderDeveloper(w, r, c, http.StatusBadRequest, developerPage{Error: locale.M("Tick the box to confirm: the app and every token it holds go.")})
		return
	}
	if err := p.c.Apps.DeleteApp(r.Context(), app.ID); err != nil {
		p.internal(w, r, err)
		return
	}
	p.forgetClient(app.ID)
	p.c.Metrics.AppRegistration(storage.RegisteredByDeveloper, "deleted")
	p.done(w, r, DeveloperPath, "app-deleted")
}

// createInitialToken makes an initial access token for RFC 7591
// registration (apps registered with it are the person's), shown once.
func (p *Pages) createInitialToken(w http.ResponseWriter, r *http.Request, c web.Caller) {
	days, _ := strconv.Atoi(r.PostFormValue("expires_days"))
	if days < 0 || days > 365 {
		p.renderDeveloper(w, r, c, http.StatusBadRequest, developerPage{Error: locale.M("The token lasts 0 (until revoked) to 365 days.")})
		return
	}
	_, value, err := p.c.InitialTokens.Create(r.Context(), c.User.ID, r.PostFormValue("description"), time.Duration(days)*24*time.Hour)
	if err != nil {
		status, msg := p.message(w, r, err)
		p.renderDeveloper(w, r, c, status, developerPage{Error: msg})
		return
	}
	p.renderDeveloper(w, r, c, http.StatusOK, developerPage{NewToken: value, Done: locale.M("Your initial access token, shown this once.")})
}

func (p *Pages) revokeInitialToken(w http.ResponseWriter, r *http.Request, c web.Caller) {
	err := p.c.InitialTokens.Revoke(r.Context(), r.PostFormValue("token_id"), c.User.ID, false)
	if errors.Is(err, clients.ErrTokenUnknown) {
		p.fail(w, r, http.StatusNotFound, locale.M("No such token"), locale.M("You have no initial access token with this ID."))
		return
	}
	if err != nil {
		p.internal(w, r, err)
		return
	}
	p.done(w, r, DeveloperPath, "token-revoked")
}

// withoutOverlong is a form's list of URIs as it is shown again after a
// refusal: without the lines longer than any URI may be (the message says
// what was wrong; a 9,000-character probe is not echoed back).
func withoutOverlong(list string) string {
	var kept []string
	for _, l := range strings.Split(list, "\n") {
		if utf8.RuneCountInString(l) <= clients.MaxURILength+1 {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "\n")
}

// appKindWords name an app's type (clients.AppKind) on the page, marked
// for the catalogs; the English words are the types' names.
var appKindWords = map[string]string{
	clients.AppWeb:    locale.M("web"),
	clients.AppNative: locale.M("native"),
	clients.AppDevice: locale.M("device"),
}
