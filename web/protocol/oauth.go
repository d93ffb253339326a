package protocol

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
	"github.com/tonearm-idp/tonearm/web/interaction"
)

// OAuthAccounts is what the protocol endpoints need from accounts.
type OAuthAccounts interface {
	web.SessionResolver
	Authenticate(ctx context.Context, username, password string, guard accounts.PasswordGuard) (storage.User, error)
	NewSession(ctx context.Context, userID, amr string, from accounts.Origin) (string, storage.Session, error)
	EndSession(ctx context.Context, token string) error
	EndSessionBySID(ctx context.Context, userID, sid string) error
	ListenBrainzToken(u storage.User) (string, error)
	// GrantApp records what the person granted a client (also for apps
	// that ask no consent: they are connected apps all the same).
	GrantApp(ctx context.Context, userID, clientID string, scopes []string) error
}

// ConsentStore reads what users granted clients.
type ConsentStore interface {
	GetConsent(ctx context.Context, userID, clientID string) (storage.Consent, error)
}

// OAuthConfig wires NewOAuth.
type OAuthConfig struct {
	Provider *provider.Provider
	Site     *web.Site
	Accounts OAuthAccounts
	Consents ConsentStore
	Limiter  *web.LoginLimiter
	CSRFKey  []byte
	Logger   *slog.Logger
	Now      func() time.Time
	// Metrics counts tokens and sign-ins (optional).
	Metrics *web.Metrics
	// Registration: when open, the login page links to the sign-up page.
	Registration config.Registration
	// Passkeys offers "Sign in with a passkey" on the login page (nil:
	// off).
	Passkeys web.PasskeyLogin
	// Interactions runs the sign-in steps (login, consent) of requests
	// that need them.
	Interactions *interaction.Interactions
}

// OAuth serves the OpenID Connect endpoints: discovery, JWKS, the
// authorization endpoint with its login and consent pages, token and
// userinfo.
type OAuth struct {
	ix           *interaction.Interactions
	p            *provider.Provider
	accounts     OAuthAccounts
	consents     ConsentStore
	limiter      *web.LoginLimiter
	csrf         *web.CSRF
	cookies      web.Cookies
	pages        *web.Renderer
	log          *slog.Logger
	now          func() time.Time
	metrics      *web.Metrics
	registration config.Registration
	action       string // the login and consent forms post here
	parKey       []byte // keys the cookies that bind a pushed request to its browser
	base         string // the issuer's path prefix
}

// NewOAuth returns the protocol endpoints; it parses the page templates and
// fails if any is missing or broken.
func NewOAuth(c OAuthConfig) (*OAuth, error) {
	if c.Provider == nil || c.Site == nil || c.Accounts == nil || c.Consents == nil || c.Limiter == nil || c.Logger == nil || len(c.CSRFKey) < 32 {
		return nil, errors.New("web: OAuth needs Provider, Site, Accounts, Consents, Limiter, Logger and a 32-byte CSRFKey")
	}
	pages := c.Site.WithCSP(web.ProtocolCSP)
	if c.Interactions == nil {
		return nil, errors.New("web: OAuth needs Interactions")
	}
	iss, err := url.Parse(c.Provider.Issuer())
	if err != nil {
		return nil, err
	}
	o := &OAuth{
		ix: c.Interactions,
		p:  c.Provider, accounts: c.Accounts, consents: c.Consents, limiter: c.Limiter,
		csrf: web.NewCSRF(c.CSRFKey, c.Provider.Issuer()), cookies: web.NewCookies(c.Provider.Issuer()),
		pages: pages, log: c.Logger, now: c.Now, metrics: c.Metrics, registration: c.Registration,
		action: strings.TrimRight(iss.Path, "/") + provider.AuthorizePath,
		base:   strings.TrimRight(iss.Path, "/"),
		parKey: c.CSRFKey,
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o, nil
}

// Routes mounts the endpoints on mux.
func (o *OAuth) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+provider.DiscoveryPath, o.discovery)
	mux.HandleFunc("GET "+provider.JWKSPath, o.jwks)
	mux.HandleFunc(provider.AuthorizePath, o.authorize)
	mux.HandleFunc(provider.TokenPath, cors(o.token))
	mux.HandleFunc(provider.UserinfoPath, cors(o.userinfo))
	mux.HandleFunc(provider.IntrospectPath, o.introspect)
	mux.HandleFunc(provider.RevokePath, cors(o.revoke))
	mux.HandleFunc(provider.LogoutPath, o.logout)
	mux.HandleFunc("POST "+provider.PARPath, o.par)
	mux.HandleFunc("POST "+provider.DeviceAuthorizationPath, o.deviceAuthorization)
}

// cors opens an endpoint to browser apps on any origin (single-page apps
// exchange codes and call userinfo themselves). These endpoints never read
// cookies — the caller proves itself with PKCE, a client secret or a bearer
// token — so a wildcard origin without credentials grants a foreign page
// nothing it does not already hold.
func cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") == "" {
			h(w, r)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h(w, r)
	}
}

func (o *OAuth) discovery(w http.ResponseWriter, r *http.Request) {
	// Five minutes: scopes_supported follows the registered APIs.
	web.ServeCached(w, r, o.p.Discovery(r.Context()), "", 300)
}

func (o *OAuth) jwks(w http.ResponseWriter, r *http.Request) {
	body, etag := o.p.JWKS()
	// Short: a rotated key must reach resource servers well within the
	// overlap window.
	web.ServeCached(w, r, body, etag, 300)
}

// page renders an HTML page.
func (o *OAuth) page(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	o.pages.Render(w, r, status, name, data)
}

// formFields are the fields the login and consent forms add; everything
// else in a form posted back is the original authorization request.
var formFields = map[string]bool{"username": true, "password": true, "csrf_token": true, "tonearm_action": true, "decision": true}

func hiddenFields(form url.Values) []web.HiddenField {
	names := make([]string, 0, len(form))
	for k := range form {
		if !formFields[k] {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var out []web.HiddenField
	for _, k := range names {
		for _, v := range form[k] {
			out = append(out, web.HiddenField{Name: k, Value: v})
		}
	}
	return out
}

// admitRequest applies what tonearm asks of every authorization request,
// direct or pushed, before anyone signs in: a registered redirect URI, and
// PKCE with S256 from every client but a legacy confidential one
// registered --allow-no-pkce (OAuth 2.1, RFC 9700 §2.1.1).
func (o *OAuth) admitRequest(ctx context.Context, ar fosite.AuthorizeRequester) error {
	if !redirectAllowed(ar) {
		return fosite.ErrInvalidRequest.WithHint("The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls.")
	}
	client, ok := ar.GetClient().(*fositestore.Client)
	if !ok {
		return fosite.ErrServerError.WithDebug("unexpected client type")
	}
	if challenge, method := ar.GetRequestForm().Get("code_challenge"), ar.GetRequestForm().Get("code_challenge_method"); challenge == "" {
		if !client.AllowNoPKCE {
			return fosite.ErrInvalidRequest.WithHint("Clients must include a code_challenge (PKCE, S256) when performing the authorize code flow, but it is missing.")
		}
		// Without PKCE, state is what protects the client from CSRF
		// (RFC 6749 §10.12); with PKCE it is optional (OAuth 2.1).
		if ar.GetState() == "" {
			return fosite.ErrInvalidState.WithHint("A request without PKCE must carry a state parameter.")
		}
	} else if method != "S256" {
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256; plain is not supported.")
	}
	return nil
}

func promptValues(ar fosite.AuthorizeRequester) map[string]bool {
	out := map[string]bool{}
	for _, p := range strings.Fields(ar.GetRequestForm().Get("prompt")) {
		out[p] = true
	}
	return out
}

// authorize is the authorization endpoint. A browser whose session
// satisfies the request (and who granted the app before) gets the answer
// at once; otherwise the request is stored in a sign-in interaction
// (web/interaction) whose pages post to it, and the interaction comes back
// here (?interaction=ID) to be answered once its steps are done.
func (o *OAuth) authorize(w http.ResponseWriter, r *http.Request) {
	if !o.pages.Admit(w, r) {
		return
	}
	ctx := r.Context()
	// Admit bounded the body; the query is bounded here before parsing
	// (the server's header limit bounds it too, but not behind every
	// listener).
	if len(r.URL.RawQuery) > web.MaxBodyBytes {
		o.page(w, r, http.StatusRequestURITooLong, "error.html", web.ErrorPage{Title: "This sign-in request is invalid", Message: "The request is too long."})
		return
	}
	if err := r.ParseForm(); err != nil {
		o.page(w, r, http.StatusBadRequest, "error.html", web.ErrorPage{Title: "This sign-in request is invalid", Message: "The request could not be read."})
		return
	}
	if r.Form.Has(interaction.Param) {
		o.finishInteraction(w, r)
		return
	}
	req, ok := o.readRequest(w, r)
	if !ok {
		return
	}
	ar, client := req.ar, req.client
	prompt := promptValues(ar)
	caller, err := web.SessionCaller(ctx, r, o.cookies, o.accounts)
	if err != nil && !errors.Is(err, web.ErrNoCaller) {
		o.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	signedIn := err == nil
	needLogin := !signedIn || prompt["login"]
	if signedIn {
		if maxAge, err := strconv.ParseInt(ar.GetRequestForm().Get("max_age"), 10, 64); err == nil && maxAge >= 0 &&
			o.now().Sub(caller.Session.AuthTime) > time.Duration(maxAge)*time.Second {
			needLogin = true
		}
	}
	needConsent := !client.FirstParty && (prompt["consent"] || !signedIn || !o.consented(ctx, caller.User.ID, client.GetID(), req.requested))
	// Two factors: always for an account with an authenticator app, and
	// for any account when the app asks (acr_values, step-up), even
	// within a session that proved one factor.
	requireMFA := slices.Contains(strings.Fields(ar.GetRequestForm().Get("acr_values")), accounts.ACRMultiFactor)
	needSecond := signedIn && !slices.Contains(strings.Fields(caller.Session.AMR), accounts.AMRMFA) &&
		(accounts.HasTOTP(caller.User) || requireMFA)
	if !needLogin && !needConsent && !needSecond {
		o.issue(w, r, req, caller)
		return
	}
	if prompt["none"] {
		switch {
		case needLogin:
			o.authorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("The user is not signed in."))
		case needSecond:
			o.authorizeError(w, r, ar, fosite.ErrInteractionRequired.WithHint("The user must prove a second factor."))
		default:
			o.authorizeError(w, r, ar, fosite.ErrConsentRequired.WithHint("The user has not granted these scopes to this client."))
		}
		return
	}
	view := viewOfFosite(client)
	st := interaction.State{
		Request: r.Form.Encode(), Client: &view, FirstParty: client.FirstParty, Scopes: req.requested, PromptConsent: prompt["consent"],
		RequireMFA: requireMFA,
		// From the request as fosite read it: a pushed request's
		// parameters are not in r.Form.
		LoginHint: ar.GetRequestForm().Get("login_hint"),
	}
	if needLogin {
		caller = web.Caller{}
	}
	if !o.countStoredSignIn(w, r, ar) {
		return
	}
	o.ix.Begin(w, r, st, caller.User, caller.Session)
}

// finishInteraction answers the authorization request of a finished
// interaction: read again from the interaction (never from the browser),
// checked again, for the person the interaction identified, who must
// still hold the session it opened.
func (o *OAuth) finishInteraction(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.Form.Get(interaction.Param)
	st, err := o.ix.Load(r, id)
	if errors.Is(err, interaction.ErrGone) {
		o.page(w, r, http.StatusBadRequest, "error.html", interaction.ExpiredPage)
		return
	}
	if err != nil {
		o.authorizeError(w, r, nil, fosite.ErrServerError.WithWrap(err))
		return
	}
	if st.Kind != interaction.KindAuthorize || interaction.Next(st) != interaction.StepFinish {
		http.Redirect(w, r, o.base+strings.Replace(interaction.Path, "{id}", url.PathEscape(id), 1), http.StatusSeeOther)
		return
	}
	form, err := url.ParseQuery(st.Request)
	if err != nil {
		o.authorizeError(w, r, nil, fosite.ErrServerError.WithWrap(err))
		return
	}
	r.Form, r.PostForm = form, url.Values{}
	req, ok := o.readRequest(w, r)
	if !ok {
		return
	}
	if err := o.ix.Delete(ctx, id); err != nil {
		o.authorizeError(w, r, req.ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	if st.Denied {
		o.consumePAR(r, req.ar)
		o.authorizeError(w, r, req.ar, fosite.ErrAccessDenied.WithHint("The user denied the request."))
		return
	}
	if st.Unmet {
		o.consumePAR(r, req.ar)
		o.authorizeError(w, r, req.ar, errUnmetAuthentication())
		return
	}
	caller, err := web.SessionCaller(ctx, r, o.cookies, o.accounts)
	if err != nil || caller.Session.SID != st.SID || caller.User.ID != st.UserID {
		o.page(w, r, http.StatusConflict, "error.html", web.ErrorPage{Title: "Your sign-in changed",
			Message: "You signed out or signed in as someone else in another tab while this sign-in was going on. Go back to the application and sign in again."})
		return
	}
	// The interaction proved the sign-in after the request arrived
	// (prompt=login, max_age): fosite checks auth_time against the
	// request's time, which is now that of this second reading.
	if caller.Session.AuthTime.Before(req.ar.GetRequestedAt()) {
		req.ar.(*fosite.AuthorizeRequest).RequestedAt = caller.Session.AuthTime
	}
	o.issue(w, r, req, caller)
}

// errUnmetAuthentication: the app asked for two factors (acr_values) and
// the account has none (OpenID Connect Unmet Authentication Requirements
// 1.0). A new value each time: fosite's errors write to themselves as they
// are rendered (WithLocalizer, Sanitize), so one shared value races between
// two such requests.
func errUnmetAuthentication() *fosite.RFC6749Error {
	return &fosite.RFC6749Error{
		ErrorField: "unmet_authentication_requirements", CodeField: http.StatusBadRequest,
		DescriptionField: "The authorization server could not authenticate the user as the request's acr_values ask.",
		HintField:        "The account has no second factor.",
	}
}

// authorizeRequest is an authorization request read and admitted.
type authorizeRequest struct {
	ar        fosite.AuthorizeRequester
	client    *fositestore.Client
	requested []string // the scopes the token will carry
	pushed    bool
}

// readRequest reads and admits the authorization request in r.Form (the
// browser's, or an interaction's), answering the error itself when it
// fails.
func (o *OAuth) readRequest(w http.ResponseWriter, r *http.Request) (authorizeRequest, bool) {
	ctx := r.Context()
	// A pushed request arrives as its request_uri, which fosite resolves.
	pushed := strings.HasPrefix(r.Form.Get("request_uri"), provider.PARRequestURIPrefix)
	var unsupported error
	switch {
	case pushed:
		onlyPushed(r)
		if uri := r.Form.Get("request_uri"); !o.parBound(r, uri) {
			if err := o.p.OpenPAR(ctx, uri, r.Form.Get("client_id")); err != nil {
				o.authorizeError(w, r, nil, err)
				return authorizeRequest{}, false
			}
			o.bindPAR(w, uri)
		}
	case r.Form.Has("request") || r.Form.Has("request_uri"):
		// Request objects are not supported (discovery says so): the
		// client hears it (OpenID Connect Core §6) once its redirect URI
		// is known to be its own.
		unsupported = fosite.ErrRequestNotSupported.WithHint("Request objects are not supported: send the parameters themselves, or push them to the pushed authorization request endpoint.")
		if !r.Form.Has("request") {
			unsupported = fosite.ErrRequestURINotSupported.WithHint("request_uri is supported only for pushed authorization requests.")
		}
		for _, form := range []url.Values{r.Form, r.PostForm} {
			form.Del("request")
			form.Del("request_uri")
		}
	}
	if !pushed {
		o.p.RefreshClientOnMiss(ctx, r.Form.Get("client_id"), strings.Fields(r.Form.Get("scope")), r.Form.Get("redirect_uri"), "authorization_code")
	}
	asked := cloneForm(r.Form)
	state, hasState := padState(r)
	ar, err := o.p.OAuth2.NewAuthorizeRequest(ctx, r)
	restoreState(r, ar, state, hasState)
	// fosite merges a pushed request into r.Form; an interaction keeps
	// only what the browser brought (client_id and request_uri).
	r.Form = asked
	// Over the bound, nothing is stored; fosite read the request only to
	// verify where the refusal may go.
	if requestTooLarge(asked) {
		o.refuseTooLarge(w, r, ar)
		return authorizeRequest{}, false
	}
	if err != nil {
		o.authorizeError(w, r, ar, err)
		return authorizeRequest{}, false
	}
	if unsupported != nil {
		o.authorizeError(w, r, ar, unsupported)
		return authorizeRequest{}, false
	}
	if err := o.admitRequest(ctx, ar); err != nil {
		o.authorizeError(w, r, ar, err)
		return authorizeRequest{}, false
	}
	client := ar.GetClient().(*fositestore.Client)
	if client.Registration != "" {
		// An app registered by a developer: the built-in user scopes and
		// those of APIs open to apps, as the APIs stand now.
		if err := o.p.AppScopesAllowed(ctx, ar.GetRequestedScopes()); err != nil {
			o.authorizeError(w, r, ar, err)
			return authorizeRequest{}, false
		}
	}
	if client.RequirePAR && !pushed {
		o.authorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHint("This client must push its authorization requests to the pushed authorization request endpoint first (RFC 9126)."))
		return authorizeRequest{}, false
	}
	// The code, and the tokens it yields, carry this request's ID.
	ar.SetID(provider.NewRequestID())
	// An unknown resource, or one none of whose scopes is asked for, is
	// refused before anyone signs in (RFC 8707 invalid_target); the consent
	// page shows only the scopes the token will carry.
	_, requested, err := o.p.Audience(ctx, ar.GetRequestedScopes(), provider.Resources(ar.GetRequestForm()))
	if err != nil {
		o.authorizeError(w, r, ar, err)
		return authorizeRequest{}, false
	}
	return authorizeRequest{ar: ar, client: client, requested: requested, pushed: pushed}, true
}

// issue answers an admitted request for the signed-in caller.
func (o *OAuth) issue(w http.ResponseWriter, r *http.Request, req authorizeRequest, caller web.Caller) {
	ctx := r.Context()
	ar, client := req.ar, req.client
	// A first-party app records no consent: /account lists it as a
	// connected app by the tokens it holds (storage ListConnectedApps),
	// which spares every sign-in a read and a write.
	var grant []string
	for _, s := range req.requested {
		// Refresh tokens only for clients allowed the refresh grant.
		if s == "offline_access" && !client.GetGrantTypes().Has("refresh_token") {
			continue
		}
		grant = append(grant, s)
	}
	if err := o.p.Grant(ctx, ar, grant, provider.Resources(ar.GetRequestForm())); err != nil {
		o.authorizeError(w, r, ar, err)
		return
	}
	session := provider.UserSession(identity(caller.User), caller.Session.SID, strings.Fields(caller.Session.AMR), caller.Session.AuthTime, ar.GetRequestedAt(), ar.GetGrantedScopes())
	provider.SetIDTokenAlg(session, client.IDTokenAlg)
	resp, err := o.p.NewAuthorizeResponse(ctx, ar, session)
	if err != nil {
		o.authorizeError(w, r, ar, err)
		return
	}
	resp.AddParameter("iss", o.p.Issuer()) // RFC 9207
	if ar.GetState() == "" {
		resp.GetParameters().Del("state") // none was sent: none comes back
	}
	o.consumePAR(r, ar)
	o.p.OAuth2.WriteAuthorizeResponse(ctx, w, ar, resp)
}

func (o *OAuth) consented(ctx context.Context, userID, clientID string, scopes []string) bool {
	c, err := o.consents.GetConsent(ctx, userID, clientID)
	if err != nil {
		return false
	}
	granted := map[string]bool{}
	for _, s := range c.Scopes {
		granted[s] = true
	}
	for _, s := range scopes {
		if !granted[s] {
			return false
		}
	}
	return true
}

func identity(u storage.User) provider.Identity { return provider.IdentityOf(u) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// viewOfFosite is what the login and consent pages show of a client.
func viewOfFosite(c *fositestore.Client) web.ClientView {
	return web.ClientView{ID: c.GetID(), Name: c.Name, Logo: web.SafeLogo(c.LogoURI), ClientURI: c.ClientURI, PolicyURI: c.PolicyURI, TosURI: c.TosURI,
		Registration: c.Registration}
}
