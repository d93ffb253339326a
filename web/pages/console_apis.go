package pages

import (
	"net/http"
	"strings"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// The console's APIs: list, register, edit, delete.

// apisPage is the data of admin_apis.html.
type apisPage struct {
	consolePage
	APIs []storage.API
	Form apiForm
}

type apiForm struct{ ID, Name, Scopes, Claims, Introspectors, ExchangeFrom string }

func (p *Pages) apisPage(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.renderAPIs(w, r, c, http.StatusOK, apisPage{})
}

func (p *Pages) renderAPIs(w http.ResponseWriter, r *http.Request, c web.Caller, status int, data apisPage) {
	msg := data.Error
	data.consolePage = p.consoleBase(w, r, c, "apis")
	if data.Error = say(p.lang(r), msg); msg != "" {
		data.Done = ""
	}
	list, err := p.c.APIs.List(r.Context())
	if err != nil {
		p.internal(w, r, err)
		return
	}
	// The built-in API's descriptions are tonearm's words, in the page's
	// language; what an admin typed is shown as typed.
	l := p.lang(r)
	for i, a := range list {
		if !a.CreatedAt.IsZero() {
			continue
		}
		scopes := append([]storage.APIScope(nil), a.Scopes...)
		for j := range scopes {
			scopes[j].Description = l.Lenient(scopes[j].Description)
		}
		list[i].Scopes = scopes
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
		Scopes: r.PostFormValue("scopes"), Claims: r.PostFormValue("claims"), Introspectors: r.PostFormValue("introspectors"),
		ExchangeFrom: r.PostFormValue("exchange_from")}
	spec := apis.Spec{ID: f.ID, Name: f.Name, Claims: lines(f.Claims), Scopes: scopeLines(f.Scopes), Introspectors: lines(f.Introspectors),
		ExchangeFrom: lines(f.ExchangeFrom)}
	api, err := p.c.APIs.Create(r.Context(), spec)
	if err != nil {
		status, msg := p.message(w, r, err)
		data := apisPage{Form: f}
		data.Error = msg
		p.renderAPIs(w, r, c, status, data)
		return
	}
	p.log.Info("API registered", "request_id", web.RequestID(r.Context()), "api", api.ID, "by", c.User.ID)
	p.done(w, r, AdminPath+"/apis", "api-created")
}

// updateAPI changes an API from its edit form: name, scopes, claims and
// introspectors and the clients that may exchange tokens for it, each field
// as a whole.
func (p *Pages) updateAPI(w http.ResponseWriter, r *http.Request, c web.Caller) {
	id := r.PostFormValue("id")
	name := strings.TrimSpace(r.PostFormValue("name"))
	scopes, claims, introspectors := scopeLines(r.PostFormValue("scopes")), lines(r.PostFormValue("claims")), lines(r.PostFormValue("introspectors"))
	exchangeFrom := lines(r.PostFormValue("exchange_from"))
	if _, err := p.c.APIs.Update(r.Context(), id, apis.Update{Name: &name, Scopes: &scopes, Claims: &claims, Introspectors: &introspectors, ExchangeFrom: &exchangeFrom}); err != nil {
		p.apisFailed(w, r, c, err)
		return
	}
	p.log.Info("API changed", "request_id", web.RequestID(r.Context()), "api", id, "by", c.User.ID)
	p.done(w, r, AdminPath+"/apis", "api-changed")
}

// apisFailed shows the APIs page again with what went wrong.
func (p *Pages) apisFailed(w http.ResponseWriter, r *http.Request, c web.Caller, err error) {
	status, msg := p.message(w, r, err)
	data := apisPage{}
	data.Error = msg
	p.renderAPIs(w, r, c, status, data)
}

func (p *Pages) deleteAPI(w http.ResponseWriter, r *http.Request, c web.Caller) {
	id := r.PostFormValue("id")
	if r.PostFormValue("confirm") != "yes" {
		data := apisPage{}
		data.Error = locale.M("Tick the box next to Delete to confirm.")
		p.renderAPIs(w, r, c, http.StatusBadRequest, data)
		return
	}
	if err := p.c.APIs.Delete(r.Context(), id); err != nil {
		p.apisFailed(w, r, c, err)
		return
	}
	p.log.Info("API deleted", "request_id", web.RequestID(r.Context()), "api", id, "by", c.User.ID)
	p.done(w, r, AdminPath+"/apis", "api-deleted")
}
