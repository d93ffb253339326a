// Package interaction is the browser sign-in as an explicit interaction:
// a stored, expiring record bound to one browser, created by an
// authorization request (and by the stand-alone sign-in, sign-up and the
// device page through it), that moves through the steps in one table
// (steps.go): identify (password, passkey or connector) → second factor →
// consent → finish. Each step is a small handler in its own file that
// records what it proved and returns to the dispatcher; steps never call
// one another. The pages post to /interaction/{id}; the authorization
// request's parameters stay on the server.
package interaction

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// Paths and parameters.
const (
	// Path is an interaction's page: GET shows its current step, POST
	// answers it.
	Path = "/interaction/{id}"
	// Param names the interaction when the authorization endpoint
	// finishes one (?interaction=ID).
	Param = "interaction"
	// LoginPath is the stand-alone sign-in page.
	LoginPath = "/login"
	// TTL is how long an interaction lives.
	TTL = 10 * time.Minute
)

// Kinds of interaction.
const (
	// KindAuthorize ends by issuing an authorization response.
	KindAuthorize = "authorize"
	// KindContinue ends by going on to a page of this server.
	KindContinue = "continue"
	// KindLink links an upstream identity to the signed-in account.
	KindLink = "link"
)

// State is an interaction's record (sealed at rest: it holds the PKCE
// verifier and nonce of an upstream round trip).
type State struct {
	Kind string `json:"kind"`
	// Request is the authorization request (form-encoded) for
	// KindAuthorize; Continue the page to go on to otherwise.
	Request  string `json:"request,omitempty"`
	Continue string `json:"continue,omitempty"`
	// The client and what the consent step asks for.
	Client        *web.ClientView `json:"client,omitempty"`
	FirstParty    bool            `json:"first_party,omitempty"`
	Scopes        []string        `json:"scopes,omitempty"`
	PromptConsent bool            `json:"prompt_consent,omitempty"`
	// Claims are the claims about the person the app asked for by name
	// (the claims parameter, OpenID Connect Core §5.5): the consent page
	// names them, and consent covers the scopes that carry them.
	Claims []string `json:"claims,omitempty"`
	// LoginHint is the app's login_hint (OpenID Connect Core §3.1.2.1),
	// which prefills the sign-in page's username.
	LoginHint string `json:"login_hint,omitempty"`
	// UILocales is the app's ui_locales (OpenID Connect Core §3.1.2.1, as
	// sent: space-separated BCP 47 tags) and Since when the interaction
	// began: every page of the interaction is in the first of them a
	// catalog has, unless the person picked a language on a page since.
	UILocales string    `json:"ui_locales,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	// Language is the saved language of the account the person proved to
	// be (identify): the pages after it are in it when the app asked for
	// none.
	Language string `json:"language,omitempty"`

	// Who the person proved to be, and how (identify).
	UserID   string    `json:"user_id,omitempty"`
	Username string    `json:"username,omitempty"`
	SID      string    `json:"sid,omitempty"`
	AuthTime time.Time `json:"auth_time,omitzero"`
	AMR      []string  `json:"amr,omitempty"`
	// SecondFactor: the second-factor step is settled.
	SecondFactor bool `json:"second_factor,omitempty"`
	// HasTOTP: the account has an authenticator app. RequireMFA: the app
	// asked for two factors (acr_values). Unmet: it asked, and the account
	// has no second factor (the app hears
	// unmet_authentication_requirements).
	HasTOTP    bool `json:"has_totp,omitempty"`
	RequireMFA bool `json:"require_mfa,omitempty"`
	Unmet      bool `json:"unmet,omitempty"`
	// Admin: the account is an active admin (TONEARM_ADMIN_MFA).
	Admin bool `json:"admin,omitempty"`
	// Granted: the scopes the person granted the app before.
	Granted []string `json:"granted,omitempty"`
	// Consented or Denied: the consent step is answered.
	Consented bool `json:"consented,omitempty"`
	Denied    bool `json:"denied,omitempty"`

	// Upstream is the round trip to a connector in flight (single use).
	Upstream *Round `json:"upstream,omitempty"`
	// Pending is an upstream identity waiting for its account: a
	// username to choose ("username"), or an existing account to sign in
	// to first ("email", "closed").
	Pending *Pending `json:"pending,omitempty"`
	// Created names the account a connector just created, shown once.
	Created    string `json:"created,omitempty"`
	CreatedVia string `json:"created_via,omitempty"`
}

// Round is one round trip to a connector.
type Round struct {
	Connector string `json:"connector"`
	connectors.Round
}

// Pending is an upstream identity waiting for its account.
type Pending struct {
	accounts.Upstream
	ConnectorName string `json:"connector_name"`
	Reason        string `json:"reason"`
}

// Reasons an upstream identity waits.
const (
	PendingUsername = "username" // its username is taken or invalid here
	PendingEmail    = "email"    // an account holds its email: sign in to it to link
	PendingClosed   = "closed"   // registration is closed: sign in to link
)

// Store is where interactions live.
type Store interface {
	CreateInteraction(ctx context.Context, i storage.Interaction) error
	GetInteraction(ctx context.Context, idHash []byte, now time.Time) (storage.Interaction, error)
	UpdateInteraction(ctx context.Context, idHash []byte, now time.Time, update func(storage.Interaction) (storage.Interaction, error)) (storage.Interaction, error)
	DeleteInteraction(ctx context.Context, idHash []byte) error
	GetConsent(ctx context.Context, userID, clientID string) (storage.Consent, error)
	audit.Store
}

// Accounts is what the steps need from accounts.
type Accounts interface {
	web.SessionResolver
	web.SignInAccounts
	GrantApp(ctx context.Context, userID, clientID string, scopes []string) error
	CheckTOTP(ctx context.Context, u storage.User, code string, guard accounts.PasswordGuard) error
	UseRecoveryCode(ctx context.Context, u storage.User, code string, guard accounts.PasswordGuard) error
	SecondFactorPassed(ctx context.Context, userID, method string) error
	SignInLinked(ctx context.Context, up accounts.Upstream) (storage.User, error)
	CreateLinked(ctx context.Context, username string, up accounts.Upstream) (storage.User, error)
	EmailOwner(ctx context.Context, email string) (storage.User, bool, error)
	Link(ctx context.Context, userID string, up accounts.Upstream) error
}

// Connectors is the upstream round trip (provider/connectors).
type Connectors interface {
	List(ctx context.Context) ([]storage.Connector, error)
	Get(ctx context.Context, id string) (storage.Connector, error)
	Start(ctx context.Context, c storage.Connector, round connectors.Round) (string, error)
	Finish(ctx context.Context, c storage.Connector, round connectors.Round, query url.Values) (connectors.Identity, error)
}

// ScopeWords describes scopes for the consent page.
type ScopeWords interface {
	DescribeScopes(ctx context.Context, scopes []string) []string
}

// Config wires New.
type Config struct {
	Site       *web.Site
	Store      Store
	Accounts   Accounts
	Connectors Connectors
	Scopes     ScopeWords
	Passkeys   web.PasskeyLogin // nil: off
	Limiter    *web.LoginLimiter
	Metrics    *web.Metrics
	Box        *seal.Box
	CSRFKey    []byte
	Issuer     string
	// Signups: whether people may sign up (also through a connector),
	// and the policy that creates their accounts.
	Signups Signups
	Logger  *slog.Logger
	Now     func() time.Time
}

// Signups is the account creation policy (accounts.Signups), shared with
// the User API and the sign-up page.
type Signups interface {
	Open() bool
	CreateLinked(ctx context.Context, up accounts.Upstream, lim accounts.SignupLimits) (storage.User, error)
}

// Interactions serves the interaction's pages and the connectors'
// callbacks.
type Interactions struct {
	c       Config
	site    *web.Renderer
	csrf    *web.CSRF
	cookies web.Cookies
	signIn  *web.SignIn
	base    string
	log     *slog.Logger
	now     func() time.Time
}

// New returns the interaction handlers.
func New(c Config) (*Interactions, error) {
	if c.Site == nil || c.Store == nil || c.Accounts == nil || c.Connectors == nil || c.Scopes == nil || c.Limiter == nil ||
		c.Signups == nil || c.Box == nil || len(c.CSRFKey) < 32 || c.Issuer == "" || c.Logger == nil {
		return nil, errors.New("interaction: New needs Site, Store, Accounts, Connectors, Scopes, Limiter, Signups, Box, Issuer, Logger and a 32-byte CSRFKey")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	signIn, err := web.NewSignIn(c.Accounts, c.Passkeys, c.Limiter, c.Issuer, c.Metrics, c.Logger)
	if err != nil {
		return nil, err
	}
	return &Interactions{
		c: c, site: c.Site.WithCSP(web.ProtocolCSP), csrf: web.NewCSRF(c.CSRFKey, c.Issuer), cookies: web.NewCookies(c.Issuer),
		signIn: signIn, base: web.IssuerPath(c.Issuer), log: c.Logger, now: c.Now,
	}, nil
}

// Routes mounts the interaction's page, the stand-alone sign-in and the
// connectors' callback.
func (ix *Interactions) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Path, ix.show)
	mux.HandleFunc("POST "+Path, ix.post(ix.answer))
	mux.HandleFunc("GET "+LoginPath, ix.loginPage)
	mux.HandleFunc("POST "+LoginPath, ix.post(ix.login))
	mux.HandleFunc("GET "+connectors.CallbackPath, ix.callback)
}

// post bounds the body and checks the CSRF token of a POST. (Pages
// answered in the interaction have no form-action in their CSP: Chromium
// applies it to the redirects that follow a form's answer, which end at an
// app or an upstream provider.)
func (ix *Interactions) post(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, web.MaxBodyBytes)
		if err := r.ParseForm(); err != nil {
			ix.fail(w, r, http.StatusRequestEntityTooLarge, locale.M("Too much"), locale.M("This form is too large."))
			return
		}
		if !ix.csrf.Valid(r) {
			ix.fail(w, r, http.StatusForbidden, locale.M("Form expired"), locale.M("This form is no longer valid. Go back to the application and sign in again."))
			return
		}
		h(w, r)
	}
}

// fail shows the error page: title is a marked message (locale.M), msg a
// marked message or a locale.Message.
func (ix *Interactions) fail(w http.ResponseWriter, r *http.Request, status int, title string, msg any) {
	web.ShowErrorPage(w, r, ix.site, status, title, msg)
}

func (ix *Interactions) internal(w http.ResponseWriter, r *http.Request, err error) {
	web.FailPage(w, r, ix.site, ix.log, "sign-in interaction failed", err)
}

// expired answers a request for an interaction that is gone, expired or
// another browser's.
func (ix *Interactions) expired(w http.ResponseWriter, r *http.Request) {
	ix.site.Render(w, r, http.StatusBadRequest, "error.html", ExpiredPage)
}

// ExpiredPage answers a request for an interaction that is gone.
var ExpiredPage = web.ErrorPage{Title: locale.M("This sign-in has expired"),
	Message: locale.M("This sign-in is no longer valid: it took longer than 10 minutes, was finished already, or was started in another browser. Go back to the application and sign in again.")}

// ErrGone is an interaction that is unknown, expired or bound to another
// browser.
var ErrGone = errors.New("interaction: gone, expired or another browser's")

const bindingPurpose = "interaction"

func hashID(id string) []byte {
	h := sha256.Sum256([]byte("interaction:" + id))
	return h[:]
}

func sealContext(idHash []byte) string {
	return "interaction:" + base64.RawURLEncoding.EncodeToString(idHash)
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (ix *Interactions) encode(idHash []byte, st State) ([]byte, error) {
	plain, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	return ix.c.Box.Seal(plain, sealContext(idHash))
}

func (ix *Interactions) decode(i storage.Interaction) (State, error) {
	plain, err := ix.c.Box.Open(i.Data, sealContext(i.IDHash))
	if err != nil {
		return State{}, err
	}
	var st State
	return st, json.Unmarshal(plain, &st)
}

// create stores a new interaction bound to this browser and returns its
// ID.
func (ix *Interactions) create(w http.ResponseWriter, r *http.Request, st State) (string, error) {
	id := randomToken()
	idHash := hashID(id)
	data, err := ix.encode(idHash, st)
	if err != nil {
		return "", err
	}
	now := ix.now().UTC()
	err = ix.c.Store.CreateInteraction(r.Context(), storage.Interaction{
		IDHash: idHash, Binding: ix.csrf.Binding(w, r, bindingPurpose), Data: data, CreatedAt: now, ExpiresAt: now.Add(TTL),
	})
	return id, err
}

// Load returns an interaction of this browser; ErrGone.
func (ix *Interactions) Load(r *http.Request, id string) (State, error) {
	if id == "" || len(id) > 64 {
		return State{}, ErrGone
	}
	i, err := ix.c.Store.GetInteraction(r.Context(), hashID(id), ix.now())
	if errors.Is(err, storage.ErrNotFound) {
		return State{}, ErrGone
	}
	if err != nil {
		return State{}, err
	}
	if b := ix.csrf.BindingOf(r, bindingPurpose); b == nil || subtle.ConstantTimeCompare(b, i.Binding) != 1 {
		return State{}, ErrGone
	}
	return ix.decode(i)
}

// update applies change to an interaction of this browser atomically;
// ErrGone.
func (ix *Interactions) update(r *http.Request, id string, change func(*State) error) (State, error) {
	var out State
	b := ix.csrf.BindingOf(r, bindingPurpose)
	_, err := ix.c.Store.UpdateInteraction(r.Context(), hashID(id), ix.now(), func(i storage.Interaction) (storage.Interaction, error) {
		if b == nil || subtle.ConstantTimeCompare(b, i.Binding) != 1 {
			return i, ErrGone
		}
		st, err := ix.decode(i)
		if err != nil {
			return i, err
		}
		if err := change(&st); err != nil {
			return i, err
		}
		if i.Data, err = ix.encode(i.IDHash, st); err != nil {
			return i, err
		}
		out = st
		return i, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return State{}, ErrGone
	}
	return out, err
}

// Delete ends an interaction (finished).
func (ix *Interactions) Delete(ctx context.Context, id string) error {
	return ix.c.Store.DeleteInteraction(ctx, hashID(id))
}

// URL is the interaction's page.
func (ix *Interactions) URL(id string) string { return ix.url(id) }

func (ix *Interactions) url(id string) string {
	return ix.base + strings.Replace(Path, "{id}", url.PathEscape(id), 1)
}

// FinishURL is where a finished authorization interaction goes: the
// authorization endpoint, which issues the answer.
func (ix *Interactions) FinishURL(id string) string {
	return ix.base + provider.AuthorizePath + "?" + url.Values{Param: {id}}.Encode()
}

// identified records who the person proved to be, and how, and the
// scopes they granted the app before (granted, from GrantedScopes: read
// before the interaction's update, never inside it); the consent step is
// asked again of the decision.
func identified(st *State, user storage.User, sess storage.Session, granted []string) {
	st.UserID, st.Username, st.SID, st.AuthTime, st.AMR = user.ID, user.Username, sess.SID, sess.AuthTime, strings.Fields(sess.AMR)
	st.Granted, st.Consented, st.Denied = granted, false, false
	st.HasTOTP, st.Admin = accounts.HasTOTP(user), user.IsActiveAdmin()
	st.Language = user.Language
}

// GrantedScopes are the scopes the person granted the authorization's
// third-party app before; none are read when the decision would not look
// at them (no app to consent to, or prompt=consent asking anew).
func (ix *Interactions) GrantedScopes(ctx context.Context, st State, userID string) ([]string, error) {
	if st.Kind != KindAuthorize || st.FirstParty || st.PromptConsent || st.Client == nil {
		return nil, nil
	}
	c, err := ix.c.Store.GetConsent(ctx, userID, st.Client.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return c.Scopes, err
}

// identify records a sign-in on the interaction id (whose state was st)
// and goes on to the next step; also runs change, when given.
func (ix *Interactions) identify(w http.ResponseWriter, r *http.Request, id string, st State, user storage.User, sess storage.Session, change func(*State)) {
	granted, err := ix.GrantedScopes(r.Context(), st, user.ID)
	if err != nil {
		ix.internal(w, r, err)
		return
	}
	ix.advance(w, r, id, func(s *State) error {
		identified(s, user, sess, granted)
		if change != nil {
			change(s)
		}
		return nil
	})
}

// Begin starts an interaction for an authorization request and shows its
// first step. A browser whose session satisfies the request (sess, when
// user is not zero) starts identified, with the scopes st.Granted the
// authorization endpoint read for the decision.
func (ix *Interactions) Begin(w http.ResponseWriter, r *http.Request, st State, user storage.User, sess storage.Session) {
	st.Kind = KindAuthorize
	if st.Since.IsZero() {
		st.Since = ix.now().UTC()
	}
	if user.ID != "" {
		identified(&st, user, sess, st.Granted)
	}
	r = WithLanguageOf(r, st)
	id, err := ix.create(w, r, st)
	if err != nil {
		ix.internal(w, r, err)
		return
	}
	ix.dispatch(w, r, id, st, http.StatusOK)
}

// Identified continues an interaction after sign-up: the new account is
// signed in (sess) and the interaction goes on to its next step.
func (ix *Interactions) Identified(w http.ResponseWriter, r *http.Request, id string, user storage.User, sess storage.Session) {
	st, err := ix.Load(r, id)
	if errors.Is(err, ErrGone) {
		http.Redirect(w, r, ix.base+"/account?done=signup", http.StatusSeeOther)
		return
	}
	if err != nil {
		ix.internal(w, r, err)
		return
	}
	ix.identify(w, WithLanguageOf(r, st), id, st, user, sess, nil)
}

// ConnectorButtons lists the "Continue with …" buttons.
func (ix *Interactions) ConnectorButtons(ctx context.Context) []web.ConnectorButton {
	list, err := ix.c.Connectors.List(ctx)
	if err != nil {
		ix.log.Warn("listing connectors", "err", err)
		return nil
	}
	out := make([]web.ConnectorButton, len(list))
	for i, c := range list {
		out[i] = web.ConnectorButton{ID: c.ID, Name: c.Name}
	}
	return out
}

// loaded is the interaction the path names, or ok=false after answering
// that it is gone.
func (ix *Interactions) loaded(w http.ResponseWriter, r *http.Request) (id string, st State, ok bool) {
	id = r.PathValue("id")
	st, err := ix.Load(r, id)
	switch {
	case errors.Is(err, ErrGone):
		ix.expired(w, r)
	case err != nil:
		ix.internal(w, r, err)
	default:
		return id, st, true
	}
	return id, st, false
}

// show is GET /interaction/{id}: the current step.
func (ix *Interactions) show(w http.ResponseWriter, r *http.Request) {
	if id, st, ok := ix.loaded(w, r); ok {
		ix.dispatch(w, WithLanguageOf(r, st), id, st, http.StatusOK)
	}
}

// answer is POST /interaction/{id}: the current step's form.
func (ix *Interactions) answer(w http.ResponseWriter, r *http.Request) {
	id, st, ok := ix.loaded(w, r)
	if !ok {
		return
	}
	r = WithLanguageOf(r, st)
	step := Next(st)
	h := ix.handlers()[step]
	if h.answer == nil {
		ix.dispatch(w, r, id, st, http.StatusOK)
		return
	}
	h.answer(w, r, id, st)
}

// advance saves what a step proved and goes on: straight to the finish
// when that is next, else to the interaction's page (so that reloading
// never posts twice).
func (ix *Interactions) advance(w http.ResponseWriter, r *http.Request, id string, change func(*State) error) {
	st, err := ix.update(r, id, change)
	if errors.Is(err, ErrGone) {
		ix.expired(w, r)
		return
	}
	if err != nil {
		ix.internal(w, r, err)
		return
	}
	if Next(st) == StepFinish {
		ix.finish(w, r, id, st)
		return
	}
	http.Redirect(w, r, ix.url(id), http.StatusSeeOther)
}

// dispatch shows the page of the interaction's next step (or finishes).
func (ix *Interactions) dispatch(w http.ResponseWriter, r *http.Request, id string, st State, status int) {
	step := Next(st)
	if step == StepFinish {
		ix.finish(w, r, id, st)
		return
	}
	ix.handlers()[step].show(w, r, id, st, status)
}

// finish ends the interaction: an authorization goes back to the
// authorization endpoint, which issues the answer and deletes it; a
// stand-alone sign-in goes on to its page.
func (ix *Interactions) finish(w http.ResponseWriter, r *http.Request, id string, st State) {
	if st.Kind == KindAuthorize {
		http.Redirect(w, r, ix.FinishURL(id), http.StatusSeeOther)
		return
	}
	if err := ix.Delete(r.Context(), id); err != nil {
		ix.log.Warn("deleting a finished interaction", "err", err)
	}
	next := st.Continue
	if next == "" {
		next = ix.base + "/account"
	}
	if Decide(FactsOf(st)).Answer == AnswerUnmet {
		// A page asked for two factors and the person has none to give:
		// going on would only ask again.
		next = ix.base + "/account#second-factor"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// localContinue accepts a path on this server to continue to (no open
// redirect).
func (ix *Interactions) localContinue(raw string) string { return web.LocalContinue(ix.base, raw) }

func (ix *Interactions) record(r *http.Request, typ, user string, detail map[string]any) {
	if err := audit.Record(r.Context(), ix.c.Store, ix.now(), typ, user, "", detail); err != nil {
		ix.log.Warn("recording an audit event", "request_id", web.RequestID(r.Context()), "type", typ, "err", err)
	}
}
