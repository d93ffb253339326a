package jsonapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// ClientRegistry is what the admin API needs to manage clients.
type ClientRegistry interface {
	Create(ctx context.Context, spec clients.Spec) (storage.Client, string, error)
	Update(ctx context.Context, id string, change func(*clients.Spec)) (storage.Client, error)
	RotateSecret(ctx context.Context, id string, keepOld time.Duration) (string, error)
	Get(ctx context.Context, id string) (storage.Client, error)
	List(ctx context.Context) ([]storage.Client, error)
	Delete(ctx context.Context, id string) error
}

// AdminAPI is /api/admin/: users and clients, for an admin's bearer token
// or a client-credentials token with the admin scope.
type AdminAPI struct {
	apiBase
	clients    ClientRegistry
	apis       APIRegistry
	connectors ConnectorRegistry
	events     EventStore
	// forgetClient drops a deleted client from the protocol's cache.
	forgetClient func(id string)
}

// NewAdminAPI returns the admin API.
func NewAdminAPI(acc Accounts, reg ClientRegistry, apiReg APIRegistry, connectorReg ConnectorRegistry, events EventStore, forgetClient func(string), issuer string, tokens web.TokenVerifier, log *slog.Logger) (*AdminAPI, error) {
	if reg == nil || apiReg == nil || connectorReg == nil || events == nil || tokens == nil {
		return nil, errors.New("web: AdminAPI needs client, API and connector registries, an event store and a token verifier")
	}
	base, err := newAPIBase(acc, issuer, tokens, log)
	if err != nil {
		return nil, err
	}
	if forgetClient == nil {
		forgetClient = func(string) {}
	}
	// Admin calls are bearer-only: no cookie session reaches them, so no
	// page can ride an admin's browser into this API.
	base.bearerOnly = true
	return &AdminAPI{apiBase: base, clients: reg, apis: apiReg, connectors: connectorReg, events: events, forgetClient: forgetClient}, nil
}

// Endpoints lists the routes.
func (a *AdminAPI) Endpoints() []Endpoint {
	return []Endpoint{
		{http.MethodGet, "/api/admin/users"},
		{http.MethodGet, "/api/admin/users/{id}"}, {http.MethodPatch, "/api/admin/users/{id}"}, {http.MethodDelete, "/api/admin/users/{id}"},
		{http.MethodPost, "/api/admin/users/{id}/password"}, {http.MethodDelete, "/api/admin/users/{id}/passkeys"},
		{http.MethodDelete, "/api/admin/users/{id}/second-factor"},
		{http.MethodGet, "/api/admin/clients"}, {http.MethodPost, "/api/admin/clients"},
		{http.MethodGet, "/api/admin/clients/{id}"}, {http.MethodPatch, "/api/admin/clients/{id}"}, {http.MethodDelete, "/api/admin/clients/{id}"},
		{http.MethodPost, "/api/admin/clients/{id}/secret"},
		{http.MethodGet, "/api/admin/apis"}, {http.MethodPost, "/api/admin/apis"},
		{http.MethodGet, "/api/admin/apis/{id}"}, {http.MethodPatch, "/api/admin/apis/{id}"}, {http.MethodDelete, "/api/admin/apis/{id}"},
		{http.MethodGet, "/api/admin/connectors"}, {http.MethodPost, "/api/admin/connectors"},
		{http.MethodGet, "/api/admin/connectors/{id}"}, {http.MethodPatch, "/api/admin/connectors/{id}"}, {http.MethodDelete, "/api/admin/connectors/{id}"},
		{http.MethodGet, "/api/admin/events"},
	}
}

// Routes mounts the endpoints on mux.
func (a *AdminAPI) Routes(mux *http.ServeMux) {
	mux.Handle("/api/admin/users", a.route(map[string]apiHandler{http.MethodGet: a.listUsers}))
	mux.Handle("/api/admin/users/{id}", a.route(map[string]apiHandler{
		http.MethodGet: a.getUser, http.MethodPatch: a.updateUser, http.MethodDelete: a.deleteUser,
	}))
	mux.Handle("/api/admin/users/{id}/password", a.route(map[string]apiHandler{http.MethodPost: a.setPassword}))
	mux.Handle("/api/admin/users/{id}/passkeys", a.route(map[string]apiHandler{http.MethodDelete: a.removePasskeys}))
	mux.Handle("/api/admin/users/{id}/second-factor", a.route(map[string]apiHandler{http.MethodDelete: a.removeSecondFactor}))
	mux.Handle("/api/admin/clients", a.route(map[string]apiHandler{http.MethodGet: a.listClients, http.MethodPost: a.createClient}))
	mux.Handle("/api/admin/clients/{id}", a.route(map[string]apiHandler{http.MethodGet: a.getClient, http.MethodPatch: a.updateClient, http.MethodDelete: a.deleteClient}))
	mux.Handle("/api/admin/clients/{id}/secret", a.route(map[string]apiHandler{http.MethodPost: a.rotateClientSecret}))
	mux.Handle("/api/admin/events", a.route(map[string]apiHandler{http.MethodGet: a.listEvents}))
	mux.Handle("/api/admin/apis", a.route(map[string]apiHandler{http.MethodGet: a.listAPIs, http.MethodPost: a.createAPI}))
	// The identifier is a URI, URL-escaped into one path segment.
	mux.Handle("/api/admin/connectors", a.route(map[string]apiHandler{http.MethodGet: a.listConnectors, http.MethodPost: a.createConnector}))
	mux.Handle("/api/admin/connectors/{id}", a.route(map[string]apiHandler{http.MethodGet: a.getConnector, http.MethodPatch: a.updateConnector, http.MethodDelete: a.deleteConnector}))
	mux.Handle("/api/admin/apis/{id}", a.route(map[string]apiHandler{http.MethodGet: a.getAPI, http.MethodPatch: a.updateAPI, http.MethodDelete: a.deleteAPI}))
}

func (a *AdminAPI) who(c web.Caller) string {
	if c.User.ID != "" {
		return c.User.ID
	}
	return "client:" + c.ClientID
}

func (a *AdminAPI) listUsers(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.admin(r); err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 50, 1, 200)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	role := q.Get("role")
	if role != "" && !accounts.ValidRole(role) {
		return web.Errorf(http.StatusBadRequest, "role must be admin, user or guest")
	}
	users, err := a.accounts.ListUsers(r.Context(), storage.UserFilter{
		UsernamePrefix: q.Get("username"), EmailPrefix: q.Get("email"), Role: role, After: q.Get("after"), Limit: limit + 1,
	})
	if err != nil {
		return err
	}
	out := struct {
		Users []UserJSON `json:"users"`
		Next  string     `json:"next,omitempty"`
	}{Users: []UserJSON{}}
	if len(users) > limit {
		users = users[:limit]
		out.Next = strings.ToLower(users[limit-1].Username)
	}
	for _, u := range users {
		out.Users = append(out.Users, ToAdminUserJSON(u))
	}
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *AdminAPI) getUser(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.admin(r); err != nil {
		return err
	}
	u, err := a.accounts.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, ToAdminUserJSON(u))
	return nil
}

type adminUserChange struct {
	Role          *string `json:"role"`
	Disabled      *bool   `json:"disabled"`
	EmailVerified *bool   `json:"emailVerified"`
	// Claims: absent leaves them, null clears them, an object sets them.
	Claims json.RawMessage `json:"claims"`
	profileFields
}

func (a *AdminAPI) updateUser(w http.ResponseWriter, r *http.Request) error {
	c, err := a.admin(r)
	if err != nil {
		return err
	}
	var body adminUserChange
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	u, err := a.accounts.AdminUpdate(r.Context(), r.PathValue("id"), accounts.AdminChange{
		Role: body.Role, Disabled: body.Disabled, EmailVerified: body.EmailVerified, Profile: body.profileFields.update(),
		Claims: body.Claims,
	})
	if err != nil {
		return err
	}
	a.log.Info("user changed by admin", "request_id", web.RequestID(r.Context()), "user", u.ID, "by", a.who(c))
	web.WriteJSON(w, http.StatusOK, ToAdminUserJSON(u))
	return nil
}

func (a *AdminAPI) deleteUser(w http.ResponseWriter, r *http.Request) error {
	c, err := a.admin(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := a.accounts.DeleteUser(r.Context(), id); err != nil {
		return err
	}
	a.log.Info("user deleted by admin", "request_id", web.RequestID(r.Context()), "user", id, "by", a.who(c))
	web.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

type newPassword struct {
	Password string `json:"password"`
}

func (a *AdminAPI) setPassword(w http.ResponseWriter, r *http.Request) error {
	c, err := a.admin(r)
	if err != nil {
		return err
	}
	var body newPassword
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := a.accounts.AdminSetPassword(r.Context(), id, body.Password); err != nil {
		return err
	}
	a.log.Info("password reset by admin", "request_id", web.RequestID(r.Context()), "user", id, "by", a.who(c))
	web.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

// removePasskeys removes every passkey of a user (a lost device): the
// account is no longer passkey-only and its sessions and tokens end.
func (a *AdminAPI) removePasskeys(w http.ResponseWriter, r *http.Request) error {
	c, err := a.admin(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	n, err := a.accounts.AdminRemovePasskeys(r.Context(), id)
	if err != nil {
		return err
	}
	a.log.Info("passkeys removed by admin", "request_id", web.RequestID(r.Context()), "user", id, "count", n, "by", a.who(c))
	web.WriteJSON(w, http.StatusOK, map[string]int64{"removed": n})
	return nil
}

// removeSecondFactor removes a user's authenticator app and recovery
// codes (a lost phone) and ends their sessions.
func (a *AdminAPI) removeSecondFactor(w http.ResponseWriter, r *http.Request) error {
	c, err := a.admin(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := a.accounts.AdminRemoveSecondFactor(r.Context(), id); err != nil {
		return err
	}
	a.log.Info("second factor removed by admin", "request_id", web.RequestID(r.Context()), "user", id, "by", a.who(c))
	web.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

type clientJSON struct {
	ClientID               string   `json:"clientId"`
	ClientSecret           string   `json:"clientSecret,omitempty"`
	RedirectURIs           []string `json:"redirectUris"`
	PostLogoutRedirectURIs []string `json:"postLogoutRedirectUris"`
	GrantTypes             []string `json:"grantTypes"`
	Scope                  string   `json:"scope"`
	Public                 bool     `json:"public"`
	FirstParty             bool     `json:"firstParty"`
	AllowNoPKCE            bool     `json:"allowNoPkce"`
	RequirePAR             bool     `json:"requirePar"`
	RequireDPoP            bool     `json:"requireDpop"`
	BackchannelLogoutURI   string   `json:"backchannelLogoutUri,omitempty"`
	Name                   string   `json:"name,omitempty"`
	LogoURI                string   `json:"logoUri,omitempty"`
	ClientURI              string   `json:"clientUri,omitempty"`
	PolicyURI              string   `json:"policyUri,omitempty"`
	TosURI                 string   `json:"tosUri,omitempty"`
	IDTokenAlg             string   `json:"idTokenAlg"`
	clientKeysJSON
	// Owner is the developer who registered the app (a user ID),
	// Registration how ("developer", "token", "open"; "" by an admin).
	Owner        string `json:"owner,omitempty"`
	Registration string `json:"registration,omitempty"`
	Disabled     bool   `json:"disabled"`
	CreatedAt    string `json:"createdAt"`
}

func toClientJSON(c storage.Client, secret string) clientJSON {
	return clientJSON{
		ClientID: c.ID, ClientSecret: secret, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		GrantTypes: c.GrantTypes, Scope: strings.Join(c.Scopes, " "), Public: c.Public, FirstParty: c.FirstParty, AllowNoPKCE: c.AllowNoPKCE, RequirePAR: c.RequirePAR, RequireDPoP: c.RequireDPoP,
		BackchannelLogoutURI: c.BackchannelLogoutURI, CreatedAt: c.CreatedAt.UTC().Format(time.RFC3339),
		Name: c.Name, LogoURI: c.LogoURI, ClientURI: c.ClientURI, PolicyURI: c.PolicyURI, TosURI: c.TosURI, IDTokenAlg: c.IDTokenAlg,
		Owner: c.Owner, Registration: c.Registration, Disabled: c.Disabled, clientKeysJSON: toClientKeysJSON(c),
	}
}

func (a *AdminAPI) listClients(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.admin(r); err != nil {
		return err
	}
	list, err := a.clients.List(r.Context())
	if err != nil {
		return err
	}
	out := struct {
		Clients []clientJSON `json:"clients"`
	}{Clients: []clientJSON{}}
	for _, c := range list {
		out.Clients = append(out.Clients, toClientJSON(c, ""))
	}
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}

type newClient struct {
	ClientID               string   `json:"clientId"`
	ClientSecret           string   `json:"clientSecret"`
	RedirectURIs           []string `json:"redirectUris"`
	PostLogoutRedirectURIs []string `json:"postLogoutRedirectUris"`
	GrantTypes             []string `json:"grantTypes"`
	Scope                  string   `json:"scope"`
	Public                 bool     `json:"public"`
	FirstParty             bool     `json:"firstParty"`
	AllowNoPKCE            bool     `json:"allowNoPkce"`
	RequirePAR             bool     `json:"requirePar"`
	RequireDPoP            bool     `json:"requireDpop"`
	BackchannelLogoutURI   string   `json:"backchannelLogoutUri"`
	Name                   string   `json:"name"`
	LogoURI                string   `json:"logoUri"`
	ClientURI              string   `json:"clientUri"`
	PolicyURI              string   `json:"policyUri"`
	TosURI                 string   `json:"tosUri"`
	IDTokenAlg             string   `json:"idTokenAlg"`
	clientKeysJSON
}

func (a *AdminAPI) createClient(w http.ResponseWriter, r *http.Request) error {
	c, err := a.admin(r)
	if err != nil {
		return err
	}
	var body newClient
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	spec := clients.Spec{
		ID: body.ClientID, Secret: body.ClientSecret, RedirectURIs: body.RedirectURIs, PostLogoutRedirectURIs: body.PostLogoutRedirectURIs,
		GrantTypes: body.GrantTypes, Public: body.Public, FirstParty: body.FirstParty, AllowNoPKCE: body.AllowNoPKCE, RequirePAR: body.RequirePAR, RequireDPoP: body.RequireDPoP,
		BackchannelLogoutURI: body.BackchannelLogoutURI, IDTokenAlg: body.IDTokenAlg,
		Display: clients.Display{Name: body.Name, LogoURI: body.LogoURI, ClientURI: body.ClientURI, PolicyURI: body.PolicyURI, TosURI: body.TosURI},
		Keys:    body.clientKeysJSON.keys(),
	}
	if body.Scope != "" {
		spec.Scopes = strings.Fields(body.Scope)
	}
	created, secret, err := a.clients.Create(r.Context(), spec)
	if err != nil {
		return err
	}
	if body.ClientSecret != "" {
		secret = "" // the caller chose it; do not echo it
	}
	a.log.Info("client created by admin", "request_id", web.RequestID(r.Context()), "client", created.ID, "by", a.who(c))
	web.WriteJSON(w, http.StatusOK, toClientJSON(created, secret))
	return nil
}

// clientPatch changes a client; a field left out stays as it is.
type clientPatch struct {
	RedirectURIs           *[]string `json:"redirectUris"`
	PostLogoutRedirectURIs *[]string `json:"postLogoutRedirectUris"`
	GrantTypes             *[]string `json:"grantTypes"`
	Scope                  *string   `json:"scope"`
	FirstParty             *bool     `json:"firstParty"`
	AllowNoPKCE            *bool     `json:"allowNoPkce"`
	RequirePAR             *bool     `json:"requirePar"`
	RequireDPoP            *bool     `json:"requireDpop"`
	BackchannelLogoutURI   *string   `json:"backchannelLogoutUri"`
	Name                   *string   `json:"name"`
	LogoURI                *string   `json:"logoUri"`
	ClientURI              *string   `json:"clientUri"`
	PolicyURI              *string   `json:"policyUri"`
	TosURI                 *string   `json:"tosUri"`
	IDTokenAlg             *string   `json:"idTokenAlg"`
	keysPatch
	// Disabled refuses the client everywhere (or accepts it again).
	Disabled *bool `json:"disabled"`
}

// apply sets the fields the patch carries.
func (p clientPatch) apply(s *clients.Spec) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	if p.RedirectURIs != nil {
		s.RedirectURIs = *p.RedirectURIs
	}
	if p.PostLogoutRedirectURIs != nil {
		s.PostLogoutRedirectURIs = *p.PostLogoutRedirectURIs
	}
	if p.GrantTypes != nil {
		s.GrantTypes = *p.GrantTypes
	}
	if p.Scope != nil {
		s.Scopes = strings.Fields(*p.Scope)
	}
	for _, b := range []struct {
		dst *bool
		v   *bool
	}{{&s.FirstParty, p.FirstParty}, {&s.AllowNoPKCE, p.AllowNoPKCE}, {&s.RequirePAR, p.RequirePAR}, {&s.RequireDPoP, p.RequireDPoP}} {
		if b.v != nil {
			*b.dst = *b.v
		}
	}
	set(&s.BackchannelLogoutURI, p.BackchannelLogoutURI)
	set(&s.Name, p.Name)
	set(&s.LogoURI, p.LogoURI)
	set(&s.ClientURI, p.ClientURI)
	set(&s.PolicyURI, p.PolicyURI)
	set(&s.TosURI, p.TosURI)
	set(&s.IDTokenAlg, p.IDTokenAlg)
	p.keysPatch.apply(s)
	s.Disabled = p.Disabled
}

func (a *AdminAPI) updateClient(w http.ResponseWriter, r *http.Request) error {
	c, err := a.admin(r)
	if err != nil {
		return err
	}
	var body clientPatch
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	id := r.PathValue("id")
	// One write: the fields and the disabled flag change together or
	// not at all.
	updated, err := a.clients.Update(r.Context(), id, body.apply)
	if err != nil {
		return err
	}
	a.forgetClient(id)
	a.log.Info("client changed by admin", "request_id", web.RequestID(r.Context()), "client", id, "by", a.who(c))
	web.WriteJSON(w, http.StatusOK, toClientJSON(updated, ""))
	return nil
}

// rotateClientSecret gives a confidential client a new secret, shown once;
// {"keepOld": "24h"} keeps the old one valid that long.
func (a *AdminAPI) rotateClientSecret(w http.ResponseWriter, r *http.Request) error {
	c, err := a.admin(r)
	if err != nil {
		return err
	}
	var body struct {
		KeepOld string `json:"keepOld"`
	}
	if r.ContentLength != 0 {
		if err := web.DecodeJSON(w, r, &body); err != nil {
			return err
		}
	}
	var keep time.Duration
	if body.KeepOld != "" {
		if keep, err = time.ParseDuration(body.KeepOld); err != nil {
			return web.Errorf(http.StatusBadRequest, "keepOld must be a duration such as 24h")
		}
	}
	id := r.PathValue("id")
	secret, err := a.clients.RotateSecret(r.Context(), id, keep)
	if err != nil {
		return err
	}
	a.forgetClient(id)
	a.log.Info("client secret rotated by admin", "request_id", web.RequestID(r.Context()), "client", id, "by", a.who(c), "keep_old", keep.String())
	w.Header().Set("Cache-Control", "no-store")
	web.WriteJSON(w, http.StatusOK, map[string]string{"secret": secret})
	return nil
}

func (a *AdminAPI) getClient(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.admin(r); err != nil {
		return err
	}
	c, err := a.clients.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, toClientJSON(c, ""))
	return nil
}

func (a *AdminAPI) deleteClient(w http.ResponseWriter, r *http.Request) error {
	c, err := a.admin(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := a.clients.Delete(r.Context(), id); err != nil {
		return err
	}
	a.forgetClient(id)
	a.log.Info("client deleted by admin", "request_id", web.RequestID(r.Context()), "client", id, "by", a.who(c))
	web.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

// ToAdminUserJSON is a user as admins see it (the admin API and the
// command line): with custom claims.
func ToAdminUserJSON(u storage.User) UserJSON {
	out := toUserJSON(u)
	if len(u.Claims) > 0 {
		out.Claims = json.RawMessage(u.Claims)
	}
	return out
}
