package main

import (
	"context"
	"fmt"
	"github.com/tonearm-idp/tonearm/provider/apis"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

// Defects found by trying tonearm from outside, each replayed as it was
// found and shown fixed.

// exchange posts a code to the token endpoint as client id (HTTP Basic),
// with verifier unless it is empty.
func (s *server) exchange(id, secret, code, verifier string) tokenReply {
	s.t.Helper()
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	if verifier != "" {
		f.Set("code_verifier", verifier)
	}
	return s.post(provider.TokenPath, id, secret, f)
}

// A code issued with a PKCE challenge is redeemable only with its
// verifier, and a failed exchange spends it: a confidential client that
// failed once cannot try again without a verifier (fosite forgets the
// challenge before it checks the verifier).
func TestPKCECannotBeSkippedOnASecondTry(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("pia")
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
		r := s.rp("web", secret)
		browser := s.browser()
		code := func(verifier string) string {
			back := s.authorize(browser, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(t))), "", false)
			return back.Query().Get("code")
		}
		verifier := oauth2.GenerateVerifier()
		first := s.authorize(browser, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(t))), "pia", false).Query().Get("code")
		if got := s.exchange("web", secret, first, oauth2.GenerateVerifier()); got.status != http.StatusBadRequest || got.errorCode() != "invalid_grant" {
			t.Fatalf("wrong verifier = %d %v, want invalid_grant", got.status, got.body)
		}
		if got := s.exchange("web", secret, first, ""); got.status != http.StatusBadRequest || got.errorCode() != "invalid_grant" {
			t.Fatalf("second try without a verifier = %d %v, want invalid_grant", got.status, got.body)
		}
		if got := s.exchange("web", secret, first, verifier); got.status != http.StatusBadRequest {
			t.Fatalf("the right verifier after a failure = %d %v: the code should be spent", got.status, got.body)
		}

		// No verifier at all on a code with a challenge: refused, and spent.
		verifier = oauth2.GenerateVerifier()
		c := code(verifier)
		if got := s.exchange("web", secret, c, ""); got.status != http.StatusBadRequest || got.errorCode() != "invalid_grant" {
			t.Fatalf("no verifier = %d %v, want invalid_grant", got.status, got.body)
		}
		if got := s.exchange("web", secret, c, verifier); got.status != http.StatusBadRequest {
			t.Fatalf("the right verifier after a failure = %d %v: the code should be spent", got.status, got.body)
		}

		// The plain path still works, once.
		verifier = oauth2.GenerateVerifier()
		c = code(verifier)
		if got := s.exchange("web", secret, c, verifier); got.status != http.StatusOK || got.body["id_token"] == nil {
			t.Fatalf("the right verifier = %d %v", got.status, got.body)
		}
		if got := s.exchange("web", secret, c, verifier); got.status != http.StatusBadRequest || got.errorCode() != "invalid_grant" {
			t.Fatalf("a code used twice = %d %v", got.status, got.body)
		}
	})
}

// A pushed request is taken as it was pushed: parameters the URL adds are
// ignored, the pages carry only client_id and request_uri, the request_uri
// belongs to the first browser that opens it, and opening it as another
// client neither works nor spends it.
func TestPushedRequestsAreNotMixedOrShared(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		_, secret := s.client(clients.Spec{ID: "pushy", Scopes: []string{"openid", "profile"}, FirstParty: true})
		_, otherSecret := s.client(clients.Spec{ID: "other", Scopes: []string{"openid", "profile"}, FirstParty: true})
		s.user("pusher")
		pushURI := func(verifier string) string {
			status, body := s.push(t, "pushy", secret, parForm(verifier))
			uri, _ := body["request_uri"].(string)
			if status != http.StatusCreated || uri == "" {
				t.Fatalf("push: %d %v", status, body)
			}
			return uri
		}
		authURL := func(clientID, uri string, extra url.Values) string {
			q := url.Values{"client_id": {clientID}, "request_uri": {uri}}
			for k, v := range extra {
				q[k] = v
			}
			return s.issuer + provider.AuthorizePath + "?" + q.Encode()
		}

		verifier := oauth2.GenerateVerifier()
		uri := pushURI(verifier)
		injected := url.Values{
			"nonce": {"INJECTED-nonce"}, "max_age": {"0"}, "prompt": {"login"}, "redirect_uri": {"http://127.0.0.1:2/evil"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "scope": {"openid profile email"},
		}
		browser := s.browser()
		p := get(t, browser, authURL("pushy", uri, injected))
		if p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("opening a pushed request: %d %v\n%s", p.status, p.location, p.body)
		}
		f := parseForm(t, p.body, p.url)
		for k := range f.values {
			if !map[string]bool{"client_id": true, "request_uri": true, "csrf_token": true, "tonearm_action": true, "username": true, "password": true}[k] {
				t.Errorf("the login page of a pushed request echoes %q = %q", k, f.values[k])
			}
		}

		// Another browser, five seconds or five minutes later: refused,
		// in plain words, before any login page.
		thief := get(t, s.browser(), authURL("pushy", uri, nil))
		if thief.status != http.StatusBadRequest || strings.Contains(thief.body, `name="password"`) || !strings.Contains(thief.body, "belongs to another browser") {
			t.Fatalf("a request_uri opened in a second browser: %d %v\n%s", thief.status, thief.location, thief.body)
		}

		back := submit(t, browser, f, map[string]string{"username": "pusher", "password": e2ePassword})
		if back.location == nil || back.location.String()[:len(redirectURI)] != redirectURI || back.location.Query().Get("code") == "" ||
			back.location.Query().Get("state") != "state-of-the-art" {
			t.Fatalf("after login: %d %v\n%s", back.status, back.location, back.body)
		}
		got := s.exchange("pushy", secret, back.location.Query().Get("code"), verifier)
		if got.status != http.StatusOK {
			t.Fatalf("exchange with the pushed verifier = %d %v", got.status, got.body)
		}
		if c := idClaims(t, got.body["id_token"].(string)); c["nonce"] != "nonce-of-the-art" {
			t.Fatalf("ID token nonce = %v, want the pushed one", c["nonce"])
		}
		if scope := got.body["scope"]; strings.Contains(scope.(string), "email") {
			t.Fatalf("granted scope = %v: the query's scope was used", scope)
		}

		// Opened under another client_id: refused and not spent.
		uri = pushURI(verifier)
		if p := get(t, s.browser(), authURL("other", uri, nil)); p.status != http.StatusBadRequest || strings.Contains(p.body, `name="password"`) {
			t.Fatalf("request_uri under another client_id: %d %v", p.status, p.location)
		}
		_ = otherSecret
		if p := get(t, s.browser(), authURL("pushy", uri, nil)); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("its owner after a foreign try: %d %v\n%s", p.status, p.location, p.body)
		}
	})
}

// A request object that cannot be accepted (unsigned from a client not
// registered for it, a request_uri not registered): a valid client with a
// registered redirect URI hears invalid_request_object or
// invalid_request_uri at its callback (RFC 9101 §6.3; the rest in
// i33_requestobject_test.go); a person who cannot be sent back reads plain
// words, not a library's.
func TestRequestObjectsAnsweredToTheClient(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.client(clients.Spec{ID: "web", FirstParty: true})
		base := url.Values{"client_id": {"web"}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
		for name, c := range map[string]struct {
			extra url.Values
			want  string
		}{
			"unsigned request object":  {url.Values{"request": {"eyJhbGciOiJub25lIn0.eyJzdGF0ZSI6InMifQ."}}, "invalid_request_object"},
			"request_uri by reference": {url.Values{"request_uri": {"https://app.example/req/1"}}, "invalid_request_uri"},
		} {
			q := cloneValues(base)
			for k, v := range c.extra {
				q[k] = v
			}
			p := get(t, s.browser(), s.issuer+provider.AuthorizePath+"?"+q.Encode())
			if p.location == nil || p.location.Query().Get("error") != c.want || p.location.Query().Get("state") != "s" || p.location.Query().Get("iss") != s.issuer {
				t.Errorf("%s: %d %v, want %s at the callback\n%s", name, p.status, p.location, c.want, p.body)
			}
		}
		q := cloneValues(base)
		q.Set("client_id", "nobody")
		q.Set("request", "x.y.z")
		p := get(t, s.browser(), s.issuer+provider.AuthorizePath+"?"+q.Encode())
		if p.status != http.StatusBadRequest || p.location != nil || !strings.Contains(p.body, "not registered with this site") ||
			strings.Contains(p.body, "OAuth 2.0 Client") || strings.Contains(p.body, "OP does not") {
			t.Fatalf("unknown client: %d %v\n%s", p.status, p.location, p.body)
		}
	})
}

// state is optional with PKCE and has no minimum length; without PKCE
// (a legacy client) it is required.
func TestStateOptionalWithPKCE(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("stan")
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
		s.client(clients.Spec{ID: "legacy", FirstParty: true, AllowNoPKCE: true})
		browser := s.browser()
		authURL := func(client string, extra url.Values) string {
			q := url.Values{"client_id": {client}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"openid"}}
			for k, v := range extra {
				q[k] = v
			}
			return s.issuer + provider.AuthorizePath + "?" + q.Encode()
		}
		verifier := oauth2.GenerateVerifier()
		pkce := url.Values{"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}, "nonce": {"n"}}
		back := s.authorize(browser, authURL("web", pkce), "stan", false)
		if back.Query().Get("code") == "" || back.Query().Has("state") {
			t.Fatalf("no state with PKCE: %v, want a code and no state", back)
		}
		got := s.exchange("web", secret, back.Query().Get("code"), verifier)
		if got.status != http.StatusOK || idClaims(t, got.body["id_token"].(string))["nonce"] != "n" {
			t.Fatalf("exchange: %d %v", got.status, got.body)
		}
		short := cloneValues(pkce)
		short.Set("state", "x")
		if back := s.authorize(browser, authURL("web", short), "", false); back.Query().Get("state") != "x" || back.Query().Get("code") == "" {
			t.Fatalf("a one-letter state: %v", back)
		}
		if p := get(t, browser, authURL("legacy", nil)); p.location == nil || p.location.Query().Get("error") != "invalid_state" {
			t.Fatalf("no state and no PKCE: %d %v, want invalid_state", p.status, p.location)
		}
		if back := s.authorize(browser, authURL("legacy", url.Values{"state": {"y"}}), "", false); back.Query().Get("code") == "" {
			t.Fatalf("a legacy client with a state: %v", back)
		}
	})
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Only an ID token tonearm issued is an id_token_hint: an access token or
// a logout token (signed with the same RS256 key) ends nothing.
func TestOnlyIDTokensAreLogoutHints(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("hana")
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
		r := s.rp("web", secret)
		browser := s.browser()
		tok := s.codeFlow(r, browser, "hana")
		claims := idClaims(t, tok.Extra("id_token").(string))
		logoutToken, err := s.app.provider.LogoutToken(context.Background(), "web", claims["sub"].(string), claims["sid"].(string))
		if err != nil {
			t.Fatal(err)
		}
		signedIn := func() bool {
			p := get(t, browser, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "none")))
			return p.location != nil && p.location.Query().Get("code") != ""
		}
		for name, hint := range map[string]string{"access token": tok.AccessToken, "logout token": logoutToken} {
			p := get(t, http.DefaultClient, s.issuer+provider.LogoutPath+"?"+url.Values{"id_token_hint": {hint}}.Encode())
			if p.status != http.StatusBadRequest || !signedIn() {
				t.Fatalf("%s as id_token_hint: %d, signed in %v", name, p.status, signedIn())
			}
		}
		if p := get(t, http.DefaultClient, s.issuer+provider.LogoutPath+"?"+url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "client_id": {"other"}}.Encode()); p.status != http.StatusBadRequest || !signedIn() {
			t.Fatalf("an ID token with another client_id: %d", p.status)
		}
		if p := get(t, http.DefaultClient, s.issuer+provider.LogoutPath+"?"+url.Values{"id_token_hint": {tok.Extra("id_token").(string)}}.Encode()); p.status != http.StatusOK || signedIn() {
			t.Fatalf("the ID token as hint: %d, signed in %v", p.status, signedIn())
		}
	})
}

// A client-credentials request without scope gets the client's registered
// scopes (RFC 6749 §3.3), so the token names its APIs; an API or client
// changed on another replica (or by the command line) a moment ago is read
// from the database on a miss, never answered from a stale cache.
func TestClientCredentialsDefaultsAndCacheMisses(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		other := s.second()
		ctx := context.Background()
		_, secret := s.client(clients.Spec{ID: "ops", GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}})
		cc := func(srv *server, secret, scope string) tokenReply {
			form := url.Values{"grant_type": {"client_credentials"}}
			if scope != "" {
				form.Set("scope", scope)
			}
			return srv.post(provider.TokenPath, "ops", secret, form)
		}
		got := cc(s, secret, "")
		if got.status != http.StatusOK {
			t.Fatalf("no scope = %d %v", got.status, got.body)
		}
		claims := verifyAccessToken(t, s.issuer, got.body["access_token"].(string))
		if claims["scope"] != "admin" || !slices.Contains(audOf(t, claims), provider.APIIdentifier(s.issuer)) || got.body["scope"] != "admin" {
			t.Fatalf("no scope: claims %v, answer %v; want the registered scope and its API", claims, got.body)
		}

		// The other replica registers an API and gives the client its
		// scope; this one answers at once, from the database.
		const listens = "https://api.example.org/listens"
		if _, err := other.app.apis.Create(ctx, apisSpec(listens, "listens:read", "Read your listens", nil)); err != nil {
			t.Fatal(err)
		}
		if err := other.app.clients.Delete(ctx, "ops"); err != nil {
			t.Fatal(err)
		}
		_, secret, err := other.app.clients.Create(ctx, clients.Spec{ID: "ops", GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin", "listens:read"}})
		if err != nil {
			t.Fatal(err)
		}
		got = cc(s, secret, "listens:read")
		if got.status != http.StatusOK {
			t.Fatalf("a scope registered elsewhere a moment ago = %d %v", got.status, got.body)
		}
		claims = verifyAccessToken(t, s.issuer, got.body["access_token"].(string))
		if claims["scope"] != "listens:read" || !slices.Contains(audOf(t, claims), listens) {
			t.Fatalf("token for a fresh API: %v, want its scope and audience", claims)
		}
		got = cc(s, secret, "")
		claims = verifyAccessToken(t, s.issuer, got.body["access_token"].(string))
		if aud := audOf(t, claims); !slices.Contains(aud, listens) || !slices.Contains(aud, provider.APIIdentifier(s.issuer)) {
			t.Fatalf("no scope after the change: %v", claims)
		}
	})
}

// Device user codes cannot be guessed past the limit on any path: looking
// a code up, allowing and denying all count, per signed-in person (30) and
// per address; a burst of concurrent guesses gets no more than the limit;
// a guessed live code cannot be allowed or denied once the limit is
// reached; another person behind the same address is not locked out; and
// starting device sign-ins is limited per address too.
func TestDeviceCodeGuessingIsLimitedOnEveryPath(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.client(clients.Spec{ID: "scrobbler", Public: true, RedirectURIs: []string{}, GrantTypes: []string{clients.DeviceCodeGrant},
			Scopes: []string{"openid"}})
		attacker, neighbour := s.user("mallory"), s.user("neighbour")
		_, victim := s.deviceStart(t, "scrobbler", "openid")
		victimCode := victim["user_code"].(string)

		browser := s.browser()
		s.signInPage(t, browser, attacker.Username)
		p := get(t, browser, s.issuer+provider.DevicePath)
		f := parseForm(t, p.body, p.url)
		var mu sync.Mutex
		admitted, limited := 0, 0
		var wg sync.WaitGroup
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				decision := []string{"allow", "deny"}[i%2]
				got := submit(t, browser, f, map[string]string{"user_code": fmt.Sprintf("BCDF-%04d", i), "decision": decision})
				mu.Lock()
				defer mu.Unlock()
				switch got.status {
				case http.StatusTooManyRequests:
					limited++
				case http.StatusBadRequest:
					admitted++
				default:
					t.Errorf("guess %d: %d", i, got.status)
				}
			}(i)
		}
		wg.Wait()
		if admitted > 30 || limited < 10 {
			t.Fatalf("40 concurrent guesses with a decision: %d looked up, %d limited; want at most 30 looked up", admitted, limited)
		}
		for _, decision := range []string{"allow", "deny", ""} {
			got := submit(t, browser, f, map[string]string{"user_code": victimCode, "decision": decision})
			if got.status != http.StatusTooManyRequests || strings.Contains(got.body, "Done") || strings.Contains(got.body, "Denied") {
				t.Fatalf("the live code with decision %q past the limit: %d", decision, got.status)
			}
		}
		if status, body := s.devicePoll(t, "scrobbler", victim["device_code"].(string)); body["error"] != "authorization_pending" {
			t.Fatalf("the victim's device after the attack: %d %v, want authorization_pending", status, body)
		}

		// The neighbour, same address, is not locked out.
		other := s.browser()
		s.signInPage(t, other, neighbour.Username)
		p = get(t, other, s.issuer+provider.DevicePath+"?user_code="+url.QueryEscape(victimCode))
		if got := submit(t, other, parseForm(t, p.body, p.url), nil); got.status != http.StatusOK || !strings.Contains(got.body, "Only continue if you started this on your device") {
			t.Fatalf("another person behind the same address: %d", got.status)
		}

		// Starting device sign-ins: limited per address.
		for i := 0; ; i++ {
			status, body := s.deviceStart(t, "scrobbler", "openid")
			if status == http.StatusTooManyRequests {
				if body["error"] != "slow_down" {
					t.Fatalf("device authorization past the limit: %v", body)
				}
				break
			}
			if status != http.StatusOK || i > 60 {
				t.Fatalf("device authorization %d: %d %v (not limited)", i, status, body)
			}
		}
	})
}

// Device and first-party apps are connected apps: /account lists them with
// their last use and revokes them; "sign out every other session" ends
// their tokens (but those of this session), and a password change ends
// every app's tokens.
func TestDeviceAndFirstPartyAppsAreConnectedApps(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.client(clients.Spec{ID: "scrobbler", Public: true, RedirectURIs: []string{}, GrantTypes: []string{clients.DeviceCodeGrant, "refresh_token"},
			Scopes: []string{"openid", "offline_access"}, Display: clients.Display{Name: "Scrobbler 3000"}})
		_, webSecret := s.client(clients.Spec{ID: "web", FirstParty: true, Display: clients.Display{Name: "First Party Web"}})
		s.user("phished")
		here, there := s.browser(), s.browser()
		s.signInPage(t, here, "phished")

		deviceRefresh := func() string {
			t.Helper()
			_, start := s.deviceStart(t, "scrobbler", "openid offline_access")
			s.decideDevice(t, here, s.issuer+provider.DevicePath+"?user_code="+url.QueryEscape(start["user_code"].(string)), "allow")
			status, body := s.devicePoll(t, "scrobbler", start["device_code"].(string))
			if status != http.StatusOK || body["refresh_token"] == nil {
				t.Fatalf("device poll: %d %v", status, body)
			}
			return body["refresh_token"].(string)
		}
		deviceAlive := func(refresh string) bool {
			t.Helper()
			status, _ := s.postForm(t, provider.TokenPath, url.Values{"client_id": {"scrobbler"}, "grant_type": {"refresh_token"}, "refresh_token": {refresh}})
			return status == http.StatusOK
		}
		web := s.rp("web", webSecret, "offline_access")
		webRefresh := func(browser *http.Client, username string) string {
			t.Helper()
			return s.codeFlow(web, browser, username).RefreshToken
		}
		webAlive := func(refresh string) bool {
			t.Helper()
			return s.refresh("web", webSecret, refresh, "").status == http.StatusOK
		}
		accountPage := func() page { return get(t, here, s.issuer+"/account") }
		post := func(action string, extra url.Values) page {
			t.Helper()
			f := accountForm(t, accountPage(), action)
			for k, v := range extra {
				f.values[k] = v
			}
			return submit(t, here, f, nil)
		}

		dev := deviceRefresh()
		fp := webRefresh(there, "phished")
		p := accountPage()
		if !strings.Contains(p.body, "Scrobbler 3000") || !strings.Contains(p.body, "First Party Web") || strings.Count(p.body, "last used") < 2 {
			t.Fatalf("/account does not list the device and the first-party app with their last use:\n%s", p.body)
		}
		if p := post("/account/apps/revoke", url.Values{"client_id": {"scrobbler"}}); p.status != http.StatusOK || strings.Contains(p.body, "Scrobbler 3000") {
			t.Fatalf("revoking the device: %d\n%s", p.status, p.body)
		}
		if deviceAlive(dev) || !webAlive(fp) {
			t.Fatal("revoking the device must end its tokens, and only its")
		}

		// Sign out every other session: the device and the other browser's
		// app are cut off; this browser's app is not.
		dev = deviceRefresh()
		fp = webRefresh(there, "") // still signed in there
		mine := webRefresh(here, "")
		if p := post("/account/sessions/end-others", nil); p.status != http.StatusOK {
			t.Fatalf("end other sessions: %d", p.status)
		}
		if deviceAlive(dev) || webAlive(fp) {
			t.Fatal("tokens of the device or of another session survived \"sign out every other session\"")
		}
		if !webAlive(mine) {
			t.Fatal("this session's app lost its tokens")
		}

		// A password change ends every app's tokens.
		dev = deviceRefresh()
		mine = webRefresh(here, "")
		if p := post("/account/password", url.Values{"password_current": {e2ePassword}, "new_password": {e2ePassword + "-new"}}); p.url.Query().Get("done") != "password" {
			t.Fatalf("password change: %d %v", p.status, p.url)
		}
		if deviceAlive(dev) || webAlive(mine) {
			t.Fatal("tokens survived a password change")
		}
	})
}

// Introspection (RFC 7662 §4): a client sees the tokens issued to it and
// the tokens meant for an API that names it as an introspector; any other
// client hears {"active": false}, the token live or not. Naming the
// introspector takes effect at once, on every replica.
func TestIntrospectionOnlyByOwnerOrResourceServer(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		other := s.second()
		ctx := context.Background()
		const listens = "https://api.example.org/listens"
		if _, err := s.app.apis.Create(ctx, apisSpec(listens, "listens:read", "Read your listens", nil)); err != nil {
			t.Fatal(err)
		}
		_, appSecret := s.client(clients.Spec{ID: "app", GrantTypes: []string{"client_credentials"}, Scopes: []string{"listens:read"}})
		_, rsSecret := s.client(clients.Spec{ID: "listens-server", GrantTypes: []string{"client_credentials"}, Scopes: []string{"profile"}})
		_, nosySecret := s.client(clients.Spec{ID: "nosy", GrantTypes: []string{"client_credentials"}, Scopes: []string{"profile"}})
		tok := s.clientToken("app", appSecret, "listens:read")

		if !s.active("app", appSecret, tok) {
			t.Fatal("the token's own client cannot introspect it")
		}
		for _, c := range []struct{ id, secret string }{{"listens-server", rsSecret}, {"nosy", nosySecret}} {
			if got := s.introspect(c.id, c.secret, tok); got.status != http.StatusOK || got.body["active"] != false || len(got.body) != 1 {
				t.Fatalf("%s before being named: %d %v, want {\"active\": false}", c.id, got.status, got.body)
			}
		}
		// Named on the other replica: this one honours it at once.
		if _, err := other.app.apis.Update(ctx, listens, apis.Update{Introspectors: &[]string{"listens-server"}}); err != nil {
			t.Fatal(err)
		}
		got := s.introspect("listens-server", rsSecret, tok)
		if got.body["active"] != true || got.body["client_id"] != "app" || !slices.Contains(asStrings(got.body["aud"]), listens) {
			t.Fatalf("the API's resource server: %v", got.body)
		}
		if got := s.introspect("nosy", nosySecret, tok); got.body["active"] != false || len(got.body) != 1 {
			t.Fatalf("a client the API does not name: %v", got.body)
		}
		if _, err := s.app.apis.Update(ctx, listens, apis.Update{Introspectors: &[]string{"nobody-registered"}}); err == nil {
			t.Fatal("an unregistered client was accepted as an introspector")
		}
	})
}

// The console edits an API, introspectors included.
func TestConsoleEditsAPIIntrospectors(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		ctx := context.Background()
		s.admin("boss")
		const listens = "https://api.example.org/listens"
		if _, err := s.app.apis.Create(ctx, apisSpec(listens, "listens:read", "Read your listens", nil)); err != nil {
			t.Fatal(err)
		}
		s.client(clients.Spec{ID: "listens-server", GrantTypes: []string{"client_credentials"}, Scopes: []string{"profile"}})
		c := s.browser()
		s.signInPage(t, c, "boss")
		listing := get(t, c, s.issuer+"/admin/apis")
		if !strings.Contains(listing.body, "listens:read=Read your listens") {
			t.Fatalf("the edit form does not show the API scopes:\n%s", listing.body)
		}
		f := accountForm(t, listing, "/admin/apis/update")
		save := func(introspectors string) page {
			t.Helper()
			resp, err := c.PostForm(f.action, url.Values{"csrf_token": {f.values.Get("csrf_token")}, "id": {listens}, "name": {"Listens"},
				"scopes": {"listens:read=Read your listens\n"}, "claims": {""}, "introspectors": {introspectors}})
			if err != nil {
				t.Fatal(err)
			}
			return read(t, resp)
		}
		if p := save("ghost"); p.status != http.StatusBadRequest || !strings.Contains(p.body, "not a registered client") {
			t.Fatalf("an unknown introspector: %d", p.status)
		}
		if p := save("listens-server\n"); p.status != http.StatusOK || !strings.Contains(p.body, "The API is changed.") {
			t.Fatalf("saving: %d\n%s", p.status, p.body)
		}
		api, err := s.app.apis.Get(ctx, listens)
		if err != nil || api.Name != "Listens" || strings.Join(api.Introspectors, ",") != "listens-server" || len(api.Scopes) != 1 || api.Scopes[0].Description != "Read your listens" {
			t.Fatalf("after the console edit: %+v, %v", api, err)
		}
	})
}

// createUser shares /signup's per-address budget (each attempt costs a
// hash and says whether a name or email is taken): ten, then 429, on
// either path; invalid input is refused before it counts; an admin is not
// counted. Verification mails are one budget per person, page and API
// together.
func TestSignupAndVerificationLimitsAreShared(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		mailer := newCaptureMailer()
		s := startE2E(t, dbURL, options{mailer: mailer})
		s.admin("root")
		adminTok := s.userToken("root", "admin")
		s.user("taken")
		setEmail(t, s, s.user("owner").ID, "owner@example.org")
		for i := 0; i < 3; i++ {
			s.want(s.call(nil, http.MethodPost, "/api/User/createUser", "", map[string]any{"username": "", "password": "x"}), http.StatusBadRequest)
		}
		for i := 0; i < 5; i++ {
			s.want(s.call(nil, http.MethodPost, "/api/User/createUser", "", map[string]any{"username": fmt.Sprintf("api-%d", i), "password": e2ePassword}), http.StatusOK)
		}
		for i := 0; i < 4; i++ {
			c := s.browser()
			p := get(t, c, s.issuer+"/signup")
			if got := submit(t, c, parseForm(t, p.body, p.url), map[string]string{"username": fmt.Sprintf("page-%d", i), "password": e2ePassword}); got.status >= 400 {
				t.Fatalf("sign-up page %d: %d", i, got.status)
			}
		}
		// The tenth asks whether an email is registered: answered, counted.
		s.want(s.call(nil, http.MethodPost, "/api/User/createUser", "", map[string]any{"username": "probe", "password": e2ePassword, "email": "owner@example.org"}), http.StatusConflict)
		limited := s.want(s.call(nil, http.MethodPost, "/api/User/createUser", "", map[string]any{"username": "probe-2", "password": e2ePassword, "email": "owner@example.org"}), http.StatusTooManyRequests)
		if !strings.Contains(limited.errMsg(), "sign-ups") {
			t.Fatalf("429 message = %q", limited.errMsg())
		}
		c := s.browser()
		p := get(t, c, s.issuer+"/signup")
		if got := submit(t, c, parseForm(t, p.body, p.url), map[string]string{"username": "page-late", "password": e2ePassword}); got.status != http.StatusTooManyRequests {
			t.Fatalf("the sign-up page after the API used the budget: %d", got.status)
		}
		s.want(s.call(nil, http.MethodPost, "/api/User/createUser", adminTok, map[string]any{"username": "by-admin", "password": e2ePassword}), http.StatusOK)

		// Verification mails: page and API draw on one budget of three.
		browser := s.browser()
		s.signInPage(t, browser, "owner")
		s.want(s.call(browser, http.MethodPost, "/api/me/email/verify", "", nil), http.StatusOK)
		s.want(s.call(browser, http.MethodPost, "/api/me/email/verify", "", nil), http.StatusOK)
		if got := submit(t, browser, accountForm(t, get(t, browser, s.issuer+"/account"), "/account/email/verify"), nil); got.status != http.StatusOK {
			t.Fatalf("the page's resend: %d", got.status)
		}
		s.want(s.call(browser, http.MethodPost, "/api/me/email/verify", "", nil), http.StatusTooManyRequests)
		if got := submit(t, browser, accountForm(t, get(t, browser, s.issuer+"/account"), "/account/email/verify"), nil); got.status != http.StatusTooManyRequests {
			t.Fatalf("the page's resend past the budget: %d", got.status)
		}
	})
}
