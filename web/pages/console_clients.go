package pages

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// The console's clients: list, create, edit, rotate the secret, delete.

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
	View                 web.ClientView
	Kind, Grants, Scopes string
	Created              time.Time
	RedirectURIs         []string
	// Owner is the developer who registered the app (a username, or their
	// ID when the account is gone); Disabled: refused everywhere.
	Owner    string
	Disabled bool
}

// ownerName names an app's developer for the console.
func (p *Pages) ownerName(r *http.Request, id string) string {
	if id == "" {
		return ""
	}
	if u, err := p.c.Accounts.GetUser(r.Context(), id); err == nil {
		return u.Username
	}
	return p.lang(r).S("{{.ID}} (deleted)", "ID", id)
}

// clientForm holds the create form's values, so an error keeps them.
type clientForm struct {
	ID, RedirectURIs, PostLogoutRedirectURIs, Scope, BackchannelLogoutURI string
	Name, LogoURI, ClientURI, PolicyURI, TosURI, IDTokenAlg               string
	Grants                                                                map[string]bool
	Public, FirstParty, AllowNoPKCE, RequirePAR, RequireDPoP              bool
	Keys                                                                  keysForm
}

// DefaultScope is what an empty Scopes field registers: the registry's
// default, named here from the one list so the form, the CLI and the docs
// cannot drift apart.
func (clientForm) DefaultScope() string { return strings.Join(clients.DefaultScopes, " ") }

func (p *Pages) clientsPage(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.renderClients(w, r, c, http.StatusOK, clientsPage{Form: clientForm{Grants: map[string]bool{"authorization_code": true, "refresh_token": true}}})
}

func (p *Pages) renderClients(w http.ResponseWriter, r *http.Request, c web.Caller, status int, data clientsPage) {
	msg := data.Error
	data.consolePage = p.consoleBase(w, r, c, "clients")
	data.Error = say(p.lang(r), msg)
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
			View: web.ViewOf(cl), Kind: kindWords(cl), Grants: strings.Join(cl.GrantTypes, ", "), Scopes: strings.Join(cl.Scopes, " "),
			Created: cl.CreatedAt, RedirectURIs: cl.RedirectURIs, Owner: p.ownerName(r, cl.Owner), Disabled: cl.Disabled,
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
		RequirePAR: r.PostFormValue("require_par") == "yes", RequireDPoP: r.PostFormValue("require_dpop") == "yes", IDTokenAlg: r.PostFormValue("id_token_alg"), Keys: keysFormOf(r),
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
		Scopes: strings.Fields(f.Scope), Public: f.Public, FirstParty: f.FirstParty, AllowNoPKCE: f.AllowNoPKCE, RequirePAR: f.RequirePAR, RequireDPoP: f.RequireDPoP,
		BackchannelLogoutURI: f.BackchannelLogoutURI, IDTokenAlg: f.IDTokenAlg,
		Display: clients.Display{Name: f.Name, LogoURI: f.LogoURI, ClientURI: f.ClientURI, PolicyURI: f.PolicyURI, TosURI: f.TosURI},
		Keys:    f.Keys.keys(),
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
		Public: c.Public, FirstParty: c.FirstParty, AllowNoPKCE: c.AllowNoPKCE, RequirePAR: c.RequirePAR, RequireDPoP: c.RequireDPoP, IDTokenAlg: c.IDTokenAlg,
		Keys: keysFormFrom(c, ""),
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
		status, msg := p.message(w, r, err)
		data := clientsPage{Form: f}
		data.Error = msg
		p.renderClients(w, r, c, status, data)
		return
	}
	if spec.Secret != "" {
		secret = "" // the admin chose it; never echo it
	}
	p.log.Info("client created by admin", "request_id", web.RequestID(r.Context()), "client", created.ID, "by", c.User.ID)
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
	// NeedsSecret: it authenticates with a secret it does not have yet
	// (turned from private_key_jwt): the rotate button gives it one.
	NeedsSecret bool
}

func (p *Pages) clientPage(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.renderClient(w, r, c, r.PathValue("id"), http.StatusOK, nil, "", "")
}

// renderClient shows a client's page; form (nil: the stored client) keeps
// what was typed when saving failed.
func (p *Pages) renderClient(w http.ResponseWriter, r *http.Request, c web.Caller, id string, status int, form *clientForm, msg, secret string) {
	cl, err := p.c.Clients.Get(r.Context(), id)
	if errors.Is(err, clients.ErrNotFound) {
		p.fail(w, r, http.StatusNotFound, locale.M("No such client"), locale.M("This client does not exist (any more)."))
		return
	}
	if err != nil {
		p.internal(w, r, err)
		return
	}
	data := clientPage{consolePage: p.consoleBase(w, r, c, "clients"), Grants: clients.GrantTypes, NewSecret: secret, NeedsSecret: clients.NeedsSecret(cl) && secret == "",
		Client: clientRow{View: web.ViewOf(cl), Kind: kindWords(cl), Created: cl.CreatedAt,
			Owner: p.ownerName(r, cl.Owner), Disabled: cl.Disabled}}
	data.Form = clientFormFrom(cl)
	if form != nil {
		data.Form = *form
	}
	if data.Error = say(p.lang(r), msg); msg != "" || secret != "" {
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
		status, msg := p.message(w, r, err)
		p.renderClient(w, r, c, id, status, &f, msg, "")
		return
	}
	p.forgetClient(id)
	p.log.Info("client changed by admin", "request_id", web.RequestID(r.Context()), "client", id, "by", c.User.ID)
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
			p.renderClient(w, r, c, id, http.StatusBadRequest, nil, locale.M("Keep the old secret for a whole number of hours (0 to 720)."), "")
			return
		}
		keep = time.Duration(n) * time.Hour
	}
	secret, err := p.c.Clients.RotateSecret(r.Context(), id, keep)
	if err != nil {
		status, msg := p.message(w, r, err)
		p.renderClient(w, r, c, id, status, nil, msg, "")
		return
	}
	p.forgetClient(id)
	p.log.Info("client secret rotated by admin", "request_id", web.RequestID(r.Context()), "client", id, "by", c.User.ID, "keep_old", keep.String())
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
		data.Error = locale.M("Tick the box next to Delete to confirm.")
		p.renderClients(w, r, c, http.StatusBadRequest, data)
		return
	}
	if err := p.c.Clients.Delete(r.Context(), id); err != nil {
		status, msg := p.message(w, r, err)
		data := clientsPage{Form: clientForm{Grants: map[string]bool{}}}
		data.Error = msg
		p.renderClients(w, r, c, status, data)
		return
	}
	p.c.ForgetClient(id)
	p.log.Info("client deleted by admin", "request_id", web.RequestID(r.Context()), "client", id, "by", c.User.ID)
	p.done(w, r, AdminPath+"/clients", "client-deleted")
}

// setClientDisabled disables (or enables again) a client: an admin's
// answer to an app registered by a developer that misbehaves.
func (p *Pages) setClientDisabled(w http.ResponseWriter, r *http.Request, c web.Caller) {
	id := r.PathValue("id")
	// The form posts "yes" (Disable) or "no" (Enable); anything else is
	// refused rather than read as one of them: "true" once enabled a
	// client its admin meant to disable.
	var disable bool
	var err error
	switch r.PostFormValue("disabled") {
	case "yes":
		disable = true
	case "no":
	default:
		err = fault.New(fault.Invalid, `disabled must be "yes" or "no"`).Saying(`The disabled field must be "yes" (disable) or "no" (enable)`)
	}
	if err == nil {
		_, err = p.c.Apps.SetDisabled(r.Context(), id, disable)
	}
	if err != nil {
		status, msg := p.message(w, r, err)
		p.renderClient(w, r, c, id, status, nil, msg, "")
		return
	}
	p.forgetClient(id)
	what := "client-enabled"
	if disable {
		what = "client-disabled"
	}
	p.done(w, r, AdminPath+"/clients/"+url.PathEscape(id), what)
}

// kindWords is clients.Kind for people, in whole marked phrases (a list's
// separator differs by language): the page translates it.
func kindWords(cl storage.Client) string {
	switch {
	case cl.Public && cl.FirstParty:
		return locale.M("public, first-party")
	case cl.Public:
		return locale.M("public")
	case cl.FirstParty:
		return locale.M("confidential, first-party")
	}
	return locale.M("confidential")
}
