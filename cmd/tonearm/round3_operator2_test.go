package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

func sqliteURL(t *testing.T) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "tonearm.db")
}

// An API stored under tonearm's own API id (registered by a command line
// that worked out another issuer, or under an earlier issuer) is ignored:
// its scope is nobody's, never in discovery, never under tonearm's own
// audience; deleting it is allowed, deleting the built-in API is not.
func TestShadowOfOwnAPIIgnored(t *testing.T) {
	s := startE2E(t, sqliteURL(t), options{})
	ctx := context.Background()
	own := s.issuer + "/api"
	_, secret := s.client(clients.Spec{ID: "machine", GrantTypes: []string{"client_credentials"}, Scopes: []string{"account"}})
	if err := s.app.store.CreateAPI(ctx, storage.API{ID: own, Name: "Shadow", Scopes: []storage.APIScope{{Name: "shadow:read"}}, Claims: []string{}, Introspectors: []string{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.store.UpdateClient(ctx, "machine", func(c storage.Client) (storage.Client, error) {
		c.Scopes = append(c.Scopes, "shadow:read")
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.app.apis.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	disco := s.want(s.call(nil, http.MethodGet, provider.DiscoveryPath, "", nil), http.StatusOK)
	if sc := asStrings(disco.body["scopes_supported"]); strings.Contains(strings.Join(sc, " "), "shadow:read") {
		t.Fatalf("scopes_supported lists the shadow's scope: %v", sc)
	}
	got := s.post(provider.TokenPath, "machine", secret, url.Values{"grant_type": {"client_credentials"}, "scope": {"shadow:read"}})
	if got.status == http.StatusOK {
		at, _ := got.body["access_token"].(string)
		payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(at+"..", ".")[1])
		if sc, _ := got.body["scope"].(string); strings.Contains(sc, "shadow:read") || strings.Contains(string(payload), own) {
			t.Fatalf("shadow:read granted under tonearm's own audience: %v %s", got.body, payload)
		}
	}
	if _, _, err := s.app.clients.Create(ctx, clients.Spec{ID: "other", GrantTypes: []string{"client_credentials"}, Scopes: []string{"shadow:read"}}); err == nil {
		t.Fatal("a client registered with the shadow's scope")
	}
	ops := s.opsToken()
	list := s.want(s.call(nil, http.MethodGet, "/api/admin/apis", ops, nil), http.StatusOK)
	if apis := list.body["apis"].([]any); len(apis) != 1 || apis[0].(map[string]any)["builtin"] != true {
		t.Fatalf("API list shows the shadow: %s", list.raw)
	}
	// The shadow goes once no client holds its scope; the built-in API stays.
	s.want(s.call(nil, http.MethodDelete, apiPath(own), ops, nil), http.StatusConflict)
	s.want(s.call(nil, http.MethodDelete, "/api/admin/clients/machine", ops, nil), http.StatusOK)
	s.want(s.call(nil, http.MethodDelete, apiPath(own), ops, nil), http.StatusOK)
	if _, err := s.app.store.GetAPI(ctx, own); err == nil {
		t.Fatal("the shadow is still stored")
	}
	s.want(s.call(nil, http.MethodDelete, apiPath(own), ops, nil), http.StatusBadRequest)
}
