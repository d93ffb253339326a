package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/storage"
)

// Round three, clients: the holes found from outside in how apps are
// registered and who may keep registering them.

// initialToken makes an initial access token on /developer for a signed-in
// browser.
func (s *server) initialToken(t *testing.T, b *http.Client) string {
	t.Helper()
	made := submit(t, b, accountForm(t, get(t, b, s.issuer+"/developer"), "/developer/tokens"), map[string]string{"expires_days": "0"})
	iat := initialTokenRe.FindStringSubmatch(made.body)
	if iat == nil {
		t.Fatalf("no initial access token:\n%s", made.body)
	}
	return iat[1]
}

// A disabled or deleted developer's initial access tokens and their apps'
// registration access tokens stop working (issue 31, item 4): revoked when
// the developer is disabled or deleted (and not back on re-enabling), and
// refused at use whenever the owner is not active, so one the revocation
// missed dies too.
func TestRound3DeveloperTokensDieWithTheDeveloper(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		s := startE2E(t, dbURL, options{})
		s.admin("root")
		ops := s.opsToken()
		meta := map[string]any{"client_name": "Scrobbler", "redirect_uris": []string{redirectURI}}
		type developer struct {
			user          storage.User
			iat, app, rat string
		}
		newDeveloper := func(name string) developer {
			d := developer{user: s.user(name)}
			b := s.browser()
			s.signInPage(t, b, name)
			d.iat = s.initialToken(t, b)
			status, app := s.registerJSON(t, d.iat, meta)
			if status != http.StatusCreated {
				t.Fatalf("%s registers: %d %v", name, status, app)
			}
			d.app, d.rat = app["client_id"].(string), app["registration_access_token"].(string)
			return d
		}
		// works reports whether the initial access token registers and the
		// registration access token reads the app (each 201/200 or 401).
		works := func(d developer) (registers, manages bool) {
			t.Helper()
			status, body := s.registerJSON(t, d.iat, meta)
			if status != http.StatusCreated && (status != http.StatusUnauthorized || body["error"] != "invalid_token") {
				t.Fatalf("registering: %d %v", status, body)
			}
			read, body := s.jsonCall(t, http.MethodGet, provider.RegisterPath+"/"+d.app, d.rat, nil)
			if read != http.StatusOK && (read != http.StatusUnauthorized || body["error"] != "invalid_token") {
				t.Fatalf("reading: %d %v", read, body)
			}
			return status == http.StatusCreated, read == http.StatusOK
		}
		appsOf := func(d developer) int {
			apps, err := s.app.clients.AppsOf(ctx, d.user.ID)
			if err != nil {
				t.Fatal(err)
			}
			return len(apps)
		}

		// Disabled by an admin: both die, and stay dead after re-enabling.
		dora := newDeveloper("dora")
		if r, m := works(dora); !r || !m {
			t.Fatalf("an active developer's tokens: registers %v, manages %v", r, m)
		}
		n := appsOf(dora)
		s.want(s.call(nil, http.MethodPatch, "/api/admin/users/"+dora.user.ID, ops, map[string]any{"disabled": true}), http.StatusOK)
		if r, m := works(dora); r || m {
			t.Fatalf("a disabled developer's tokens: registers %v, manages %v", r, m)
		}
		if appsOf(dora) != n {
			t.Fatal("a disabled developer's token registered an app in their name")
		}
		s.want(s.call(nil, http.MethodPatch, "/api/admin/users/"+dora.user.ID, ops, map[string]any{"disabled": false}), http.StatusOK)
		if r, m := works(dora); r || m {
			t.Fatalf("after re-enabling: registers %v, manages %v; want both revoked for good", r, m)
		}
		if _, err := s.app.clients.Get(ctx, dora.app); err != nil {
			t.Fatalf("the app itself went: %v", err)
		}

		// Disabled behind the service's back (a token minted before the
		// revocation existed, or racing it): refused at use.
		eve := newDeveloper("eve")
		setDisabled := func(id string, disabled bool) {
			if _, err := s.app.store.UpdateUser(ctx, id, func(u storage.User) (storage.User, error) {
				u.Disabled = disabled
				return u, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		setDisabled(eve.user.ID, true)
		if r, m := works(eve); r || m {
			t.Fatalf("an unrevoked token of a disabled developer: registers %v, manages %v", r, m)
		}
		setDisabled(eve.user.ID, false)
		if r, m := works(eve); !r || !m {
			t.Fatalf("the same tokens once the developer is active again: registers %v, manages %v", r, m)
		}

		// Deleted by an admin: both die.
		finn := newDeveloper("finn")
		s.want(s.call(nil, http.MethodDelete, "/api/admin/users/"+finn.user.ID, ops, nil), http.StatusOK)
		if r, m := works(finn); r || m {
			t.Fatalf("a deleted developer's tokens: registers %v, manages %v", r, m)
		}

		// The operator's tokens (no owner) are untouched by all this.
		_, value, err := s.app.initialTokens.Create(ctx, "", "ops", 0)
		if err != nil {
			t.Fatal(err)
		}
		if status, body := s.registerJSON(t, value, meta); status != http.StatusCreated {
			t.Fatalf("the operator's token: %d %v", status, body)
		}
	})
}
