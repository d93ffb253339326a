package main

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

// The User API's user defaults to the caller: a signed-in browser (or a
// token with the account scope) may leave it out.
func TestUserAPIUserDefaultsToTheCaller(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("implicit")
		browser := s.loginBrowser("implicit")
		got := s.want(s.call(browser, http.MethodPost, "/api/User/associateToken", "", map[string]any{"scrobbleToken": lbToken}), http.StatusOK)
		if got.body["listenBrainzName"] == "" || got.body["listenBrainzName"] == nil {
			t.Fatalf("associateToken without user = %s", got.raw)
		}
		s.want(s.call(browser, http.MethodPost, "/api/User/endSession", "", map[string]any{}), http.StatusOK)
		s.want(s.call(browser, http.MethodGet, "/api/me", "", nil), http.StatusUnauthorized)
		// Without credentials there is nobody to default to.
		if r := s.want(s.call(nil, http.MethodPost, "/api/User/endSession", "", map[string]any{}), http.StatusUnauthorized); !strings.Contains(r.errMsg(), "Sign in") {
			t.Fatalf("endSession without anyone = %q", r.errMsg())
		}
	})
}

// The console creates a user, edits a client and rotates its secret
// (shown once; the old one kept the hours asked).
func TestConsoleCreatesUsersAndEditsClients(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.admin("boss")
		_, oldSecret := s.client(clients.Spec{ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"profile"}, Display: clients.Display{Name: "Service"}})
		c := s.browser()
		s.signInPage(t, c, "boss")

		f := accountForm(t, get(t, c, s.issuer+"/admin/users"), "/admin/users/create")
		if p := submit(t, c, f, map[string]string{"username": "made-here", "password": "short"}); p.status != http.StatusBadRequest || !strings.Contains(p.body, `value="made-here"`) {
			t.Fatalf("a short password: %d", p.status)
		}
		p := submit(t, c, f, map[string]string{"username": "made-here", "password": e2ePassword, "email": "made@example.org", "role": "guest"})
		u, err := s.app.store.GetUserByUsername(context.Background(), "made-here")
		if p.status != http.StatusOK || err != nil || u.Role != "guest" || u.Email != "made@example.org" || !strings.Contains(p.body, "The user is created.") {
			t.Fatalf("console user creation: %d %+v %v", p.status, u, err)
		}

		page := get(t, c, s.issuer+"/admin/clients/svc")
		if page.status != http.StatusOK || !strings.Contains(page.body, `value="Service"`) {
			t.Fatalf("client page: %d", page.status)
		}
		edit := accountForm(t, page, "/admin/clients/svc/update")
		resp, err := c.PostForm(edit.action, url.Values{"csrf_token": {edit.values.Get("csrf_token")}, "name": {"Renamed"}, "grant_type": {"client_credentials"}, "scope": {"profile"}})
		if err != nil {
			t.Fatal(err)
		}
		if p := read(t, resp); p.status != http.StatusOK || !strings.Contains(p.body, "The client is changed.") {
			t.Fatalf("saving the client: %d\n%s", p.status, p.body)
		}
		if cl, _ := s.app.clients.Get(context.Background(), "svc"); cl.Name != "Renamed" || strings.Join(cl.GrantTypes, " ") != "client_credentials" {
			t.Fatalf("after the edit: %+v", cl)
		}
		rotate := accountForm(t, get(t, c, s.issuer+"/admin/clients/svc"), "/admin/clients/svc/rotate")
		p = submit(t, c, rotate, map[string]string{"keep_old_hours": "2"})
		m := regexp.MustCompile(`id="client-secret">([^<]+)<`).FindStringSubmatch(p.body)
		if p.status != http.StatusOK || m == nil {
			t.Fatalf("rotating: %d\n%s", p.status, p.body)
		}
		for name, secret := range map[string]string{"new": m[1], "kept old": oldSecret} {
			if got := s.post(provider.TokenPath, "svc", secret, url.Values{"grant_type": {"client_credentials"}}); got.status != http.StatusOK {
				t.Fatalf("the %s secret: %d %v", name, got.status, got.body)
			}
		}
		if p := get(t, c, s.issuer+"/admin/clients/svc"); strings.Contains(p.body, m[1]) {
			t.Fatal("the new secret is shown again")
		}
	})
}
