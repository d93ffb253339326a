package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

var (
	clientIDRe     = regexp.MustCompile(`id="client-id">([^<]+)<`)
	clientSecretRe = regexp.MustCompile(`id="client-secret">([^<]+)<`)
	initialTokenRe = regexp.MustCompile(`id="initial-token">([^<]+)<`)
)

// registerJSON posts RFC 7591 metadata, with an initial access token when
// token is set.
func (s *server) registerJSON(t *testing.T, token string, metadata any) (int, map[string]any) {
	t.Helper()
	return s.jsonCall(t, http.MethodPost, provider.RegisterPath, token, metadata)
}

func (s *server) jsonCall(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	target := path
	if strings.HasPrefix(path, "/") {
		target = s.issuer + path
	}
	req, _ := http.NewRequest(method, target, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// consentAndFinish runs an app's code flow for a signed-in browser,
// expecting the consent page (with the not-reviewed notice) and allowing.
func consentAndFinish(t *testing.T, b *http.Client, r *rp, wantLoud bool) map[string]any {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	p := get(t, b, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(t))))
	if !strings.Contains(p.body, `id="unreviewed"`) || strings.Contains(p.body, "Anyone can register an app here") != wantLoud {
		t.Fatalf("the consent page does not mark the app as not reviewed (loud %v): %d\n%s", wantLoud, p.status, p.body)
	}
	f := parseForm(t, p.body, p.url)
	f.values.Set("decision", "allow")
	_, claims := finishAt(t, r, submit(t, b, f, nil), verifier)
	return claims
}

// A developer registers an app on /developer and signs a user in with it;
// the app is third-party and never gets account or admin.
func TestDeveloperPage(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		s := startE2E(t, dbURL, options{})
		devi := s.user("devi")
		b := s.browser()
		s.signInPage(t, b, "devi")
		page := get(t, b, s.issuer+"/developer")
		f := accountForm(t, page, "/developer/apps")
		bad := submit(t, b, f, map[string]string{"name": "Sneaky", "type": "web", "redirect_uris": redirectURI, "scopes": "openid admin"})
		if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "cannot ask for the admin scope") || !strings.Contains(bad.body, `value="Sneaky"`) {
			t.Fatalf("an app asking for admin: %d\n%s", bad.status, bad.body)
		}
		made := submit(t, b, f, map[string]string{"name": "Scrobbler", "type": "web", "redirect_uris": redirectURI, "scopes": "openid profile"})
		id, secret := clientIDRe.FindStringSubmatch(made.body), clientSecretRe.FindStringSubmatch(made.body)
		if made.status != http.StatusOK || id == nil || secret == nil {
			t.Fatalf("registration: %d\n%s", made.status, made.body)
		}
		stored, err := s.app.store.GetClient(ctx, id[1])
		if err != nil || stored.Owner != devi.ID || stored.Registration != storage.RegisteredByDeveloper || stored.FirstParty {
			t.Fatalf("stored app: %+v %v", stored, err)
		}
		// A user signs in with it: consent, marked as not reviewed.
		s.user("ulla")
		ub := s.browser()
		s.signInPage(t, ub, "ulla")
		r := s.rp(id[1], secret[1], "profile")
		if claims := consentAndFinish(t, ub, r, false); claims["preferred_username"] != "ulla" {
			t.Fatalf("claims: %v", claims)
		}
		// Someone else cannot touch it.
		other := s.browser()
		s.user("mallory")
		s.signInPage(t, other, "mallory")
		otherPage := get(t, other, s.issuer+"/developer")
		del := accountForm(t, otherPage, "/developer/apps")
		del.action = s.issuer + "/developer/apps/delete"
		if p := submit(t, other, del, map[string]string{"client_id": id[1], "confirm": "yes"}); p.status != http.StatusNotFound {
			t.Fatalf("another person deleted the app: %d", p.status)
		}
		// Edit and rotate.
		page = get(t, b, s.issuer+"/developer")
		if p := submit(t, b, accountForm(t, page, "/developer/apps/update"), map[string]string{"name": "Scrobbler 2", "redirect_uris": redirectURI}); !strings.Contains(p.body, "The app is saved") {
			t.Fatalf("edit: %d\n%s", p.status, p.body)
		}
		rotated := submit(t, b, accountForm(t, get(t, b, s.issuer+"/developer"), "/developer/apps/rotate"), nil)
		if m := clientSecretRe.FindStringSubmatch(rotated.body); m == nil || m[1] == secret[1] {
			t.Fatalf("rotation: %d\n%s", rotated.status, rotated.body)
		}
		// An admin disables it: refused everywhere.
		s.want(s.call(nil, http.MethodPatch, "/api/admin/clients/"+id[1], s.opsToken(), map[string]any{"disabled": true}), http.StatusOK)
		if p := get(t, ub, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))); p.status == http.StatusOK && strings.Contains(p.body, "Allow") {
			t.Fatalf("a disabled app got a consent page:\n%s", p.body)
		}
		// Delete.
		page = get(t, b, s.issuer+"/developer")
		if p := submit(t, b, accountForm(t, page, "/developer/apps/delete"), map[string]string{"confirm": "yes"}); !strings.Contains(p.body, "The app is deleted") {
			t.Fatalf("delete: %d\n%s", p.status, p.body)
		}
		if _, err := s.app.store.GetClient(ctx, id[1]); err == nil {
			t.Fatal("the app stayed")
		}
	})
}

// RFC 7591 and 7592, in each registration mode.
func TestDynamicClientRegistration(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		s := startE2E(t, dbURL, options{})
		var disc map[string]any
		_, disc = s.jsonCall(t, http.MethodGet, provider.DiscoveryPath, "", nil)
		if disc["registration_endpoint"] != s.issuer+provider.RegisterPath {
			t.Fatalf("discovery: %v", disc["registration_endpoint"])
		}
		meta := map[string]any{"client_name": "Self-registered", "redirect_uris": []string{redirectURI}, "scope": "openid profile", "software_id": "ignored"}
		// Token mode: no token, or a wrong one.
		for tok, want := range map[string]string{"": "invalid_request", "iat_not-a-token": "invalid_token"} { // RFC 6750 §3.1
			if status, body := s.registerJSON(t, tok, meta); status != http.StatusUnauthorized || body["error"] != want {
				t.Fatalf("token %q: %d %v", tok, status, body)
			}
		}
		// A developer's token (from /developer): the app is theirs.
		dev := s.user("dora")
		b := s.browser()
		s.signInPage(t, b, "dora")
		made := submit(t, b, accountForm(t, get(t, b, s.issuer+"/developer"), "/developer/tokens"), map[string]string{"description": "CI", "expires_days": "7"})
		iat := initialTokenRe.FindStringSubmatch(made.body)
		if iat == nil {
			t.Fatalf("no initial access token:\n%s", made.body)
		}
		status, app := s.registerJSON(t, iat[1], meta)
		if status != http.StatusCreated || app["client_id"] == nil || app["client_secret"] == nil || app["registration_access_token"] == nil ||
			app["registration_client_uri"] != s.issuer+provider.RegisterPath+"/"+app["client_id"].(string) || app["token_endpoint_auth_method"] != "client_secret_basic" ||
			app["client_secret_expires_at"] != float64(0) {
			t.Fatalf("registration: %d %v", status, app)
		}
		clientID := app["client_id"].(string)
		if c, _ := s.app.store.GetClient(ctx, clientID); c.Owner != dev.ID || c.Registration != storage.RegisteredWithToken {
			t.Fatalf("stored: %+v", c)
		}
		// Every invalid metadata is refused with the RFC's error, and
		// nothing is stored.
		before, _ := s.app.store.ListClients(ctx)
		if _, err := s.app.apis.Create(ctx, apis.Spec{ID: "https://closed.example", Scopes: []storage.APIScope{{Name: "closed:read"}}}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			meta map[string]any
			want string
		}{
			{"a fragment", map[string]any{"client_name": "x", "redirect_uris": []string{"https://app.example/cb#frag"}}, "invalid_redirect_uri"},
			{"http on a public host", map[string]any{"client_name": "x", "redirect_uris": []string{"http://app.example/cb"}}, "invalid_redirect_uri"},
			{"a private scheme for a web app", map[string]any{"client_name": "x", "redirect_uris": []string{"com.example.app:/cb"}}, "invalid_redirect_uri"},
			{"no redirect URI", map[string]any{"client_name": "x"}, "invalid_redirect_uri"},
			{"redirect_uris not a list", map[string]any{"client_name": "x", "redirect_uris": "https://app.example/cb"}, "invalid_client_metadata"},
			{"no name", map[string]any{"redirect_uris": []string{redirectURI}}, "invalid_client_metadata"},
			{"an http logo", map[string]any{"client_name": "x", "redirect_uris": []string{redirectURI}, "logo_uri": "http://app.example/logo.png"}, "invalid_client_metadata"},
			{"private_key_jwt", map[string]any{"client_name": "x", "redirect_uris": []string{redirectURI}, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"},
			{"client_credentials", map[string]any{"client_name": "x", "redirect_uris": []string{redirectURI}, "grant_types": []string{"client_credentials"}}, "invalid_client_metadata"},
			{"implicit", map[string]any{"client_name": "x", "redirect_uris": []string{redirectURI}, "response_types": []string{"token"}}, "invalid_client_metadata"},
			{"the admin scope", map[string]any{"client_name": "x", "redirect_uris": []string{redirectURI}, "scope": "openid admin"}, "invalid_client_metadata"},
			{"the account scope", map[string]any{"client_name": "x", "redirect_uris": []string{redirectURI}, "scope": "openid account"}, "invalid_client_metadata"},
			{"a closed API's scope", map[string]any{"client_name": "x", "redirect_uris": []string{redirectURI}, "scope": "openid closed:read"}, "invalid_client_metadata"},
			{"a bad id_token alg", map[string]any{"client_name": "x", "redirect_uris": []string{redirectURI}, "id_token_signed_response_alg": "none"}, "invalid_client_metadata"},
		} {
			status, body := s.registerJSON(t, iat[1], c.meta)
			if status != http.StatusBadRequest || body["error"] != c.want || body["error_description"] == "" {
				t.Errorf("%s: %d %v, want %s", c.name, status, body, c.want)
			}
		}
		if after, _ := s.app.store.ListClients(ctx); len(after) != len(before) {
			t.Fatalf("refused registrations stored clients: %d → %d", len(before), len(after))
		}
		// A native app (public, PKCE, a private-use scheme) and an API open
		// to apps.
		if _, err := s.app.apis.Create(ctx, apis.Spec{ID: "https://open.example", Scopes: []storage.APIScope{{Name: "open:read"}}, OpenToApps: true}); err != nil {
			t.Fatal(err)
		}
		status, native := s.registerJSON(t, iat[1], map[string]any{"client_name": "Player", "redirect_uris": []string{"org.example.player:/cb", redirectURI},
			"token_endpoint_auth_method": "none", "application_type": "native", "scope": "openid open:read", "id_token_signed_response_alg": "ES256"})
		if status != http.StatusCreated || native["client_secret"] != nil || native["token_endpoint_auth_method"] != "none" || native["id_token_signed_response_alg"] != "ES256" {
			t.Fatalf("native app: %d %v", status, native)
		}

		// A device app (the device grant, no secret): its device page is
		// marked as not reviewed too.
		status, dev2 := s.registerJSON(t, iat[1], map[string]any{"client_name": "Kitchen radio", "token_endpoint_auth_method": "none",
			"grant_types": []string{provider.DeviceCodeGrant, "refresh_token"}, "scope": "openid profile offline_access"})
		if status != http.StatusCreated || dev2["redirect_uris"] != nil && len(dev2["redirect_uris"].([]any)) != 0 {
			t.Fatalf("device app: %d %v", status, dev2)
		}
		if status, start := s.deviceStart(t, dev2["client_id"].(string), "openid profile"); status != http.StatusOK {
			t.Fatalf("device start: %d %v", status, start)
		} else {
			db := s.browser()
			s.signInPage(t, db, "dora")
			p := get(t, db, start["verification_uri_complete"].(string))
			if p = submit(t, db, parseForm(t, p.body, p.url), nil); !strings.Contains(p.body, `id="unreviewed"`) {
				t.Fatalf("the device page does not mark the app:\n%s", p.body)
			}
		}

		// The code flow with the registered web app.
		s.user("ulla")
		ub := s.browser()
		s.signInPage(t, ub, "ulla")
		r := s.rp(clientID, app["client_secret"].(string), "profile")
		if claims := consentAndFinish(t, ub, r, false); claims["preferred_username"] != "ulla" {
			t.Fatalf("claims: %v", claims)
		}
		// An API closed after the app registered: its scope is refused.
		nr := s.rp(native["client_id"].(string), "", "open:read")
		closed := false
		if _, err := s.app.apis.Update(ctx, "https://open.example", apis.Update{OpenToApps: &closed}); err != nil {
			t.Fatal(err)
		}
		p := get(t, ub, nr.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if p.location == nil || p.location.Query().Get("error") != "invalid_scope" {
			t.Fatalf("a closed API's scope: %d %v", p.status, p.location)
		}

		// RFC 7592: read, update, delete with the registration access token.
		uri, rat := app["registration_client_uri"].(string), app["registration_access_token"].(string)
		if status, _ := s.jsonCall(t, http.MethodGet, uri, "wrong", nil); status != http.StatusUnauthorized {
			t.Fatalf("read with a wrong token: %d", status)
		}
		if status, _ := s.jsonCall(t, http.MethodGet, uri, iat[1], nil); status != http.StatusUnauthorized {
			t.Fatalf("read with the initial access token: %d", status)
		}
		status, got := s.jsonCall(t, http.MethodGet, uri, rat, nil)
		if status != http.StatusOK || got["client_name"] != "Self-registered" || got["client_secret"] != nil {
			t.Fatalf("read: %d %v", status, got)
		}
		update := map[string]any{"client_id": clientID, "client_name": "Renamed", "redirect_uris": []string{redirectURI}, "scope": "openid profile"}
		if status, got := s.jsonCall(t, http.MethodPut, uri, rat, update); status != http.StatusOK || got["client_name"] != "Renamed" {
			t.Fatalf("update: %d %v", status, got)
		}
		if c, _ := s.app.store.GetClient(ctx, clientID); c.Name != "Renamed" || c.Owner != dev.ID {
			t.Fatalf("after update: %+v", c)
		}
		update["redirect_uris"] = []string{"https://app.example/cb#x"}
		if status, got := s.jsonCall(t, http.MethodPut, uri, rat, update); status != http.StatusBadRequest || got["error"] != "invalid_redirect_uri" {
			t.Fatalf("a bad update: %d %v", status, got)
		}
		update["client_id"] = "someone-else"
		if status, _ := s.jsonCall(t, http.MethodPut, uri, rat, update); status != http.StatusBadRequest {
			t.Fatalf("an update naming another client: %d", status)
		}
		if status, _ := s.jsonCall(t, http.MethodDelete, uri, rat, nil); status != http.StatusNoContent {
			t.Fatalf("delete: %d", status)
		}
		if status, _ := s.jsonCall(t, http.MethodGet, uri, rat, nil); status != http.StatusUnauthorized {
			t.Fatalf("read after delete: %d", status)
		}
		// A command-line token: an app without an owner.
		_, cliToken, err := s.app.initialTokens.Create(ctx, "", "ops", 0)
		if err != nil {
			t.Fatal(err)
		}
		if status, body := s.registerJSON(t, cliToken, meta); status != http.StatusCreated {
			t.Fatalf("with a command-line token: %d %v", status, body)
		}
		seen := map[string]bool{}
		events, _ := s.app.store.ListEvents(ctx, storage.EventFilter{Limit: 500})
		for _, e := range events {
			seen[e.Type] = true
		}
		for _, typ := range []string{audit.AppRegistered, audit.AppChanged, audit.AppDeleted, audit.AppRefused, audit.RegistrationTokens} {
			if !seen[typ] {
				t.Errorf("no %s event", typ)
			}
		}
	})
}

// TONEARM_CLIENT_REGISTRATION=open: anyone registers, limited per address,
// and the consent page says so louder; =off: no endpoint.
func TestOpenAndOffRegistration(t *testing.T) {
	t.Parallel()
	s := startE2EConfig(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{}, func(c *config.Config) { c.ClientRegistration = "open" })
	meta := map[string]any{"client_name": "Anyone's app", "redirect_uris": []string{redirectURI}}
	status, app := s.registerJSON(t, "", meta)
	if status != http.StatusCreated {
		t.Fatalf("open registration: %d %v", status, app)
	}
	if c, _ := s.app.store.GetClient(context.Background(), app["client_id"].(string)); c.Registration != storage.RegisteredOpenly || c.Owner != "" {
		t.Fatalf("stored: %+v", c)
	}
	s.user("ulla")
	ub := s.browser()
	s.signInPage(t, ub, "ulla")
	consentAndFinish(t, ub, s.rp(app["client_id"].(string), app["client_secret"].(string), "profile"), true)
	throttled := false
	for i := 0; i < 12 && !throttled; i++ {
		status, body := s.registerJSON(t, "", meta)
		throttled = status == http.StatusTooManyRequests && strings.Contains(body["error_description"].(string), "app registrations from this address")
	}
	if !throttled {
		t.Fatal("open registration was never limited")
	}

	off := startE2EConfig(t, "sqlite://"+filepath.Join(t.TempDir(), "off.db"), options{}, func(c *config.Config) { c.ClientRegistration = "off" })
	if status, body := off.registerJSON(t, "", meta); status != http.StatusForbidden || body["error"] != "access_denied" {
		t.Fatalf("off: %d %v", status, body)
	}
	if _, disc := off.jsonCall(t, http.MethodGet, provider.DiscoveryPath, "", nil); disc["registration_endpoint"] != nil {
		t.Fatalf("discovery names a registration endpoint that is off: %v", disc["registration_endpoint"])
	}
}

// In Chromium: a developer registers an app on /developer, reads its
// client ID and secret, and signs in with it (the consent page marks it).
func browserDeveloperPage(t *testing.T, s *server) {
	u := s.user("chromium-dev")
	rp := newAppCallback(t)
	b := newBrowser(t)
	b.signIn(s, u.Username, e2ePassword)
	b.open(s.issuer + "/developer")
	b.run(chromedp.SetValue(chromedp.CSS("#app-name"), "Chromium Scrobbler"), chromedp.SetValue(chromedp.CSS("#app-redirects"), rp.srv.URL+"/callback"),
		chromedp.Click(chromedp.CSS(`form[action$="/developer/apps"] button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("#client-id")))
	id := value(b, chromedp.Text(chromedp.CSS("#client-id")))
	secret := value(b, chromedp.Text(chromedp.CSS("#client-secret")))
	app := &appFlow{rp: rp, state: random(t), verifier: oauth2.GenerateVerifier(), conf: oauth2.Config{
		ClientID: strings.TrimSpace(id), ClientSecret: strings.TrimSpace(secret), RedirectURL: rp.srv.URL + "/callback", Scopes: []string{"openid", "profile"},
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + provider.AuthorizePath, TokenURL: s.issuer + provider.TokenPath},
	}}
	b.open(app.authURL())
	b.run(chromedp.WaitVisible(chromedp.CSS("#unreviewed")))
	b.wantText("Allow Chromium Scrobbler?")
	b.run(chromedp.Click(chromedp.CSS(`button[value=allow]`)))
	tok := app.finish(t, b)
	// A developer's app is pairwise by default (OIDC Core §8): its sub is
	// of its own sector, not the user ID.
	want, err := s.app.provider.ClientSubject(context.Background(), strings.TrimSpace(id), u.ID)
	if err != nil || want == u.ID {
		t.Fatalf("the app's subject: %q, %v", want, err)
	}
	if claims := idClaims(t, tok.Extra("id_token").(string)); claims["sub"] != want {
		t.Fatalf("ID token claims = %v", claims)
	}
}
