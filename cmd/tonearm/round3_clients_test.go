package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// Round three, clients: the holes found from outside in how apps are
// registered and who may keep registering them.

// badRedirectURIs are never legitimate: matching is exact, so none widens
// anything, but each is a mistake or a probe (issue 31, item 7).
var badRedirectURIs = map[string]string{
	"wildcard host":     "https://*.example.com/cb",
	"user and password": "https://user:password@app.example/cb",
	"9,000 characters":  "https://app.example/cb?" + strings.Repeat("a", 9000),
	"2,001 characters":  "https://app.example/cb?" + strings.Repeat("a", clients.MaxURILength+1-len("https://app.example/cb?")),
}

// clearRefusal: a refusal names the problem and does not echo a 9,000
// character URI back, nor an internal error.
func clearRefusal(t *testing.T, path, name, body string) {
	t.Helper()
	if len(body) > 20000 && strings.Contains(body, strings.Repeat("a", 3000)) {
		t.Errorf("%s, %s: the refusal echoes the whole URI", path, name)
	}
	if !strings.Contains(body, "redirect URI") {
		t.Errorf("%s, %s: the refusal does not say what is wrong:\n%.500s", path, name, body)
	}
}

// Every path that registers or edits a client refuses the four bad URIs
// with a clear 400 (or a command-line error) and stores nothing.
func TestRound3RedirectURIRuleOnEveryPath(t *testing.T) {
	t.Parallel()
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	s := startE2E(t, dbURL, options{})
	ctx := context.Background()
	if len(badRedirectURIs["2,001 characters"]) != clients.MaxURILength+1 {
		t.Fatal("the 2,001-character URI is not 2,001 characters")
	}
	s.admin("boss")
	ops := s.opsToken()
	console := s.browser()
	s.signInPage(t, console, "boss")
	s.user("dev")
	dev := s.browser()
	s.signInPage(t, dev, "dev")
	made := submit(t, dev, accountForm(t, get(t, dev, s.issuer+"/developer"), "/developer/tokens"), map[string]string{"expires_days": "1"})
	iat := initialTokenRe.FindStringSubmatch(made.body)
	if iat == nil {
		t.Fatalf("no initial access token:\n%s", made.body)
	}
	status, app := s.registerJSON(t, iat[1], map[string]any{"client_name": "Good", "redirect_uris": []string{redirectURI}})
	if status != http.StatusCreated {
		t.Fatalf("a good registration: %d %v", status, app)
	}
	manageURI, rat := app["registration_client_uri"].(string), app["registration_access_token"].(string)
	s.client(clients.Spec{ID: "edited", Display: clients.Display{Name: "Edited"}})
	env := envFunc(map[string]string{"TONEARM_DATABASE_URL": dbURL, "TONEARM_SECRET": string(s.cfg.Secret)})
	cli := func(stdin string, args ...string) error {
		return run(ctx, args, env, strings.NewReader(stdin), io.Discard, io.Discard)
	}
	before, _ := s.app.store.ListClients(ctx)

	for name, bad := range badRedirectURIs {
		// The command line: create and update.
		if err := cli("", "clients", "create", "--id", "cli-bad", "--redirect-uri", bad); err == nil {
			t.Errorf("clients create, %s: accepted", name)
		} else {
			clearRefusal(t, "clients create", name, err.Error())
		}
		if err := cli("", "clients", "update", "edited", "--redirect-uri", bad); err == nil {
			t.Errorf("clients update, %s: accepted", name)
		}
		if err := cli("", "clients", "create", "--id", "cli-bad", "--redirect-uri", redirectURI, "--post-logout-redirect-uri", bad); err == nil {
			t.Errorf("clients create --post-logout-redirect-uri, %s: accepted", name)
		}
		// apply.
		file, _ := json.Marshal(map[string]any{"clients": []map[string]any{{"id": "apply-bad", "public": true, "redirectUris": []string{bad}}}})
		if err := cli(string(file), "apply", "-f", "-"); err == nil {
			t.Errorf("apply, %s: accepted", name)
		} else {
			clearRefusal(t, "apply", name, err.Error())
		}
		// The admin API: create and update.
		r := s.call(nil, http.MethodPost, "/api/admin/clients", ops, map[string]any{"clientId": "api-bad", "redirectUris": []string{bad}})
		if r.status != http.StatusBadRequest {
			t.Errorf("admin API create, %s: %d %.300s", name, r.status, r.raw)
		}
		clearRefusal(t, "admin API", name, r.errMsg())
		if r := s.call(nil, http.MethodPatch, "/api/admin/clients/edited", ops, map[string]any{"redirectUris": []string{bad}}); r.status != http.StatusBadRequest {
			t.Errorf("admin API update, %s: %d %.300s", name, r.status, r.raw)
		}
		// The console.
		f := accountForm(t, get(t, console, s.issuer+"/admin/clients"), "/admin/clients")
		f.values["grant_type"] = []string{"authorization_code"}
		p := submit(t, console, f, map[string]string{"client_id": "console-bad", "redirect_uris": bad})
		if p.status != http.StatusBadRequest {
			t.Errorf("console create, %s: %d", name, p.status)
		}
		clearRefusal(t, "console", name, p.body)
		// /developer: register and edit.
		f = accountForm(t, get(t, dev, s.issuer+"/developer"), "/developer/apps")
		p = submit(t, dev, f, map[string]string{"name": "Bad", "type": "web", "redirect_uris": bad})
		if p.status != http.StatusBadRequest {
			t.Errorf("/developer register, %s: %d", name, p.status)
		}
		clearRefusal(t, "/developer", name, p.body)
		f = accountForm(t, get(t, dev, s.issuer+"/developer"), "/developer/apps/update")
		if p := submit(t, dev, f, map[string]string{"name": "Good", "redirect_uris": bad}); p.status != http.StatusBadRequest {
			t.Errorf("/developer edit, %s: %d", name, p.status)
		}
		// RFC 7591 and RFC 7592.
		status, body := s.registerJSON(t, iat[1], map[string]any{"client_name": "Bad", "redirect_uris": []string{bad}})
		if status != http.StatusBadRequest || body["error"] != "invalid_redirect_uri" {
			t.Errorf("RFC 7591, %s: %d %v", name, status, body["error"])
		}
		desc, _ := body["error_description"].(string)
		clearRefusal(t, "RFC 7591", name, desc)
		status, body = s.jsonCall(t, http.MethodPut, manageURI, rat, map[string]any{"client_id": app["client_id"], "client_name": "Good", "redirect_uris": []string{bad}})
		if status != http.StatusBadRequest || body["error"] != "invalid_redirect_uri" {
			t.Errorf("RFC 7592 PUT, %s: %d %v", name, status, body["error"])
		}
		status, body = s.registerJSON(t, iat[1], map[string]any{"client_name": "Bad", "redirect_uris": []string{redirectURI}, "post_logout_redirect_uris": []string{bad}})
		if status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" {
			t.Errorf("RFC 7591 post_logout_redirect_uris, %s: %d %v", name, status, body["error"])
		}
	}
	after, _ := s.app.store.ListClients(ctx)
	if len(after) != len(before) {
		t.Fatalf("%d clients before, %d after the refusals", len(before), len(after))
	}
	for _, c := range after {
		for _, u := range append(c.RedirectURIs, c.PostLogoutRedirectURIs...) {
			if len(u) > clients.MaxURILength || strings.Contains(u, "*") || strings.Contains(u, "@") {
				t.Errorf("client %s holds %.80s", c.ID, u)
			}
		}
	}
}

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

// Dynamic registration keeps post_logout_redirect_uris,
// backchannel_logout_uri and backchannel_logout_session_required (issue
// 31, item 10): returned on registration and RFC 7592 reads and updates,
// edited on /developer, and logout works with them.
func TestRound3DynamicRegistrationLogoutMetadata(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		rpServer := newRelyingParty(t)
		dev := s.user("dev")
		b := s.browser()
		s.signInPage(t, b, "dev")
		iat := s.initialToken(t, b)
		backchannel := rpServer.srv.URL + "/backchannel"
		meta := map[string]any{"client_name": "Logs out", "redirect_uris": []string{redirectURI},
			"post_logout_redirect_uris": []string{"https://app.example/bye"}, "backchannel_logout_uri": backchannel,
			"backchannel_logout_session_required": true, "scope": "openid profile"}

		// Bad logout metadata is refused with the RFC's error.
		for name, m := range map[string]map[string]any{
			"an http back-channel URI off loopback": {"backchannel_logout_uri": "http://app.example/bc"},
			"a back-channel URI with a fragment":    {"backchannel_logout_uri": "https://app.example/bc#x"},
			"a relative post-logout URI":            {"post_logout_redirect_uris": []string{"/bye"}},
			"a post-logout URI with a password":     {"post_logout_redirect_uris": []string{"https://u:p@app.example/bye"}},
			"a private scheme for a web app":        {"post_logout_redirect_uris": []string{"com.example.app:/bye"}},
		} {
			bad := map[string]any{"client_name": "x", "redirect_uris": []string{redirectURI}}
			for k, v := range m {
				bad[k] = v
			}
			if status, body := s.registerJSON(t, iat, bad); status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" {
				t.Errorf("%s: %d %v", name, status, body)
			}
		}

		status, app := s.registerJSON(t, iat, meta)
		if status != http.StatusCreated {
			t.Fatalf("registration: %d %v", status, app)
		}
		has := func(where string, got map[string]any, postLogout, bc string) {
			t.Helper()
			list, _ := got["post_logout_redirect_uris"].([]any)
			if len(list) != 1 || list[0] != postLogout || got["backchannel_logout_uri"] != bc || got["backchannel_logout_session_required"] != true {
				t.Fatalf("%s: post_logout_redirect_uris %v, backchannel_logout_uri %v, backchannel_logout_session_required %v",
					where, got["post_logout_redirect_uris"], got["backchannel_logout_uri"], got["backchannel_logout_session_required"])
			}
		}
		has("the registration response", app, "https://app.example/bye", backchannel)
		id, secret, rat := app["client_id"].(string), app["client_secret"].(string), app["registration_access_token"].(string)
		_, read := s.jsonCall(t, http.MethodGet, provider.RegisterPath+"/"+id, rat, nil)
		has("the RFC 7592 read", read, "https://app.example/bye", backchannel)

		// Logout works with them: the user signs in through the app, the
		// app signs them out and names its post-logout URI, the browser
		// goes there and the back-channel URI hears of it.
		s.user("ulla")
		browser := s.browser()
		r := s.rp(id, secret, "profile")
		tok := s.consentFlow(t, r, browser, "ulla")
		idToken := tok.Extra("id_token").(string)
		q := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"s1"}}
		p := get(t, browser, s.issuer+provider.LogoutPath+"?"+q.Encode())
		if p.location == nil || p.location.Host != "app.example" || p.location.Query().Get("state") != "s1" {
			t.Fatalf("RP-initiated logout: %d %v, want the registered post-logout URI", p.status, p.location)
		}
		// An RFC 7591 app has pairwise subjects (issue 33): its logout
		// token names the person and the session as its ID token did.
		verifyLogoutToken(t, s.issuer, rpServer.next(t), id, idClaims(t, idToken)["sub"].(string), idClaims(t, idToken)["sid"].(string))

		// RFC 7592 PUT replaces them and answers with them.
		put := map[string]any{"client_id": id, "client_name": "Logs out", "redirect_uris": []string{redirectURI},
			"post_logout_redirect_uris": []string{"https://app.example/later"}, "backchannel_logout_uri": backchannel + "2"}
		status, updated := s.jsonCall(t, http.MethodPut, provider.RegisterPath+"/"+id, rat, put)
		if status != http.StatusOK {
			t.Fatalf("RFC 7592 PUT: %d %v", status, updated)
		}
		has("the RFC 7592 update", updated, "https://app.example/later", backchannel+"2")

		// /developer shows and edits them; an edit that leaves the
		// back-channel URI as the page shows it keeps it.
		page := get(t, b, s.issuer+"/developer")
		if !strings.Contains(page.body, "https://app.example/later") || !strings.Contains(page.body, `value="`+backchannel+`2"`) {
			t.Fatalf("/developer does not show the logout metadata:\n%s", page.body)
		}
		f := accountForm(t, page, "/developer/apps/update")
		if p := submit(t, b, f, map[string]string{"redirect_uris": redirectURI, "post_logout_redirect_uris": "https://app.example/bye\nhttps://app.example/again"}); !strings.Contains(p.body, "The app is saved") {
			t.Fatalf("/developer edit: %d\n%s", p.status, p.body)
		}
		c, err := s.app.clients.Get(context.Background(), id)
		if err != nil || strings.Join(c.PostLogoutRedirectURIs, " ") != "https://app.example/bye https://app.example/again" || c.BackchannelLogoutURI != backchannel+"2" || c.Owner != dev.ID {
			t.Fatalf("after the /developer edit: %+v %v", c, err)
		}
		if p := submit(t, b, accountForm(t, get(t, b, s.issuer+"/developer"), "/developer/apps/update"), map[string]string{"redirect_uris": redirectURI, "backchannel_logout_uri": "http://app.example/bc"}); p.status != http.StatusBadRequest {
			t.Fatalf("/developer accepted an http back-channel URI: %d", p.status)
		}
		// Registered on /developer with them from the start.
		f = accountForm(t, get(t, b, s.issuer+"/developer"), "/developer/apps")
		made := submit(t, b, f, map[string]string{"name": "From the page", "type": "web", "redirect_uris": redirectURI,
			"post_logout_redirect_uris": "https://page.example/bye", "backchannel_logout_uri": "https://page.example/bc"})
		m := clientIDRe.FindStringSubmatch(made.body)
		if m == nil {
			t.Fatalf("/developer registration: %d\n%s", made.status, made.body)
		}
		if c, _ := s.app.clients.Get(context.Background(), m[1]); strings.Join(c.PostLogoutRedirectURIs, " ") != "https://page.example/bye" || c.BackchannelLogoutURI != "https://page.example/bc" {
			t.Fatalf("registered on /developer: %+v", c)
		}
	})
}

// A dynamic registration without scope may ask for the standard scopes,
// offline_access among them, and gets a refresh token (issue 31, item 12);
// listenbrainz and API scopes still have to be asked for by name.
func TestRound3RegistrationWithoutScopeGetsRefreshTokens(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("dev")
		b := s.browser()
		s.signInPage(t, b, "dev")
		iat := s.initialToken(t, b)
		status, app := s.registerJSON(t, iat, map[string]any{"client_name": "No scope", "redirect_uris": []string{redirectURI},
			"grant_types": []string{"authorization_code", "refresh_token"}})
		if status != http.StatusCreated || app["scope"] != "openid profile email offline_access" {
			t.Fatalf("registration without scope: %d, scope %v", status, app["scope"])
		}
		id, secret := app["client_id"].(string), app["client_secret"].(string)
		s.user("ulla")
		browser := s.browser()
		r := s.rp(id, secret, "offline_access")
		tok := s.consentFlow(t, r, browser, "ulla")
		if tok.RefreshToken == "" {
			t.Fatalf("no refresh token for openid offline_access: %+v", tok)
		}
		if got := s.refresh(id, secret, tok.RefreshToken, ""); got.status != http.StatusOK || got.body["refresh_token"] == nil {
			t.Fatalf("refreshing: %d %v", got.status, got.body)
		}
		// Not widened: listenbrainz is not a default.
		p := get(t, browser, s.rp(id, secret, "listenbrainz").conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if p.location == nil || p.location.Query().Get("error") != "invalid_scope" {
			t.Fatalf("listenbrainz without registering it: %d %v", p.status, p.location)
		}
	})
}

// consentFlow runs a third-party app's code flow for username (signing in
// and consenting) and returns the tokens.
func (s *server) consentFlow(t *testing.T, r *rp, browser *http.Client, username string) *oauth2.Token {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	back := s.authorize(browser, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(t))), username, true)
	tok, err := r.conf.Exchange(r.ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	return tok
}

// A registration that says application_type "web" gets no private-use
// scheme even as a public client (a single-page app): tonearm keeps public
// clients as native apps, and a public web app registered with a
// private-use post-logout URI was turned into a native one and accepted
// (OpenID Connect Dynamic Registration §2; docs/developers.md). A native
// app still gets one.
func TestRound3PublicWebAppGetsNoPrivateScheme(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	s.user("dev")
	b := s.browser()
	s.signInPage(t, b, "dev")
	iat := s.initialToken(t, b)
	for field, want := range map[string]string{"redirect_uris": "invalid_redirect_uri", "post_logout_redirect_uris": "invalid_client_metadata"} {
		meta := map[string]any{"client_name": "SPA", "application_type": "web", "token_endpoint_auth_method": "none",
			"redirect_uris": []string{"https://spa.example/cb"}}
		meta[field] = []string{"org.example.spa:/cb"}
		if status, body := s.registerJSON(t, iat, meta); status != http.StatusBadRequest || body["error"] != want {
			t.Errorf("a public web app with a private-use %s: %d %v, want 400 %s", field, status, body, want)
		}
	}
	native := map[string]any{"client_name": "Phone", "application_type": "native", "token_endpoint_auth_method": "none",
		"redirect_uris": []string{"org.example.phone:/cb"}, "post_logout_redirect_uris": []string{"org.example.phone:/out"}}
	if status, body := s.registerJSON(t, iat, native); status != http.StatusCreated {
		t.Errorf("a native app with private-use URIs: %d %v", status, body)
	}
}
