package pages

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// Connectors on the account page (sign-in methods: link, unlink) and in
// the console (create, edit, delete).

// ConnectorRegistry manages connectors (provider/connectors).
type ConnectorRegistry interface {
	Create(ctx context.Context, s connectors.Spec) (storage.Connector, error)
	Update(ctx context.Context, id string, change func(*connectors.Spec)) (storage.Connector, error)
	Get(ctx context.Context, id string) (storage.Connector, error)
	List(ctx context.Context) ([]storage.Connector, error)
	Delete(ctx context.Context, id string) error
	CallbackURL(id string) string
}

// methodView is a linked sign-in method on the account page.
type methodView struct {
	ConnectorID, Name, Username string
	Linked, LastUsed            time.Time
}

// signInMethods lists the account's links and the connectors it may link.
func (p *Pages) signInMethods(ctx context.Context, userID string) ([]methodView, []web.ConnectorButton, error) {
	list, err := p.c.Connectors.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	links, err := p.c.Accounts.LinkedIdentities(ctx, userID)
	if err != nil {
		return nil, nil, err
	}
	names := map[string]string{}
	for _, c := range list {
		names[c.ID] = c.Name
	}
	linked := map[string]bool{}
	var methods []methodView
	for _, l := range links {
		linked[l.ConnectorID] = true
		methods = append(methods, methodView{ConnectorID: l.ConnectorID, Name: names[l.ConnectorID], Username: l.Username,
			Linked: l.CreatedAt, LastUsed: l.LastUsedAt})
	}
	var more []web.ConnectorButton
	for _, c := range list {
		if !linked[c.ID] {
			more = append(more, web.ConnectorButton{ID: c.ID, Name: c.Name})
		}
	}
	return methods, more, nil
}

// linkConnector sends the person to a connector's provider to link it.
func (p *Pages) linkConnector(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.c.Interactions.StartLink(w, r, c.User, r.PostFormValue("connector"))
}

// unlinkConnector removes a linked sign-in method, unless it is the last.
func (p *Pages) unlinkConnector(w http.ResponseWriter, r *http.Request, c web.Caller) {
	id := r.PostFormValue("connector")
	kind := ""
	if conn, err := p.c.Connectors.Get(r.Context(), id); err == nil {
		kind = conn.Kind
	}
	err := p.c.Accounts.Unlink(r.Context(), c.User.ID, id, kind)
	switch {
	case err == nil:
		p.done(w, r, AccountPath, "connector-unlinked")
	case errors.Is(err, accounts.ErrNotLinked):
		p.fail(w, r, http.StatusNotFound, locale.M("Not linked"), locale.M("That sign-in method is not linked to your account."))
	case errors.Is(err, accounts.ErrLastSignInMethod):
		p.fail(w, r, http.StatusConflict, locale.M("This is your only way to sign in"), locale.M("Set a password or add a passkey on your account page before you unlink it."))
	default:
		p.internal(w, r, err)
	}
}

// connectorsPage is the data of admin_connectors.html.
type connectorsPage struct {
	consolePage
	Connectors []connectorView
	Form       connectorForm
}

type connectorView struct {
	storage.Connector
	Callback string
}

type connectorForm struct{ ID, Kind, Name, ClientID, Issuer, BaseURL, Scopes string }

func (p *Pages) connectorsPage(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.renderConnectors(w, r, c, http.StatusOK, connectorsPage{Form: connectorForm{Kind: storage.ConnectorMusicBrainz}})
}

func (p *Pages) renderConnectors(w http.ResponseWriter, r *http.Request, c web.Caller, status int, data connectorsPage) {
	msg := data.Error
	data.consolePage = p.consoleBase(w, r, c, "connectors")
	if data.Error = say(p.lang(r), msg); msg != "" {
		data.Done = ""
	}
	list, err := p.c.Connectors.List(r.Context())
	if err != nil {
		p.internal(w, r, err)
		return
	}
	for _, conn := range list {
		data.Connectors = append(data.Connectors, connectorView{Connector: conn, Callback: p.c.Connectors.CallbackURL(conn.ID)})
	}
	p.site.Render(w, r, status, "admin_connectors.html", data)
}

func connectorFormOf(r *http.Request) connectorForm {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return connectorForm{ID: v("id"), Kind: v("kind"), Name: v("name"), ClientID: v("client_id"), Issuer: v("issuer"), BaseURL: v("base_url"), Scopes: v("scopes")}
}

func (p *Pages) createConnector(w http.ResponseWriter, r *http.Request, c web.Caller) {
	f := connectorFormOf(r)
	_, err := p.c.Connectors.Create(r.Context(), connectors.Spec{ID: f.ID, Kind: f.Kind, Name: f.Name, ClientID: f.ClientID,
		ClientSecret: r.PostFormValue("client_secret"), Issuer: f.Issuer, BaseURL: f.BaseURL, Scopes: strings.Fields(f.Scopes)})
	if err != nil {
		status, msg := p.message(w, r, err)
		data := connectorsPage{Form: f}
		data.Error = msg
		p.renderConnectors(w, r, c, status, data)
		return
	}
	p.done(w, r, AdminPath+"/connectors", "connector-created")
}

func (p *Pages) updateConnector(w http.ResponseWriter, r *http.Request, c web.Caller) {
	f := connectorFormOf(r)
	_, err := p.c.Connectors.Update(r.Context(), f.ID, func(s *connectors.Spec) {
		s.Name, s.ClientID, s.Issuer, s.BaseURL, s.Scopes = f.Name, f.ClientID, f.Issuer, f.BaseURL, strings.Fields(f.Scopes)
		s.ClientSecret = r.PostFormValue("client_secret")
	})
	if err != nil {
		status, msg := p.message(w, r, err)
		if errors.Is(err, storage.ErrNotFound) {
			status, msg = http.StatusNotFound, locale.M("There is no such connector.")
		}
		data := connectorsPage{}
		data.Error = msg
		p.renderConnectors(w, r, c, status, data)
		return
	}
	p.done(w, r, AdminPath+"/connectors", "connector-changed")
}

func (p *Pages) deleteConnector(w http.ResponseWriter, r *http.Request, c web.Caller) {
	id := r.PostFormValue("id")
	if r.PostFormValue("confirm") != "yes" {
		data := connectorsPage{}
		data.Error = locale.M("Tick \"I am sure\" to delete a connector: every account linked through it loses that way to sign in.")
		p.renderConnectors(w, r, c, http.StatusBadRequest, data)
		return
	}
	if err := p.c.Connectors.Delete(r.Context(), id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			p.fail(w, r, http.StatusNotFound, locale.M("Not found"), locale.M("There is no such connector."))
			return
		}
		p.internal(w, r, err)
		return
	}
	p.done(w, r, AdminPath+"/connectors", "connector-deleted")
}
