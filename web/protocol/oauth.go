package protocol

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/locale"
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
	SessionUserBySID(ctx context.Context, sid string) (string, error)
	ListenBrainzToken(u storage.User) (string, error)
	// GrantApp records what the person granted a client (also for apps
	// that ask no consent: they are connected apps all the same).
	GrantApp(ctx context.Context, userID, clientID string, scopes []string) error
}

// OAuthConfig wires NewOAuth.
type OAuthConfig struct {
	Provider *provider.Provider
	Site     *web.Site
	Accounts OAuthAccounts
	Limiter  *web.LoginLimiter
	CSRFKey  []byte
	Logger   *slog.Logger
	Now      func() time.Time
	// Metrics counts tokens and sign-ins (optional).
	Metrics *web.Metrics
	// Interactions runs the sign-in steps (login, consent) of requests
	// that need them.
	Interactions *interaction.Interactions
	// RequestObjects verifies and fetches request objects (RFC 9101).
	RequestObjects RequestObjects
}

// OAuth serves the OpenID Connect endpoints: discovery, JWKS, the
// authorization endpoint with its login and consent pages, token and
// userinfo.
type OAuth struct {
	ix       *interaction.Interactions
	p        *provider.Provider
	accounts OAuthAccounts
	limiter  *web.LoginLimiter
	csrf     *web.CSRF
	cookies  web.Cookies
	pages    *web.Renderer
	site     *web.Site // renders the form_post page under its own policy
	log      *slog.Logger
	now      func() time.Time
	metrics  *web.Metrics
	action   string // the login and consent forms post here
	parKey   []byte // keys the cookies that bind a pushed request to its browser
	objects  RequestObjects
}

// NewOAuth returns the protocol endpoints; it parses the page templates and
// fails if any is missing or broken.
func NewOAuth(c OAuthConfig) (*OAuth, error) {
	if c.Provider == nil || c.Site == nil || c.Accounts == nil || c.Limiter == nil || c.Logger == nil || len(c.CSRFKey) < 32 {
		return nil, errors.New("web: OAuth needs Provider, Site, Accounts, Limiter, Logger and a 32-byte CSRFKey")
	}
	pages := c.Site.WithCSP(web.ProtocolCSP)
	if c.Interactions == nil {
		return nil, errors.New("web: OAuth needs Interactions")
	}
	if ro := c.RequestObjects; ro.Keys == nil || ro.Fetcher == nil || ro.Once == nil {
		return nil, errors.New("web: OAuth needs RequestObjects' Keys, Fetcher and Once")
	}
	iss, err := url.Parse(c.Provider.Issuer())
	if err != nil {
		return nil, err
	}
	o := &OAuth{
		ix: c.Interactions,
		p:  c.Provider, accounts: c.Accounts, limiter: c.Limiter,
		csrf: web.NewCSRF(c.CSRFKey, c.Provider.Issuer()), cookies: web.NewCookies(c.Provider.Issuer()),
		pages: pages, site: c.Site, log: c.Logger, now: c.Now, metrics: c.Metrics,
		action: strings.TrimRight(iss.Path, "/") + provider.AuthorizePath,
		parKey: c.CSRFKey, objects: c.RequestObjects,
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o, nil
}

// Routes mounts the endpoints on mux.
func (o *OAuth) Routes(mux *http.ServeMux) {
	get, post := http.MethodGet, http.MethodPost
	mux.HandleFunc("GET "+provider.DiscoveryPath, o.discovery)
	mux.HandleFunc(provider.DiscoveryPath, notAllowed(get))
	mux.HandleFunc("GET "+provider.JWKSPath, o.jwks)
	mux.HandleFunc(provider.JWKSPath, notAllowed(get))
	mux.HandleFunc(provider.AuthorizePath, o.authorize)
	mux.HandleFunc(provider.TokenPath, cors(allowOnly(clientChallenge(o.withDPoP(provider.TokenPath, o.token)), post)))
	mux.HandleFunc(provider.UserinfoPath, cors(allowOnly(o.userinfo, get, post)))
	mux.HandleFunc(provider.IntrospectPath, allowOnly(clientChallenge(o.introspect), post))
	mux.HandleFunc(provider.RevokePath, cors(allowOnly(clientChallenge(o.revoke), post)))
	mux.HandleFunc(provider.LogoutPath, o.logout)
	mux.HandleFunc("POST "+provider.PARPath, clientChallenge(o.parDPoP(o.par)))
	mux.HandleFunc(provider.PARPath, notAllowed(post))
	mux.HandleFunc("POST "+provider.DeviceAuthorizationPath, clientChallenge(o.deviceAuthorization))
	mux.HandleFunc(provider.DeviceAuthorizationPath, notAllowed(post))
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
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		// A browser app reads the nonce it must put in its next proof
		// (RFC 9449 §8.2) and the DPoP challenge.
		w.Header().Set("Access-Control-Expose-Headers", "DPoP-Nonce, WWW-Authenticate")
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

// authorize is the authorization endpoint. It reads the request once
// (authorize_read.go) and asks the sign-in decision (interaction.Decide)
// once: a browser whose session satisfies the request (and who granted the
// app before) gets the answer at once, prompt=none gets its error, and
// otherwise the request is stored in a sign-in interaction
// (web/interaction) whose pages post to it, and the interaction comes back
// here (?interaction=ID) to be answered once its steps are done.
func (o *OAuth) authorize(w http.ResponseWriter, r *http.Request) {
	if !o.pages.Admit(w, r) {
		return
	}
	// Admit bounded the body; the query is bounded here before parsing
	// (the server's header limit bounds it too, but not behind every
	// listener).
	if len(r.URL.RawQuery) > web.MaxBodyBytes {
		web.ShowErrorPage(w, r, o.pages, http.StatusRequestURITooLong, locale.M("This sign-in request is invalid"), locale.M("The request is too long."))
		return
	}
	if err := r.ParseForm(); tooLarge(err) {
		web.ShowErrorPage(w, r, o.pages, http.StatusRequestEntityTooLarge, locale.M("This sign-in request is invalid"), locale.M("The request is too large."))
		return
	} else if err != nil {
		web.ShowErrorPage(w, r, o.pages, http.StatusBadRequest, locale.M("This sign-in request is invalid"), locale.M("The request could not be read."))
		return
	}
	if r.Form.Has(interaction.Param) {
		o.finishInteraction(w, r)
		return
	}
	// The endpoint's own error pages are in the app's ui_locales (OpenID
	// Connect Core §3.1.2.1): as sent, then as read from a request object
	// or a pushed request.
	r = web.WithUILocales(r, r.Form.Get("ui_locales"), o.now())
	req, ok := o.readRequest(w, r, time.Time{})
	if !ok {
		return
	}
	r = web.WithUILocales(r, req.ar.GetRequestForm().Get("ui_locales"), o.now())
	caller, err := web.SessionCaller(r.Context(), r, o.cookies, o.accounts)
	if err != nil && !errors.Is(err, web.ErrNoCaller) {
		o.authorizeError(w, r, req.ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	st := o.interactionOf(r, req)
	facts, err := o.signInFacts(r, req, st, caller)
	if err != nil {
		o.authorizeError(w, r, req.ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	d := interaction.Decide(facts)
	switch {
	case d.Step == interaction.StepFinish && d.Answer == interaction.AnswerIssue:
		o.issue(w, r, req, caller)
		return
	case d.Step == interaction.StepFinish:
		o.authorizeError(w, r, req.ar, answerError(d.Answer))
		return
	case d.Step == interaction.StepIdentify:
		// A new sign-in: the session at hand does not count.
		caller = web.Caller{}
	default:
		st.Granted = facts.Client.Granted
	}
	st.RequireMFA = interaction.RequiresMFA(facts)
	if !o.countStoredSignIn(w, r, req.ar) {
		return
	}
	o.ix.Begin(w, r, st, caller.User, caller.Session)
}

// finishInteraction answers the authorization request of a finished
// interaction: read again from the interaction (never from the browser),
// for the person the interaction identified, who must still hold the
// session it opened. The answer is the decision's, asked of the
// interaction's state.
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
	r = interaction.WithLanguageOf(r, st)
	d := interaction.Decide(interaction.FactsOf(st))
	if st.Kind != interaction.KindAuthorize || d.Step != interaction.StepFinish {
		http.Redirect(w, r, o.ix.URL(id), http.StatusSeeOther)
		return
	}
	form, err := url.ParseQuery(st.Request)
	if err != nil {
		o.authorizeError(w, r, nil, fosite.ErrServerError.WithWrap(err))
		return
	}
	r.Form, r.PostForm = form, url.Values{}
	req, ok := o.readRequest(w, r, st.AuthTime)
	if !ok {
		return
	}
	if err := o.ix.Delete(ctx, id); err != nil {
		o.authorizeError(w, r, req.ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	if d.Answer != interaction.AnswerIssue {
		// access_denied or unmet_authentication_requirements; the answer
		// ends a pushed request too.
		o.authorizeError(w, r, req.ar, answerError(d.Answer))
		return
	}
	caller, err := web.SessionCaller(ctx, r, o.cookies, o.accounts)
	if err != nil || caller.Session.SID != st.SID || caller.User.ID != st.UserID {
		web.ShowErrorPage(w, r, o.pages, http.StatusConflict, locale.M("Your sign-in changed"),
			locale.M("You signed out or signed in as someone else in another tab while this sign-in was going on. Go back to the application and sign in again."))
		return
	}
	o.issue(w, r, req, caller)
}

// issue answers an admitted request for the signed-in caller.
func (o *OAuth) issue(w http.ResponseWriter, r *http.Request, req authorizeRequest, caller web.Caller) {
	ctx := r.Context()
	ar, client := req.ar, req.client
	if !o.ofSubject(req, caller.User.ID) {
		// The interaction signed in someone else than the sub asked.
		o.authorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("The user signed in is not the subject the claims parameter names."))
		return
	}
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
	provider.AddRequestedClaims(session, identity(caller.User), req.claims)
	provider.SetIDTokenAlg(session, client.IDTokenAlg)
	// RFC 9449 §10: a code asked for with dpop_jkt (by the app, or bound
	// by the proof sent with its pushed request) is redeemed only with a
	// proof signed by that key.
	if jkt := ar.GetRequestForm().Get("dpop_jkt"); jkt != "" {
		if !validJKT(jkt) {
			o.authorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHint("dpop_jkt must be a JWK SHA-256 thumbprint, base64url (RFC 7638)."))
			return
		}
		provider.BindToKey(session, jkt)
	}
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
	if o.writeFormPost(w, r, ar, resp.GetParameters()) {
		return
	}
	o.p.OAuth2.WriteAuthorizeResponse(ctx, w, ar, resp)
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
		Registration: c.Registration, Pairwise: c.SubjectType == storage.SubjectPairwise}
}
