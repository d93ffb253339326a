package pages

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// The admin console: users, clients, APIs and signing keys, for a
// signed-in active admin. It is the admin API's actions as forms; the
// rules (last-admin guard, client and API validation) are the same
// because they live below both.

// consolePage is the data every console page shares.
type consolePage struct {
	CSRFToken, Base, Done, Error, Section string
	Me                                    storage.User
}

func (p *Pages) consoleBase(w http.ResponseWriter, r *http.Request, c web.Caller, section string) consolePage {
	return consolePage{
		CSRFToken: p.csrf.Token(w, r), Base: p.base, Me: c.User, Section: section,
		Done: consoleDone[r.URL.Query().Get("done")],
	}
}

var consoleDone = map[string]string{
	"role": "The role is changed.", "disabled": "The account is disabled; its sessions and tokens are gone.",
	"enabled": "The account is enabled.", "verified": "The email address is marked verified.",
	"unverified": "The email address is marked unverified.", "password": "The password is set; the user's sessions and tokens are gone.",
	"deleted": "The account is deleted.", "passkeys-removed": "Every passkey is removed; the user's sessions and tokens are gone.", "client-deleted": "The client is deleted, with its tokens.",
	"client-changed": "The client is changed.", "user-created": "The user is created.", "api-created": "The API is registered.", "api-changed": "The API is changed.", "api-deleted": "The API is deleted.", "rotated": "New signing keys are in use; the old ones stay published until their tokens expire.",
}

// admin lets only a signed-in active admin through.
func (p *Pages) admin(h func(w http.ResponseWriter, r *http.Request, c web.Caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := p.caller(w, r)
		if !ok {
			return
		}
		if !c.User.IsActiveAdmin() {
			p.fail(w, r, http.StatusForbidden, "Admins only", "The console is for this site's administrators.")
			return
		}
		h(w, r, c)
	}
}

func (p *Pages) consoleHome(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.site.Render(w, r, http.StatusOK, "admin.html", p.consoleBase(w, r, c, "home"))
}

// usersPage is the data of admin_users.html.
type usersPage struct {
	consolePage
	Query, Role, Next string
	Users             []storage.User
	// NewUsername and NewEmail keep the new-user form's values after an
	// error.
	NewUsername, NewEmail string
}

const usersPerPage = 50

func (p *Pages) usersPage(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.renderUsers(w, r, c, http.StatusOK, usersPage{})
}

// createUser makes an account from the console, with createUser's rules
// (an admin may give any role).
func (p *Pages) createUser(w http.ResponseWriter, r *http.Request, c web.Caller) {
	n := accounts.NewUser{Username: strings.TrimSpace(r.PostFormValue("username")), Password: r.PostFormValue("password"), Role: r.PostFormValue("role")}
	email := strings.TrimSpace(r.PostFormValue("email"))
	if email != "" {
		n.Profile.Email = accounts.Value(email)
	}
	if !accounts.ValidRole(n.Role) {
		n.Role = storage.RoleUser
	}
	u, err := p.c.Accounts.Create(r.Context(), n)
	if err != nil {
		status, msg := p.message(r, err)
		data := usersPage{NewUsername: n.Username, NewEmail: email}
		data.Error = msg
		p.renderUsers(w, r, c, status, data)
		return
	}
	p.log.Info("user created by admin", "request_id", web.RequestID(r.Context()), "user", u.ID, "role", u.Role, "by", c.User.ID)
	p.done(w, r, AdminPath+"/users/"+url.PathEscape(u.ID), "user-created")
}

func (p *Pages) renderUsers(w http.ResponseWriter, r *http.Request, c web.Caller, status int, data usersPage) {
	q := r.URL.Query()
	msg := data.Error
	data.consolePage, data.Query, data.Role = p.consoleBase(w, r, c, "users"), strings.TrimSpace(q.Get("q")), q.Get("role")
	if data.Error = msg; msg != "" {
		data.Done = ""
	}
	f := storage.UserFilter{After: q.Get("after"), Limit: usersPerPage + 1}
	if data.Role != "" {
		if !accounts.ValidRole(data.Role) {
			data.Role = ""
		}
		f.Role = data.Role
	}
	if strings.Contains(data.Query, "@") {
		f.EmailPrefix = data.Query
	} else {
		f.UsernamePrefix = data.Query
	}
	users, err := p.c.Accounts.ListUsers(r.Context(), f)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	if len(users) > usersPerPage {
		users = users[:usersPerPage]
		data.Next = "?" + url.Values{"q": {data.Query}, "role": {data.Role}, "after": {strings.ToLower(users[len(users)-1].Username)}}.Encode()
	}
	data.Users = users
	p.site.Render(w, r, status, "admin_users.html", data)
}

// userPage is the data of admin_user.html.
type userPage struct {
	consolePage
	User       storage.User
	PasskeysOn bool
	Passkeys   []passkeyView
}

func (p *Pages) userPage(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.renderUser(w, r, c, r.PathValue("id"), http.StatusOK, "")
}

func (p *Pages) renderUser(w http.ResponseWriter, r *http.Request, c web.Caller, id string, status int, msg string) {
	u, err := p.c.Accounts.GetUser(r.Context(), id)
	if errors.Is(err, accounts.ErrUserNotFound) {
		p.fail(w, r, http.StatusNotFound, "No such user", "This account does not exist (any more).")
		return
	}
	if err != nil {
		p.internal(w, r, err)
		return
	}
	data := userPage{consolePage: p.consoleBase(w, r, c, "users"), User: u}
	if p.c.Passkeys != nil {
		keys, err := p.c.Accounts.Passkeys(r.Context(), id)
		if err != nil {
			p.internal(w, r, err)
			return
		}
		data.PasskeysOn, data.Passkeys = true, passkeyViews(keys)
	}
	data.Error = msg
	if msg != "" {
		data.Done = ""
	}
	p.site.Render(w, r, status, "admin_user.html", data)
}

// userAction applies one change to a user.
func (p *Pages) userAction(w http.ResponseWriter, r *http.Request, c web.Caller) {
	id, action := r.PathValue("id"), r.PathValue("action")
	ctx := r.Context()
	yes, no := true, false
	var err error
	done := action
	if (action == "disable" || action == "remove-passkeys" || action == "delete") && r.PostFormValue("confirm") != "yes" {
		p.renderUser(w, r, c, id, http.StatusBadRequest, "Tick the box to confirm.")
		return
	}
	switch action {
	case "role":
		role := r.PostFormValue("role")
		_, err = p.c.Accounts.AdminUpdate(ctx, id, accounts.AdminChange{Role: &role})
	case "disable":
		_, err = p.c.Accounts.AdminUpdate(ctx, id, accounts.AdminChange{Disabled: &yes})
		done = "disabled"
	case "enable":
		_, err = p.c.Accounts.AdminUpdate(ctx, id, accounts.AdminChange{Disabled: &no})
		done = "enabled"
	case "verify-email":
		_, err = p.c.Accounts.AdminUpdate(ctx, id, accounts.AdminChange{EmailVerified: &yes})
		done = "verified"
	case "unverify-email":
		_, err = p.c.Accounts.AdminUpdate(ctx, id, accounts.AdminChange{EmailVerified: &no})
		done = "unverified"
	case "password":
		err = p.c.Accounts.AdminSetPassword(ctx, id, r.PostFormValue("password"))
	case "remove-passkeys":
		_, err = p.c.Accounts.AdminRemovePasskeys(ctx, id)
		done = "passkeys-removed"
	case "delete":
		if err = p.c.Accounts.DeleteUser(ctx, id); err == nil {
			p.log.Info("user deleted by admin", "request_id", web.RequestID(ctx), "user", id, "by", c.User.ID)
			p.done(w, r, AdminPath+"/users", "deleted")
			return
		}
	default:
		p.fail(w, r, http.StatusNotFound, "Not found", "There is no such action.")
		return
	}
	if err != nil {
		if errors.Is(err, accounts.ErrUserNotFound) {
			p.fail(w, r, http.StatusNotFound, "No such user", "This account does not exist (any more).")
			return
		}
		status, msg := p.message(r, err)
		p.renderUser(w, r, c, id, status, msg)
		return
	}
	p.log.Info("user changed by admin", "request_id", web.RequestID(ctx), "user", id, "action", action, "by", c.User.ID)
	p.done(w, r, AdminPath+"/users/"+url.PathEscape(id), done)
}

// clientsPage is the data of admin_clients.html.
type clientsPage struct {
	consolePage
	Clients []clientRow
	// Created is set once, right after a client is created: its secret is
	// shown this one time.
	Created       *web.ClientView
	CreatedSecret string
	Form          clientForm
	Grants        []string
}

type clientRow struct {
	View                          web.ClientView
	Kind, Grants, Scopes, Created string
	RedirectURIs                  []string
}

// clientForm holds the create form's values, so an error keeps them.
type clientForm struct {
	ID, RedirectURIs, PostLogoutRedirectURIs, Scope, BackchannelLogoutURI string
	Name, LogoURI, ClientURI, PolicyURI, TosURI, IDTokenAlg               string
	Grants                                                                map[string]bool
	Public, FirstParty, AllowNoPKCE, RequirePAR                           bool
}

func (p *Pages) clientsPage(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.renderClients(w, r, c, http.StatusOK, clientsPage{Form: clientForm{Grants: map[string]bool{"authorization_code": true, "refresh_token": true}}})
}

func (p *Pages) renderClients(w http.ResponseWriter, r *http.Request, c web.Caller, status int, data clientsPage) {
	msg := data.Error
	data.consolePage = p.consoleBase(w, r, c, "clients")
	data.Error = msg
	if status != http.StatusOK || data.Created != nil {
		data.Done = ""
	}
	data.Grants = clients.GrantTypes
	list, err := p.c.Clients.List(r.Context())
	if err != nil {
		p.internal(w, r, err)
		return
	}
	for _, cl := range list {
		data.Clients = append(data.Clients, clientRow{
			View: web.ViewOf(cl), Kind: strings.ReplaceAll(clients.Kind(cl), ",", ", "), Grants: strings.Join(cl.GrantTypes, ", "), Scopes: strings.Join(cl.Scopes, " "),
			Created: formatTime(cl.CreatedAt), RedirectURIs: cl.RedirectURIs,
		})
	}
	if data.Error != "" {
		data.Done = ""
	}
	p.site.Render(w, r, status, "admin_clients.html", data)
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ' ' || r == ',' }) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// clientFormOf reads the client form (create and edit share its fields).
func clientFormOf(r *http.Request) clientForm {
	f := clientForm{
		ID: strings.TrimSpace(r.PostFormValue("client_id")), RedirectURIs: r.PostFormValue("redirect_uris"),
		PostLogoutRedirectURIs: r.PostFormValue("post_logout_redirect_uris"), Scope: r.PostFormValue("scope"),
		BackchannelLogoutURI: strings.TrimSpace(r.PostFormValue("backchannel_logout_uri")),
		Name:                 strings.TrimSpace(r.PostFormValue("name")), LogoURI: strings.TrimSpace(r.PostFormValue("logo_uri")),
		ClientURI: strings.TrimSpace(r.PostFormValue("client_uri")), PolicyURI: strings.TrimSpace(r.PostFormValue("policy_uri")),
		TosURI: strings.TrimSpace(r.PostFormValue("tos_uri")), Grants: map[string]bool{},
		Public: r.PostFormValue("public") == "yes", FirstParty: r.PostFormValue("first_party") == "yes", AllowNoPKCE: r.PostFormValue("allow_no_pkce") == "yes",
		RequirePAR: r.PostFormValue("require_par") == "yes", IDTokenAlg: r.PostFormValue("id_token_alg"),
	}
	for _, g := range r.PostForm["grant_type"] {
		f.Grants[g] = true
	}
	return f
}

// spec is the client the form describes.
func (f clientForm) spec() clients.Spec {
	s := clients.Spec{
		ID: f.ID, RedirectURIs: lines(f.RedirectURIs), PostLogoutRedirectURIs: lines(f.PostLogoutRedirectURIs),
		Scopes: strings.Fields(f.Scope), Public: f.Public, FirstParty: f.FirstParty, AllowNoPKCE: f.AllowNoPKCE, RequirePAR: f.RequirePAR,
		BackchannelLogoutURI: f.BackchannelLogoutURI, IDTokenAlg: f.IDTokenAlg,
		Display: clients.Display{Name: f.Name, LogoURI: f.LogoURI, ClientURI: f.ClientURI, PolicyURI: f.PolicyURI, TosURI: f.TosURI},
	}
	for _, g := range clients.GrantTypes {
		if f.Grants[g] {
			s.GrantTypes = append(s.GrantTypes, g)
		}
	}
	return s
}

// clientFormFrom fills the edit form from a stored client.
func clientFormFrom(c storage.Client) clientForm {
	f := clientForm{
		ID: c.ID, RedirectURIs: strings.Join(c.RedirectURIs, "\n"), PostLogoutRedirectURIs: strings.Join(c.PostLogoutRedirectURIs, "\n"),
		Scope: strings.Join(c.Scopes, " "), BackchannelLogoutURI: c.BackchannelLogoutURI, Name: c.Name, LogoURI: c.LogoURI,
		ClientURI: c.ClientURI, PolicyURI: c.PolicyURI, TosURI: c.TosURI, Grants: map[string]bool{},
		Public: c.Public, FirstParty: c.FirstParty, AllowNoPKCE: c.AllowNoPKCE, RequirePAR: c.RequirePAR, IDTokenAlg: c.IDTokenAlg,
	}
	for _, g := range c.GrantTypes {
		f.Grants[g] = true
	}
	return f
}

func (p *Pages) createClient(w http.ResponseWriter, r *http.Request, c web.Caller) {
	f := clientFormOf(r)
	spec := f.spec()
	spec.Secret = r.PostFormValue("client_secret")
	created, secret, err := p.c.Clients.Create(r.Context(), spec)
	if err != nil {
		status, msg := p.message(r, err)
		data := clientsPage{Form: f}
		data.Error = msg
		p.renderClients(w, r, c, status, data)
		return
	}
	if spec.Secret != "" {
		secret = "" // the admin chose it; never echo it
	}
	p.log.Info("client created by admin", "request_id", web.RequestID(r.Context()), "client", created.ID, "by", c.User.ID)
	p.record(r, audit.ClientCreated, "", created.ID, nil)
	view := web.ViewOf(created)
	p.renderClients(w, r, c, http.StatusOK, clientsPage{Created: &view, CreatedSecret: secret,
		Form: clientForm{Grants: map[string]bool{"authorization_code": true, "refresh_token": true}}})
}

// clientPage is the data of admin_client.html: one client's edit form, and
// its new secret once after a rotation.
type clientPage struct {
	consolePage
	Client    clientRow
	Form      clientForm
	Grants    []string
	NewSecret string
}

func (p *Pages) clientPage(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.renderClient(w, r, c, r.PathValue("id"), http.StatusOK, nil, "", "")
}

// renderClient shows a client's page; form (nil: the stored client) keeps
// what was typed when saving failed.
func (p *Pages) renderClient(w http.ResponseWriter, r *http.Request, c web.Caller, id string, status int, form *clientForm, msg, secret string) {
	cl, err := p.c.Clients.Get(r.Context(), id)
	if errors.Is(err, clients.ErrNotFound) {
		p.fail(w, r, http.StatusNotFound, "No such client", "This client does not exist (any more).")
		return
	}
	if err != nil {
		p.internal(w, r, err)
		return
	}
	data := clientPage{consolePage: p.consoleBase(w, r, c, "clients"), Grants: clients.GrantTypes, NewSecret: secret,
		Client: clientRow{View: web.ViewOf(cl), Kind: strings.ReplaceAll(clients.Kind(cl), ",", ", "), Created: formatTime(cl.CreatedAt)}}
	data.Form = clientFormFrom(cl)
	if form != nil {
		data.Form = *form
	}
	if data.Error = msg; msg != "" || secret != "" {
		data.Done = ""
	}
	p.site.Render(w, r, status, "admin_client.html", data)
}

// updateClient saves a client's edit form: every field as a whole.
func (p *Pages) updateClient(w http.ResponseWriter, r *http.Request, c web.Caller) {
	id := r.PathValue("id")
	f := clientFormOf(r)
	next := f.spec()
	_, err := p.c.Clients.Update(r.Context(), id, func(s *clients.Spec) {
		public := s.Public
		*s = next
		s.ID, s.Public = id, public
	})
	if err != nil {
		status, msg := p.message(r, err)
		p.renderClient(w, r, c, id, status, &f, msg, "")
		return
	}
	p.forgetClient(id)
	p.log.Info("client changed by admin", "request_id", web.RequestID(r.Context()), "client", id, "by", c.User.ID)
	p.record(r, audit.ClientChanged, "", id, nil)
	p.done(w, r, AdminPath+"/clients/"+url.PathEscape(id), "client-changed")
}

// rotateClientSecret gives the client a new secret, shown this once; the
// old one stays valid for the hours asked (0: it ends now).
func (p *Pages) rotateClientSecret(w http.ResponseWriter, r *http.Request, c web.Caller) {
	id := r.PathValue("id")
	var keep time.Duration
	if h := strings.TrimSpace(r.PostFormValue("keep_old_hours")); h != "" && h != "0" {
		n, err := strconv.Atoi(h)
		if err != nil || n < 0 {
			p.renderClient(w, r, c, id, http.StatusBadRequest, nil, "Keep the old secret for a whole number of hours (0 to 720).", "")
			return
		}
		keep = time.Duration(n) * time.Hour
	}
	secret, err := p.c.Clients.RotateSecret(r.Context(), id, keep)
	if err != nil {
		status, msg := p.message(r, err)
		p.renderClient(w, r, c, id, status, nil, msg, "")
		return
	}
	p.forgetClient(id)
	p.log.Info("client secret rotated by admin", "request_id", web.RequestID(r.Context()), "client", id, "by", c.User.ID, "keep_old", keep.String())
	p.record(r, audit.ClientChanged, "", id, map[string]any{"secret": "rotated", "keep_old": keep.String()})
	p.renderClient(w, r, c, id, http.StatusOK, nil, "", secret)
}

func (p *Pages) forgetClient(id string) {
	if p.c.ForgetClient != nil {
		p.c.ForgetClient(id)
	}
}

func (p *Pages) deleteClient(w http.ResponseWriter, r *http.Request, c web.Caller) {
	id := r.PostFormValue("client_id")
	if r.PostFormValue("confirm") != "yes" {
		data := clientsPage{Form: clientForm{Grants: map[string]bool{}}}
		data.Error = "Tick the box next to Delete to confirm."
		p.renderClients(w, r, c, http.StatusBadRequest, data)
		return
	}
	if err := p.c.Clients.Delete(r.Context(), id); err != nil {
		status, msg := p.message(r, err)
		data := clientsPage{Form: clientForm{Grants: map[string]bool{}}}
		data.Error = msg
		p.renderClients(w, r, c, status, data)
		return
	}
	p.c.ForgetClient(id)
	p.log.Info("client deleted by admin", "request_id", web.RequestID(r.Context()), "client", id, "by", c.User.ID)
	p.record(r, audit.ClientDeleted, "", id, nil)
	p.done(w, r, AdminPath+"/clients", "client-deleted")
}

// apisPage is the data of admin_apis.html.
type apisPage struct {
	consolePage
	APIs []storage.API
	Form apiForm
}

type apiForm struct{ ID, Name, Scopes, Claims, Introspectors string }

func (p *Pages) apisPage(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.renderAPIs(w, r, c, http.StatusOK, apisPage{})
}

func (p *Pages) renderAPIs(w http.ResponseWriter, r *http.Request, c web.Caller, status int, data apisPage) {
	msg := data.Error
	data.consolePage = p.consoleBase(w, r, c, "apis")
	if data.Error = msg; msg != "" {
		data.Done = ""
	}
	list, err := p.c.APIs.List(r.Context())
	if err != nil {
		p.internal(w, r, err)
		return
	}
	data.APIs = list
	p.site.Render(w, r, status, "admin_apis.html", data)
}

// scopeLines reads scopes one per line as name=description.
func scopeLines(text string) []storage.APIScope {
	var out []storage.APIScope
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		name, desc, _ := strings.Cut(l, "=")
		out = append(out, storage.APIScope{Name: strings.TrimSpace(name), Description: strings.TrimSpace(desc)})
	}
	return out
}

// createAPI registers an API: scopes one per line as name=description.
func (p *Pages) createAPI(w http.ResponseWriter, r *http.Request, c web.Caller) {
	f := apiForm{ID: strings.TrimSpace(r.PostFormValue("id")), Name: strings.TrimSpace(r.PostFormValue("name")),
		Scopes: r.PostFormValue("scopes"), Claims: r.PostFormValue("claims"), Introspectors: r.PostFormValue("introspectors")}
	spec := apis.Spec{ID: f.ID, Name: f.Name, Claims: lines(f.Claims), Scopes: scopeLines(f.Scopes), Introspectors: lines(f.Introspectors)}
	api, err := p.c.APIs.Create(r.Context(), spec)
	if err != nil {
		status, msg := p.message(r, err)
		data := apisPage{Form: f}
		data.Error = msg
		p.renderAPIs(w, r, c, status, data)
		return
	}
	p.log.Info("API registered", "request_id", web.RequestID(r.Context()), "api", api.ID, "by", c.User.ID)
	p.record(r, audit.APICreated, "", "", map[string]any{"api": api.ID})
	p.done(w, r, AdminPath+"/apis", "api-created")
}

// updateAPI changes an API from its edit form: name, scopes, claims and
// introspectors, each field as a whole.
func (p *Pages) updateAPI(w http.ResponseWriter, r *http.Request, c web.Caller) {
	id := r.PostFormValue("id")
	name := strings.TrimSpace(r.PostFormValue("name"))
	scopes, claims, introspectors := scopeLines(r.PostFormValue("scopes")), lines(r.PostFormValue("claims")), lines(r.PostFormValue("introspectors"))
	if _, err := p.c.APIs.Update(r.Context(), id, apis.Update{Name: &name, Scopes: &scopes, Claims: &claims, Introspectors: &introspectors}); err != nil {
		p.apisFailed(w, r, c, err)
		return
	}
	p.log.Info("API changed", "request_id", web.RequestID(r.Context()), "api", id, "by", c.User.ID)
	p.record(r, audit.APIChanged, "", "", map[string]any{"api": id})
	p.done(w, r, AdminPath+"/apis", "api-changed")
}

// apisFailed shows the APIs page again with what went wrong.
func (p *Pages) apisFailed(w http.ResponseWriter, r *http.Request, c web.Caller, err error) {
	status, msg := p.message(r, err)
	data := apisPage{}
	data.Error = msg
	p.renderAPIs(w, r, c, status, data)
}

func (p *Pages) deleteAPI(w http.ResponseWriter, r *http.Request, c web.Caller) {
	id := r.PostFormValue("id")
	if r.PostFormValue("confirm") != "yes" {
		data := apisPage{}
		data.Error = "Tick the box next to Delete to confirm."
		p.renderAPIs(w, r, c, http.StatusBadRequest, data)
		return
	}
	if err := p.c.APIs.Delete(r.Context(), id); err != nil {
		p.apisFailed(w, r, c, err)
		return
	}
	p.log.Info("API deleted", "request_id", web.RequestID(r.Context()), "api", id, "by", c.User.ID)
	p.record(r, audit.APIDeleted, "", "", map[string]any{"api": id})
	p.done(w, r, AdminPath+"/apis", "api-deleted")
}

// keysPage is the data of admin_keys.html.
type keysPage struct {
	consolePage
	Keys []keyRow
}

type keyRow struct{ KID, Alg, Created, Status string }

func (p *Pages) keysPage(w http.ResponseWriter, r *http.Request, c web.Caller) {
	data := keysPage{consolePage: p.consoleBase(w, r, c, "keys")}
	for _, k := range p.c.Keys.Published() {
		status := "signing"
		if !k.RetiredAt.IsZero() {
			status = "retired " + formatTime(k.RetiredAt) + ", verifying only"
		}
		data.Keys = append(data.Keys, keyRow{KID: k.KID, Alg: k.Alg, Created: formatTime(k.CreatedAt), Status: status})
	}
	sort.SliceStable(data.Keys, func(i, j int) bool { return data.Keys[i].Created > data.Keys[j].Created })
	p.site.Render(w, r, http.StatusOK, "admin_keys.html", data)
}

func (p *Pages) rotateKeys(w http.ResponseWriter, r *http.Request, c web.Caller) {
	if r.PostFormValue("confirm") != "yes" {
		p.fail(w, r, http.StatusBadRequest, "Not confirmed", "Tick the box next to Rotate to confirm.")
		return
	}
	added, err := p.c.Keys.Rotate(r.Context())
	if err != nil {
		p.internal(w, r, err)
		return
	}
	kids := make([]string, len(added))
	for i, k := range added {
		kids[i] = k.KID
	}
	p.log.Info("signing keys rotated by admin", "request_id", web.RequestID(r.Context()), "kids", kids, "by", c.User.ID)
	p.record(r, audit.KeysRotated, "", "", map[string]any{"added": kids})
	p.done(w, r, AdminPath+"/keys", "rotated")
}
