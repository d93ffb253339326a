package jsonapi

import (
	"context"
	"net/http"
	"time"

	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// APIRegistry is what the admin API needs to manage resource servers.
type APIRegistry interface {
	Create(ctx context.Context, spec apis.Spec) (storage.API, error)
	Update(ctx context.Context, id string, u apis.Update) (storage.API, error)
	Get(ctx context.Context, id string) (storage.API, error)
	List(ctx context.Context) ([]storage.API, error)
	Delete(ctx context.Context, id string) error
}

// APIScopeJSON is a scope an API defines.
type APIScopeJSON struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// APIJSON is an API as the admin API and the command line show it.
type APIJSON struct {
	ID     string         `json:"id"`
	Name   string         `json:"name"`
	Scopes []APIScopeJSON `json:"scopes"`
	Claims []string       `json:"claims"`
	// Introspectors may introspect tokens meant for the API.
	Introspectors []string `json:"introspectors"`
	// ExchangeFrom may exchange a person's token for one to the API
	// (RFC 8693 token exchange).
	ExchangeFrom []string `json:"exchangeFrom"`
	// OpenToApps: apps registered by developers may ask for its scopes.
	OpenToApps bool   `json:"openToApps"`
	Builtin    bool   `json:"builtin"`
	CreatedAt  string `json:"createdAt,omitempty"`
}

// ToAPIJSON converts an API.
func ToAPIJSON(a storage.API) APIJSON {
	out := APIJSON{ID: a.ID, Name: a.Name, Scopes: []APIScopeJSON{}, Claims: a.Claims, Introspectors: a.Introspectors, ExchangeFrom: a.ExchangeFrom, OpenToApps: a.OpenToApps, Builtin: a.CreatedAt.IsZero()}
	if out.Claims == nil {
		out.Claims = []string{}
	}
	if out.Introspectors == nil {
		out.Introspectors = []string{}
	}
	if out.ExchangeFrom == nil {
		out.ExchangeFrom = []string{}
	}
	for _, s := range a.Scopes {
		out.Scopes = append(out.Scopes, APIScopeJSON(s))
	}
	if !a.CreatedAt.IsZero() {
		out.CreatedAt = a.CreatedAt.UTC().Format(time.RFC3339)
	}
	return out
}

type apiCreateBody struct {
	ID            string         `json:"id"`
	Name          string         `json:"name"`
	Scopes        []APIScopeJSON `json:"scopes"`
	Claims        []string       `json:"claims"`
	Introspectors []string       `json:"introspectors"`
	ExchangeFrom  []string       `json:"exchangeFrom"`
	OpenToApps    bool           `json:"openToApps"`
}

// apiPatchBody changes an API; a field left out stays as it is.
type apiPatchBody struct {
	Name          *string         `json:"name"`
	Scopes        *[]APIScopeJSON `json:"scopes"`
	Claims        *[]string       `json:"claims"`
	Introspectors *[]string       `json:"introspectors"`
	ExchangeFrom  *[]string       `json:"exchangeFrom"`
	OpenToApps    *bool           `json:"openToApps"`
}

func (a *AdminAPI) listAPIs(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.admin(r); err != nil {
		return err
	}
	list, err := a.apis.List(r.Context())
	if err != nil {
		return err
	}
	out := struct {
		APIs []APIJSON `json:"apis"`
	}{APIs: []APIJSON{}}
	for _, api := range list {
		out.APIs = append(out.APIs, ToAPIJSON(api))
	}
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *AdminAPI) createAPI(w http.ResponseWriter, r *http.Request) error {
	c, err := a.admin(r)
	if err != nil {
		return err
	}
	var body apiCreateBody
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	spec := apis.Spec{ID: body.ID, Name: body.Name, Claims: body.Claims, Introspectors: body.Introspectors, ExchangeFrom: body.ExchangeFrom, OpenToApps: body.OpenToApps}
	for _, s := range body.Scopes {
		spec.Scopes = append(spec.Scopes, storage.APIScope(s))
	}
	api, err := a.apis.Create(r.Context(), spec)
	if err != nil {
		return err
	}
	a.log.Info("API registered", "request_id", web.RequestID(r.Context()), "api", api.ID, "by", a.who(c))
	web.WriteJSON(w, http.StatusOK, ToAPIJSON(api))
	return nil
}

func (a *AdminAPI) getAPI(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.admin(r); err != nil {
		return err
	}
	api, err := a.apis.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, ToAPIJSON(api))
	return nil
}

func (a *AdminAPI) updateAPI(w http.ResponseWriter, r *http.Request) error {
	c, err := a.admin(r)
	if err != nil {
		return err
	}
	var body apiPatchBody
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	u := apis.Update{Name: body.Name, Claims: body.Claims, Introspectors: body.Introspectors, ExchangeFrom: body.ExchangeFrom, OpenToApps: body.OpenToApps}
	if body.Scopes != nil {
		scopes := make([]storage.APIScope, 0, len(*body.Scopes))
		for _, s := range *body.Scopes {
			scopes = append(scopes, storage.APIScope(s))
		}
		u.Scopes = &scopes
	}
	id := r.PathValue("id")
	api, err := a.apis.Update(r.Context(), id, u)
	if err != nil {
		return err
	}
	a.log.Info("API changed", "request_id", web.RequestID(r.Context()), "api", id, "by", a.who(c))
	web.WriteJSON(w, http.StatusOK, ToAPIJSON(api))
	return nil
}

func (a *AdminAPI) deleteAPI(w http.ResponseWriter, r *http.Request) error {
	c, err := a.admin(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := a.apis.Delete(r.Context(), id); err != nil {
		return err
	}
	a.log.Info("API deleted", "request_id", web.RequestID(r.Context()), "api", id, "by", a.who(c))
	web.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}
