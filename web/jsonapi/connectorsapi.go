package jsonapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// ConnectorRegistry is what the admin API needs to manage connectors.
type ConnectorRegistry interface {
	Create(ctx context.Context, s connectors.Spec) (storage.Connector, error)
	Update(ctx context.Context, id string, change func(*connectors.Spec)) (storage.Connector, error)
	Get(ctx context.Context, id string) (storage.Connector, error)
	List(ctx context.Context) ([]storage.Connector, error)
	Delete(ctx context.Context, id string) error
	CallbackURL(id string) string
}

// ConnectorJSON is a connector as the admin API and the command line show
// it (never its client secret).
type ConnectorJSON struct {
	ID       string   `json:"id"`
	Kind     string   `json:"kind"`
	Name     string   `json:"name"`
	ClientID string   `json:"clientId"`
	Issuer   string   `json:"issuer,omitempty"`
	BaseURL  string   `json:"baseUrl,omitempty"`
	Scopes   []string `json:"scopes"`
	// Callback is the redirect URI to register at the provider.
	Callback  string `json:"callback"`
	CreatedAt string `json:"createdAt"`
}

// ToConnectorJSON converts a connector.
func ToConnectorJSON(c storage.Connector, callback string) ConnectorJSON {
	out := ConnectorJSON{ID: c.ID, Kind: c.Kind, Name: c.Name, ClientID: c.ClientID, Issuer: c.Issuer, BaseURL: c.BaseURL,
		Scopes: c.Scopes, Callback: callback, CreatedAt: c.CreatedAt.UTC().Format(time.RFC3339)}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	return out
}

type connectorCreateBody struct {
	ID           string   `json:"id"`
	Kind         string   `json:"kind"`
	Name         string   `json:"name"`
	ClientID     string   `json:"clientId"`
	ClientSecret string   `json:"clientSecret"`
	Issuer       string   `json:"issuer"`
	BaseURL      string   `json:"baseUrl"`
	Scopes       []string `json:"scopes"`
}

// connectorPatchBody changes a connector; a field left out stays.
type connectorPatchBody struct {
	Name         *string   `json:"name"`
	ClientID     *string   `json:"clientId"`
	ClientSecret *string   `json:"clientSecret"`
	Issuer       *string   `json:"issuer"`
	BaseURL      *string   `json:"baseUrl"`
	Scopes       *[]string `json:"scopes"`
}

func (a *AdminAPI) connectorError(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return web.Errorf(http.StatusNotFound, "No such connector")
	}
	return err
}

func (a *AdminAPI) listConnectors(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.admin(r); err != nil {
		return err
	}
	list, err := a.connectors.List(r.Context())
	if err != nil {
		return err
	}
	out := struct {
		Connectors []ConnectorJSON `json:"connectors"`
	}{Connectors: []ConnectorJSON{}}
	for _, c := range list {
		out.Connectors = append(out.Connectors, ToConnectorJSON(c, a.connectors.CallbackURL(c.ID)))
	}
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *AdminAPI) createConnector(w http.ResponseWriter, r *http.Request) error {
	caller, err := a.admin(r)
	if err != nil {
		return err
	}
	var body connectorCreateBody
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	c, err := a.connectors.Create(r.Context(), connectors.Spec{ID: body.ID, Kind: body.Kind, Name: body.Name, ClientID: body.ClientID,
		ClientSecret: body.ClientSecret, Issuer: body.Issuer, BaseURL: body.BaseURL, Scopes: body.Scopes})
	if err != nil {
		return err
	}
	a.log.Info("connector created", "request_id", web.RequestID(r.Context()), "connector", c.ID, "by", a.who(caller))
	web.WriteJSON(w, http.StatusOK, ToConnectorJSON(c, a.connectors.CallbackURL(c.ID)))
	return nil
}

func (a *AdminAPI) getConnector(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.admin(r); err != nil {
		return err
	}
	c, err := a.connectors.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return a.connectorError(err)
	}
	web.WriteJSON(w, http.StatusOK, ToConnectorJSON(c, a.connectors.CallbackURL(c.ID)))
	return nil
}

func (a *AdminAPI) updateConnector(w http.ResponseWriter, r *http.Request) error {
	caller, err := a.admin(r)
	if err != nil {
		return err
	}
	var body connectorPatchBody
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	id := r.PathValue("id")
	c, err := a.connectors.Update(r.Context(), id, func(s *connectors.Spec) {
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&s.Name, body.Name)
		set(&s.ClientID, body.ClientID)
		set(&s.ClientSecret, body.ClientSecret)
		set(&s.Issuer, body.Issuer)
		set(&s.BaseURL, body.BaseURL)
		if body.Scopes != nil {
			s.Scopes = *body.Scopes
		}
	})
	if err != nil {
		return a.connectorError(err)
	}
	a.log.Info("connector changed", "request_id", web.RequestID(r.Context()), "connector", id, "by", a.who(caller))
	web.WriteJSON(w, http.StatusOK, ToConnectorJSON(c, a.connectors.CallbackURL(c.ID)))
	return nil
}

func (a *AdminAPI) deleteConnector(w http.ResponseWriter, r *http.Request) error {
	caller, err := a.admin(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := a.connectors.Delete(r.Context(), id); err != nil {
		return a.connectorError(err)
	}
	a.log.Info("connector deleted", "request_id", web.RequestID(r.Context()), "connector", id, "by", a.who(caller))
	web.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}
