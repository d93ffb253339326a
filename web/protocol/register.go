package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// AppRegistry registers and manages apps (provider/clients).
type AppRegistry interface {
	RegisterApp(ctx context.Context, spec clients.AppSpec, owner, registration string) (clients.App, error)
	UpdateApp(ctx context.Context, id string, spec clients.AppSpec) (storage.Client, error)
	AppByRegistrationToken(ctx context.Context, id, token string) (storage.Client, error)
	DeleteApp(ctx context.Context, id string) error
}

// InitialTokens checks initial access tokens.
type InitialTokens interface {
	Check(ctx context.Context, value string) (storage.RegistrationToken, error)
}

// RegistrationConfig wires NewRegistration.
type RegistrationConfig struct {
	// Mode is TONEARM_CLIENT_REGISTRATION, validated when it was loaded.
	Mode         config.ClientRegistration
	Apps         AppRegistry
	Tokens       InitialTokens
	Limiter      *web.LoginLimiter
	Events       audit.Store
	Metrics      *web.Metrics
	Issuer       string
	ForgetClient func(id string)
	Logger       *slog.Logger
	Now          func() time.Time
}

// Registration serves Dynamic Client Registration (RFC 7591) at
// /oauth2/register and its management protocol (RFC 7592) at each app's
// registration_client_uri.
type Registration struct {
	c    RegistrationConfig
	base string
}

// NewRegistration returns the endpoints.
func NewRegistration(c RegistrationConfig) (*Registration, error) {
	if c.Apps == nil || c.Tokens == nil || c.Limiter == nil || c.Events == nil || c.Logger == nil || c.Issuer == "" {
		return nil, errors.New("web: Registration needs Apps, Tokens, Limiter, Events, Logger and Issuer")
	}
	if c.Mode == "" {
		// A wiring mistake, not a setting: the zero value must not read
		// as a mode (it would fall through to open registration).
		return nil, errors.New("web: Registration needs a Mode")
	}
	if c.ForgetClient == nil {
		c.ForgetClient = func(string) {}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Registration{c: c, base: strings.TrimRight(c.Issuer, "/")}, nil
}

// Routes mounts the endpoints.
func (g *Registration) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+provider.RegisterPath, cors(g.register))
	mux.HandleFunc(provider.RegisterPath, cors(notAllowed(http.MethodPost)))
	mux.HandleFunc(provider.RegisterPath+"/{id}", cors(allowOnly(g.manage, http.MethodGet, http.MethodPut, http.MethodDelete)))
}

// clientMetadata is RFC 7591 §2 (with OpenID Connect Dynamic
// Registration's application_type and id_token_signed_response_alg).
// Unknown metadata is ignored, as §2 says.
type clientMetadata struct {
	RedirectURIs             []string `json:"redirect_uris,omitempty"`
	TokenEndpointAuthMethod  string   `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes               []string `json:"grant_types,omitempty"`
	ResponseTypes            []string `json:"response_types,omitempty"`
	ClientName               string   `json:"client_name,omitempty"`
	ClientURI                string   `json:"client_uri,omitempty"`
	LogoURI                  string   `json:"logo_uri,omitempty"`
	Scope                    string   `json:"scope,omitempty"`
	TosURI                   string   `json:"tos_uri,omitempty"`
	PolicyURI                string   `json:"policy_uri,omitempty"`
	ApplicationType          string   `json:"application_type,omitempty"`
	IDTokenSignedResponseAlg string   `json:"id_token_signed_response_alg,omitempty"`
	// RP-Initiated Logout 1.0 §3.1 and Back-Channel Logout 1.0 §2.2.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	BackchannelLogoutURI   string   `json:"backchannel_logout_uri,omitempty"`
	// BackchannelLogoutSessionRequired is accepted either way: every
	// logout token tonearm sends carries sid, so an app that requires it
	// is served and one that does not ignores it. It comes back true
	// with a back-channel logout URI.
	BackchannelLogoutSessionRequired *bool `json:"backchannel_logout_session_required,omitempty"`
	// DPoPBoundAccessTokens: every token request of the app carries a
	// DPoP proof (RFC 9449 §5.2).
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`
	keyMetadata
	// ClientID and ClientSecret come back in an RFC 7592 update.
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
}

// clientInformation is the answer: the app's credentials and metadata.
type clientInformation struct {
	ClientID                string `json:"client_id"`
	ClientSecret            string `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64  `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64 `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri"`
	clientMetadata
}

// spec turns metadata into an app's spec; a metadata error says so.
func (m clientMetadata) spec() (clients.AppSpec, error) {
	if len(m.ResponseTypes) > 0 && !slices.Equal(m.ResponseTypes, []string{"code"}) {
		return clients.AppSpec{}, errors.New("response_types must be [\"code\"]")
	}
	switch m.ApplicationType {
	case "", "web", "native":
	default:
		return clients.AppSpec{}, errors.New("application_type must be web or native")
	}
	keys, err := m.keyMetadata.keys()
	if err != nil {
		return clients.AppSpec{}, err
	}
	spec := clients.AppSpec{RedirectURIs: m.RedirectURIs, AuthMethod: m.TokenEndpointAuthMethod, GrantTypes: m.GrantTypes, Keys: keys,
		Scopes: strings.Fields(m.Scope), IDTokenAlg: m.IDTokenSignedResponseAlg,
		PostLogoutRedirectURIs: m.PostLogoutRedirectURIs, BackchannelLogoutURI: m.BackchannelLogoutURI, RequireDPoP: m.DPoPBoundAccessTokens,
		Display: clients.Display{Name: m.ClientName, LogoURI: m.LogoURI, ClientURI: m.ClientURI, PolicyURI: m.PolicyURI, TosURI: m.TosURI}}
	if spec.AuthMethod == "" {
		spec.AuthMethod = "client_secret_basic"
	}
	// A client that says it is a web app (OpenID Connect Dynamic
	// Registration §2: a browser receives its redirects) gets no
	// private-use scheme, public (a single-page app) or not; tonearm keeps
	// public clients as native apps, so the rule is checked here, on what
	// the client said.
	if m.ApplicationType == "web" {
		for field, uris := range map[string][]string{"redirect_uris": m.RedirectURIs, "post_logout_redirect_uris": m.PostLogoutRedirectURIs} {
			for _, raw := range uris {
				if u, err := url.Parse(raw); err == nil && u.Scheme != "https" && u.Scheme != "http" {
					return clients.AppSpec{}, fault.Errorf(fault.Invalid, "%s: a private-use scheme (%s:) is for native apps; a web app uses https, or http on loopback", field, u.Scheme).On(field)
				}
			}
		}
	}
	return spec, nil
}

func (g *Registration) information(c storage.Client, authMethod string) clientInformation {
	if authMethod == "" {
		authMethod = clients.AuthMethod(c)
	}
	appType := "web"
	if clients.AppKind(c) == clients.AppNative {
		appType = "native"
	}
	info := clientInformation{
		ClientID: c.ID, ClientIDIssuedAt: c.CreatedAt.Unix(), RegistrationClientURI: g.base + provider.RegisterPath + "/" + c.ID,
		clientMetadata: clientMetadata{
			RedirectURIs: c.RedirectURIs, TokenEndpointAuthMethod: authMethod, GrantTypes: c.GrantTypes, ResponseTypes: c.ResponseTypes,
			ClientName: c.Name, ClientURI: c.ClientURI, LogoURI: c.LogoURI, Scope: strings.Join(c.Scopes, " "), TosURI: c.TosURI, PolicyURI: c.PolicyURI,
			ApplicationType: appType, IDTokenSignedResponseAlg: c.IDTokenAlg,
			PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, BackchannelLogoutURI: c.BackchannelLogoutURI,
			DPoPBoundAccessTokens: c.RequireDPoP, keyMetadata: keyMetadataOf(c),
		},
	}
	if c.BackchannelLogoutURI != "" {
		yes := true
		info.BackchannelLogoutSessionRequired = &yes
	}
	if info.ResponseTypes == nil {
		info.ResponseTypes = []string{}
	}
	return info
}

// refuseToken answers a request whose initial or registration access token
// is missing or wrong: 401 with its Bearer challenge (RFC 6750 §3, as RFC
// 7591 §3 and RFC 7592 §3 ask). A request that sent no token at all gets
// no error code in the challenge (RFC 6750 §3.1: it did not know
// authentication was needed) and invalid_request in the body.
func refuseToken(w http.ResponseWriter, r *http.Request, description string) {
	if web.BearerToken(r) == "" {
		web.SetChallenge(w, "Bearer", "realm", "tonearm")
		web.WriteOAuthError(w, http.StatusUnauthorized, "invalid_request", description)
		return
	}
	web.SetChallenge(w, "Bearer", "realm", "tonearm", "error", "invalid_token", "error_description", description)
	web.WriteOAuthError(w, http.StatusUnauthorized, "invalid_token", description)
}

func (g *Registration) record(r *http.Request, typ, user, client string, detail map[string]any) {
	if err := audit.Record(r.Context(), g.c.Events, g.c.Now(), typ, user, client, detail); err != nil {
		g.c.Logger.Warn("recording an audit event", "request_id", web.RequestID(r.Context()), "type", typ, "err", err)
	}
}

// register is POST /oauth2/register (RFC 7591).
func (g *Registration) register(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if g.c.Mode == config.ClientRegistrationOff {
		web.WriteOAuthError(w, http.StatusForbidden, "access_denied", "Dynamic client registration is off on this server: apps are registered on the developer page.")
		return
	}
	how, owner := storage.RegisteredOpenly, ""
	if tok := web.BearerToken(r); tok != "" {
		rec, err := g.c.Tokens.Check(ctx, tok)
		if writeUnavailable(w, r, g.c.Logger, err) {
			return
		}
		if err != nil {
			g.c.Metrics.AppRegistration("token", "refused")
			refuseToken(w, r, "The initial access token is unknown, revoked or expired.")
			return
		}
		how, owner = storage.RegisteredWithToken, rec.Owner
	} else if g.c.Mode == config.ClientRegistrationToken {
		g.c.Metrics.AppRegistration("token", "refused")
		refuseToken(w, r, "An initial access token is required (Authorization: Bearer …): a developer makes one on the developer page.")
		return
	}
	// Without a token every attempt counts against the address, valid or
	// not, before the body is read: past the budget nothing is parsed and
	// no audit row is written (each refusal writes one, so counting only
	// the registrations made let one address write rows without end).
	if how == storage.RegisteredOpenly && !g.within(w, r, how, g.c.Limiter.OpenRegistration(ctx, r)) {
		return
	}
	var m clientMetadata
	if status, code, description := readMetadata(w, r, &m); status != 0 {
		g.refuseWith(w, r, refusedFor{how, owner, ""}, status, code, description)
		return
	}
	spec, err := m.spec()
	if err != nil {
		g.refuseMetadata(w, r, refusedFor{how, owner, ""}, err)
		return
	}
	// A developer's budget counts the apps registered; an address without
	// a token was counted before anything else.
	if owner != "" && !g.within(w, r, how, g.c.Limiter.AppRegistration(ctx, owner)) {
		return
	}
	app, err := g.c.Apps.RegisterApp(ctx, spec, owner, how)
	if err != nil {
		g.failed(w, r, refusedFor{how, owner, ""}, "registering", err)
		return
	}
	g.c.Metrics.AppRegistration(how, "registered")
	info := g.information(app.Client, spec.AuthMethod)
	info.RegistrationAccessToken = app.RegistrationToken
	if app.Secret != "" {
		zero := int64(0)
		info.ClientSecret, info.ClientSecretExpiresAt = app.Secret, &zero
	}
	w.Header().Set("Cache-Control", "no-store")
	web.WriteJSON(w, http.StatusCreated, info)
}

// within reports whether a registration limit let the request through,
// answering it when not: 429 with Retry-After past the budget, 500 when the
// count could not be made.
func (g *Registration) within(w http.ResponseWriter, r *http.Request, how string, limit error) bool {
	if limit == nil {
		return true
	}
	if fault.Is(limit, fault.Throttled) {
		g.c.Metrics.AppRegistration(how, "throttled")
		_, msg, _ := web.ErrorAnswer(w, limit) // and its Retry-After
		web.WriteOAuthError(w, http.StatusTooManyRequests, "invalid_request", msg)
		return false
	}
	if writeUnavailable(w, r, g.c.Logger, limit) {
		return false
	}
	g.c.Logger.Error("counting a registration", "request_id", web.RequestID(r.Context()), "err", limit)
	web.WriteOAuthError(w, http.StatusInternalServerError, "server_error", "The registration could not be counted; try again later.")
	return false
}

// refuseMetadata refuses metadata that spec turned down: a redirect URI as
// RFC 7591 §3.2.2's invalid_redirect_uri, anything else as
// invalid_client_metadata.
func (g *Registration) refuseMetadata(w http.ResponseWriter, r *http.Request, by refusedFor, err error) {
	g.refuse(w, r, by, clients.RefusalCode(err), err.Error())
}

// refusedFor is what a refusal's event names: how the request came, the
// developer (user ID) and the app (client ID) it was for, when known.
type refusedFor struct{ how, user, client string }

// failed answers a registration or update that failed: the metadata at
// fault as RFC 7591 §3.2.2 names it, or a server error (logged).
func (g *Registration) failed(w http.ResponseWriter, r *http.Request, by refusedFor, doing string, err error) {
	if fault.Is(err, fault.Invalid) {
		_, msg, _ := web.ErrorMessage(err)
		g.refuse(w, r, by, clients.RefusalCode(err), msg)
		return
	}
	if writeUnavailable(w, r, g.c.Logger, err) {
		return
	}
	g.c.Logger.Error(doing+" an app", "request_id", web.RequestID(r.Context()), "err", err)
	web.WriteOAuthError(w, http.StatusInternalServerError, "server_error", "The app could not be saved; try again later.")
}

// refuse answers refused metadata (400 with RFC 7591 §3.2.2's code) and
// records app.registration_refused: how the request came, the code, and
// who it was for when its token said so (the developer of an initial
// access token; an RFC 7592 request's app and that app's developer). A
// wrong or missing token is answered before (refuseToken) and recorded
// nowhere: it names no one, and anyone could fill the log with it.
func (g *Registration) refuse(w http.ResponseWriter, r *http.Request, by refusedFor, code, description string) {
	g.refuseWith(w, r, by, http.StatusBadRequest, code, description)
}

// refuseWith is refuse with another status than 400 (413, 415).
func (g *Registration) refuseWith(w http.ResponseWriter, r *http.Request, by refusedFor, status int, code, description string) {
	g.c.Metrics.AppRegistration(by.how, "refused")
	g.record(r, audit.AppRefused, by.user, by.client, map[string]any{"how": by.how, "error": code})
	web.WriteOAuthError(w, status, code, description)
}

// maxMetadataBytes caps a registration or update body: metadata is a few
// URIs and names.
const maxMetadataBytes = 64 << 10

// readMetadata decodes a registration (RFC 7591 §3.1) or update (RFC 7592
// §2.2) body into m. status is 0 when it did; else the answer to give:
// 415 invalid_request for a body that is not application/json (§3.1 sends
// JSON), 413 invalid_request for one over maxMetadataBytes (neither is
// about a metadata value), 400 invalid_client_metadata for JSON that does
// not parse as metadata.
func readMetadata(w http.ResponseWriter, r *http.Request, m *clientMetadata) (status int, code, description string) {
	if mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" ||
		(params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
		return http.StatusUnsupportedMediaType, "invalid_request", "The body must be client metadata as application/json (RFC 7591 §3.1)."
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxMetadataBytes)
	if err := json.NewDecoder(r.Body).Decode(m); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return http.StatusRequestEntityTooLarge, "invalid_request", fmt.Sprintf("The body is larger than %d bytes.", maxMetadataBytes)
		}
		return http.StatusBadRequest, "invalid_client_metadata", "The body must be a JSON object of client metadata (RFC 7591 §2): " + jsonProblem(err)
	}
	return 0, "", ""
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s must be a %s", te.Field, te.Type)
	}
	return "it does not parse"
}

// manage is RFC 7592 at registration_client_uri: read, update, delete,
// with the registration access token.
func (g *Registration) manage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	c, err := g.c.Apps.AppByRegistrationToken(ctx, id, web.BearerToken(r))
	if writeUnavailable(w, r, g.c.Logger, err) {
		return
	}
	if err != nil {
		// An unknown app and a wrong token look alike (RFC 7592 §2).
		refuseToken(w, r, "The registration access token is not this app's.")
		return
	}
	// A refusal from here on is about this app and its developer.
	by := refusedFor{c.Registration, c.Owner, c.ID}
	switch r.Method {
	case http.MethodGet, http.MethodHead: // HEAD as GET (RFC 9110 §9.3.2); the server drops the body
		w.Header().Set("Cache-Control", "no-store")
		web.WriteJSON(w, http.StatusOK, g.information(c, ""))
	case http.MethodPut:
		var m clientMetadata
		if status, code, description := readMetadata(w, r, &m); status != 0 {
			g.refuseWith(w, r, by, status, code, description)
			return
		}
		if m.ClientID != c.ID {
			g.refuse(w, r, by, "invalid_client_metadata", "client_id must be this app's (RFC 7592 §2.2)")
			return
		}
		spec, err := m.spec()
		if err != nil {
			g.refuseMetadata(w, r, by, err)
			return
		}
		if m.TokenEndpointAuthMethod == "" {
			spec.AuthMethod = clients.AuthMethod(c) // as registered
		}
		next, err := g.c.Apps.UpdateApp(ctx, id, spec)
		if err != nil {
			g.failed(w, r, by, "updating", err)
			return
		}
		g.c.ForgetClient(id)
		g.c.Metrics.AppRegistration(c.Registration, "updated")
		w.Header().Set("Cache-Control", "no-store")
		web.WriteJSON(w, http.StatusOK, g.information(next, spec.AuthMethod))
	case http.MethodDelete:
		if err := g.c.Apps.DeleteApp(ctx, id); err != nil && !errors.Is(err, clients.ErrNotFound) {
			if writeUnavailable(w, r, g.c.Logger, err) {
				return
			}
			g.c.Logger.Error("deleting an app", "request_id", web.RequestID(ctx), "err", err)
			web.WriteOAuthError(w, http.StatusInternalServerError, "server_error", "The app could not be deleted; try again later.")
			return
		}
		g.c.ForgetClient(id)
		g.c.Metrics.AppRegistration(c.Registration, "deleted")
		w.WriteHeader(http.StatusNoContent)
	}
}
