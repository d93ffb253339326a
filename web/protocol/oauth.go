package protocol

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
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
	Registration string
	// Passkeys offers "Sign in with a passkey" on the login page (nil:
	// off).
	Passkeys web.PasskeyLogin
}

// OAuth serves the OpenID Connect endpoints: discovery, JWKS, the
// authorization endpoint with its login and consent pages, token and
// userinfo.
type OAuth struct {
	signIn       *web.SignIn
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
	registration string
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
	signIn, err := web.NewSignIn(c.Accounts, c.Passkeys, c.Limiter, c.Provider.Issuer(), c.Metrics, c.Logger)
	if err != nil {
		return nil, err
	}
	iss, err := url.Parse(c.Provider.Issuer())
	if err != nil {
		return nil, err
	}
	o := &OAuth{
		signIn: signIn,
		p:      c.Provider, accounts: c.Accounts, consents: c.Consents, limiter: c.Limiter,
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

type consentPage struct {
	Action, CSRFToken, Username string
	Client                      web.ClientView
	Scopes                      []string
	Hidden                      []web.HiddenField
}

// signupURL links the login page to the sign-up page when registration is
// open, carrying the authorization request to continue after sign-up.
func (o *OAuth) signupURL(form url.Values) string {
	if o.registration != web.RegistrationOpen {
		return ""
	}
	return o.base + web.SignupPath + "?" + url.Values{web.ContinueParam: {o.continueURL(form)}}.Encode()
}

// continueURL is the authorization request of form as a URL on this
// server, without the fields the login and consent forms add.
func (o *OAuth) continueURL(form url.Values) string {
	q := url.Values{}
	for k, v := range form {
		if !formFields[k] {
			q[k] = v
		}
	}
	return o.action + "?" + q.Encode()
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

var scopeDescriptions = map[string]string{
	"openid":         "Know who you are (your tonearm account ID)",
	"profile":        "See your username and display name",
	"email":          "See your email address",
	"listenbrainz":   "See your ListenBrainz name and use your ListenBrainz token",
	"offline_access": "Keep access while you are away (refresh tokens)",
	"roles":          "See your role",
}

// DescribeScopes words scopes for the consent page: built-in ones as
// above, API scopes with the description their API registered.
func (o *OAuth) DescribeScopes(ctx context.Context, scopes []string) []string {
	described := o.p.ScopeDescriptions(ctx)
	var out []string
	for _, s := range scopes {
		switch {
		case scopeDescriptions[s] != "":
			out = append(out, scopeDescriptions[s])
		case described[s] != "":
			out = append(out, described[s])
		default:
			out = append(out, s)
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

// authorize is the authorization endpoint. The login and consent pages post
// back to it with the original request as hidden fields, so each step is a
// complete authorization request and no server-side flow state is needed.
func (o *OAuth) authorize(w http.ResponseWriter, r *http.Request) {
	if !o.pages.Admit(w, r) {
		return
	}
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		o.page(w, r, http.StatusBadRequest, "error.html", web.ErrorPage{Title: "This sign-in request is invalid", Message: "The request could not be read."})
		return
	}
	// A pushed request arrives as its request_uri, which fosite resolves;
	// the login and consent steps post it back the same way.
	pushed := strings.HasPrefix(r.Form.Get("request_uri"), provider.PARRequestURIPrefix)
	var unsupported error
	switch {
	case pushed:
		onlyPushed(r)
		if uri := r.Form.Get("request_uri"); !o.parBound(r, uri) {
			if err := o.p.OpenPAR(ctx, uri, r.Form.Get("client_id")); err != nil {
				o.authorizeError(w, r, nil, err)
				return
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
	// fosite merges a pushed request into r.Form; the pages carry only
	// what the browser brought (client_id and request_uri).
	r.Form = asked
	if err != nil {
		o.authorizeError(w, r, ar, err)
		return
	}
	if unsupported != nil {
		o.authorizeError(w, r, ar, unsupported)
		return
	}
	if err := o.admitRequest(ctx, ar); err != nil {
		o.authorizeError(w, r, ar, err)
		return
	}
	client := ar.GetClient().(*fositestore.Client)
	if client.RequirePAR && !pushed {
		o.authorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHint("This client must push its authorization requests to the pushed authorization request endpoint first (RFC 9126)."))
		return
	}
	// The code, and the tokens it yields, carry this request's ID.
	ar.SetID(provider.NewRequestID())
	// An unknown resource, or one none of whose scopes is asked for, is
	// refused before anyone signs in (RFC 8707 invalid_target); the consent
	// page shows only the scopes the token will carry.
	_, requested, err := o.p.Audience(ctx, ar.GetRequestedScopes(), provider.Resources(ar.GetRequestForm()))
	if err != nil {
		o.authorizeError(w, r, ar, err)
		return
	}
	prompt := promptValues(ar)
	action := ""
	if r.Method == http.MethodPost {
		action = r.PostFormValue("tonearm_action")
	}
	if action != "" && !o.csrf.Valid(r) {
		o.page(w, r, http.StatusForbidden, "error.html", web.ErrorPage{Title: "Form expired", Message: "This form is no longer valid. Go back to the application and sign in again."})
		return
	}

	caller, err := web.SessionCaller(ctx, r, o.cookies, o.accounts)
	if err != nil && !errors.Is(err, web.ErrNoCaller) {
		o.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	signedIn := err == nil
	freshLogin := false
	if action == "login" {
		user, sess, loginErr := o.signIn.Form(w, r)
		if loginErr != "" {
			view := viewOfFosite(client)
			o.page(w, r, http.StatusUnauthorized, "login.html", web.LoginPage{
				Action: o.action, CSRFToken: o.csrf.Token(w, r), Client: &view,
				Username: r.PostFormValue("username"), Error: loginErr, Hidden: hiddenFields(r.Form), ForgotURL: o.base + web.ForgotPath,
				SignupURL: o.signupURL(r.Form), PasskeyURL: o.signIn.PasskeyURL(),
			})
			return
		}
		caller, signedIn, freshLogin = web.Caller{User: user, Session: sess}, true, true
	}

	// A pushed request's pages carry only its request_uri, so the
	// consent step cannot drop prompt=login and max_age as a post-back of
	// a plain request does: a sign-in made after the push satisfies them
	// for the rest of its interaction.
	authedSincePush := pushed && signedIn && !caller.Session.AuthTime.Before(ar.GetRequestedAt().Truncate(time.Second))
	needLogin := !signedIn || (prompt["login"] && !freshLogin && !authedSincePush)
	if signedIn && !freshLogin && !authedSincePush {
		if maxAge, err := strconv.ParseInt(ar.GetRequestForm().Get("max_age"), 10, 64); err == nil && maxAge >= 0 &&
			o.now().Sub(caller.Session.AuthTime) > time.Duration(maxAge)*time.Second {
			needLogin = true
		}
	}
	if needLogin {
		if prompt["none"] {
			o.authorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("The user is not signed in."))
			return
		}
		view := viewOfFosite(client)
		o.page(w, r, http.StatusOK, "login.html", web.LoginPage{
			Action: o.action, CSRFToken: o.csrf.Token(w, r), Client: &view, Hidden: hiddenFields(r.Form),
			ForgotURL: o.base + web.ForgotPath, SignupURL: o.signupURL(r.Form), PasskeyURL: o.signIn.PasskeyURL(),
		})
		return
	}

	if !client.FirstParty {
		decided := false
		if action == "consent" {
			if r.PostFormValue("decision") != "allow" {
				o.authorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The user denied the request."))
				return
			}
			if err := o.accounts.GrantApp(ctx, caller.User.ID, client.GetID(), requested); err != nil {
				o.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
				return
			}
			decided = true
		}
		if !decided && (prompt["consent"] || !o.consented(ctx, caller.User.ID, client.GetID(), requested)) {
			if prompt["none"] {
				o.authorizeError(w, r, ar, fosite.ErrConsentRequired.WithHint("The user has not granted these scopes to this client."))
				return
			}
			// The user has just proved who they are: the consent post-back
			// must not ask again for prompt=login or max_age.
			form := url.Values{}
			for k, v := range r.Form {
				if k != "prompt" && k != "max_age" {
					form[k] = v
				}
			}
			o.page(w, r, http.StatusOK, "consent.html", consentPage{
				Action: o.action, CSRFToken: o.csrf.Token(w, r), Client: viewOfFosite(client), Username: caller.User.Username,
				Scopes: o.DescribeScopes(ctx, requested), Hidden: hiddenFields(form),
			})
			return
		}
	}

	// A first-party app records no consent: /account lists it as a
	// connected app by the tokens it holds (storage ListConnectedApps),
	// which spares every sign-in a read and a write.
	var grant []string
	for _, s := range requested {
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
	requestedAt := ar.GetRequestedAt()
	if freshLogin && caller.Session.AuthTime.Before(requestedAt) {
		requestedAt = caller.Session.AuthTime // clocks truncated differently
	}
	session := provider.UserSession(identity(caller.User), caller.Session.SID, strings.Fields(caller.Session.AMR), caller.Session.AuthTime, requestedAt, ar.GetGrantedScopes())
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

func identity(u storage.User) provider.Identity {
	return provider.Identity{
		ID: u.ID, Username: u.Username, Name: u.Name, Email: u.Email, EmailVerified: u.EmailVerified,
		Website: u.Website, Role: u.Role, ListenBrainzName: u.ListenBrainzName,
	}
}

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
	return web.ClientView{ID: c.GetID(), Name: c.Name, Logo: web.SafeLogo(c.LogoURI), ClientURI: c.ClientURI, PolicyURI: c.PolicyURI, TosURI: c.TosURI}
}
