package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

func idClaims(t *testing.T, idToken string) map[string]any {
	t.Helper()
	parts := strings.Split(idToken, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// Signing out of an app ends the tonearm session, even when the app's
// server calls the end-session endpoint without the browser's cookie (as
// oauth2-proxy's --backend-logout-url does).
func TestLogoutByIDTokenHintWithoutCookie(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("nina")
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
		r := s.rp("web", secret)
		browser := s.browser()
		first := s.codeFlow(r, browser, "nina")
		second := s.codeFlow(r, browser, "") // same browser session
		sid := idClaims(t, first.Extra("id_token").(string))["sid"]
		if sid == nil || sid == "" || idClaims(t, second.Extra("id_token").(string))["sid"] != sid {
			t.Fatalf("sid = %v, then %v; want one per browser session", sid, idClaims(t, second.Extra("id_token").(string))["sid"])
		}
		otherBrowser := s.browser()
		other := s.codeFlow(r, otherBrowser, "nina")
		if idClaims(t, other.Extra("id_token").(string))["sid"] == sid {
			t.Fatal("two browser sessions share a sid")
		}
		issuer, _ := url.Parse(s.issuer)
		for _, c := range browser.Jar.Cookies(issuer) {
			if strings.Contains(c.Value, sid.(string)) {
				t.Fatal("the sid is derived from the session cookie")
			}
		}
		signedIn := func(c *http.Client) bool {
			p := get(t, c, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "none")))
			return p.location != nil && p.location.Query().Get("code") != ""
		}

		// A forged hint ends nothing.
		hint := first.Extra("id_token").(string)
		forged := hint[:len(hint)-4] + "AAAA"
		resp, err := http.Get(s.issuer + provider.LogoutPath + "?" + url.Values{"id_token_hint": {forged}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !signedIn(browser) {
			t.Fatalf("forged hint: %d, still signed in %v", resp.StatusCode, signedIn(browser))
		}

		// The app's server, no cookie: the session ends.
		resp, err = http.Get(s.issuer + provider.LogoutPath + "?" + url.Values{"id_token_hint": {hint}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("backend logout = %d", resp.StatusCode)
		}
		if signedIn(browser) {
			t.Fatal("the browser is still signed in after the app signed out")
		}
		if !signedIn(otherBrowser) {
			t.Fatal("the hint's sid ended another browser's session too")
		}
		p := get(t, browser, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("the next sign-in does not ask for the password: %d %v", p.status, p.location)
		}
		// A hint for an ended session ends nothing more and still answers.
		resp, err = http.Get(s.issuer + provider.LogoutPath + "?" + url.Values{"id_token_hint": {hint}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("second backend logout = %d", resp.StatusCode)
		}
	})
}

// RFC 9207: iss in every authorization response; PKCE (S256) from every
// client but a legacy one registered --allow-no-pkce, refused before the
// login page.
func TestAuthorizationResponseIssAndPKCE(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("omar")
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
		s.client(clients.Spec{ID: "legacy", FirstParty: true, AllowNoPKCE: true})
		r := s.rp("web", secret)
		browser := s.browser()
		loc := s.authorize(browser, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "omar", false)
		if loc.Query().Get("iss") != s.issuer || loc.Query().Get("code") == "" {
			t.Fatalf("success response = %v, want code and iss", loc)
		}
		p := get(t, s.browser(), r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "none")))
		if p.location == nil || p.location.Query().Get("error") != "login_required" || p.location.Query().Get("iss") != s.issuer {
			t.Fatalf("error response = %v, want login_required with iss", p.location)
		}

		authURL := func(client string, extra url.Values) string {
			q := url.Values{"client_id": {client}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"openid"}, "state": {"state-12345678"}}
			for k, v := range extra {
				q[k] = v
			}
			return s.issuer + provider.AuthorizePath + "?" + q.Encode()
		}
		verifier := oauth2.GenerateVerifier()
		for name, extra := range map[string]url.Values{
			"no PKCE":      {},
			"plain":        {"code_challenge": {verifier}, "code_challenge_method": {"plain"}},
			"no method":    {"code_challenge": {verifier}},
			"other method": {"code_challenge": {verifier}, "code_challenge_method": {"S512"}},
		} {
			p := get(t, s.browser(), authURL("web", extra))
			if p.location == nil || p.location.Query().Get("error") != "invalid_request" || p.location.Query().Get("iss") != s.issuer {
				t.Errorf("%s: %d %v, want invalid_request before any page", name, p.status, p.location)
			}
		}
		if p := get(t, s.browser(), authURL("legacy", url.Values{})); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("a legacy client without PKCE: %d %v", p.status, p.location)
		}
		if _, _, err := s.app.clients.Create(context.Background(), clients.Spec{ID: "spa", Public: true, AllowNoPKCE: true, RedirectURIs: []string{redirectURI}}); err == nil {
			t.Fatal("a public client was allowed to skip PKCE")
		}
		disco := s.want(s.call(nil, http.MethodGet, provider.DiscoveryPath, "", nil), http.StatusOK)
		if disco.body["authorization_response_iss_parameter_supported"] != true {
			t.Fatalf("discovery = %s", disco.raw)
		}
	})
}

// TONEARM_REFRESH_GRACE: a refresh token presented again within the grace
// period of its rotation is answered like the first use (a client that lost
// the answer), concurrent uses included; after it, reuse revokes the family.
func TestRefreshGrace(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		clock := &offsetClock{}
		s := startE2EConfig(t, dbURL, options{now: clock.now}, func(c *config.Config) { c.RefreshGrace = 30 * time.Second })
		s.user("gina")
		_, secret := s.client(clients.Spec{ID: "app", FirstParty: true})
		r := s.rp("app", secret, "offline_access")
		browser := s.browser()
		tok := s.codeFlow(r, browser, "gina")

		first := s.refresh("app", secret, tok.RefreshToken, "")
		retry := s.refresh("app", secret, tok.RefreshToken, "")
		if first.status != http.StatusOK || retry.status != http.StatusOK {
			t.Fatalf("first use %d, retry within the grace period %d %v", first.status, retry.status, retry.body)
		}
		if !s.active("app", secret, retry.body["access_token"].(string)) {
			t.Fatal("the retry's access token is not active")
		}
		// Nothing was revoked: the first answer's refresh token works too.
		if got := s.refresh("app", secret, first.body["refresh_token"].(string), ""); got.status != http.StatusOK {
			t.Fatalf("the first answer's refresh token after a grace retry = %d %v", got.status, got.body)
		}

		// Concurrent uses of a fresh token: all answered, none revokes.
		fresh := retry.body["refresh_token"].(string)
		const n = 6
		replies := make([]tokenReply, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) { defer wg.Done(); <-start; replies[i] = s.refresh("app", secret, fresh, "") }(i)
		}
		close(start)
		wg.Wait()
		for i, rep := range replies {
			if rep.status != http.StatusOK {
				t.Fatalf("concurrent use %d within the grace period = %d %v", i, rep.status, rep.body)
			}
		}

		// After the grace period, reuse is reuse: the family is revoked.
		clock.advance(31 * time.Second)
		if got := s.refresh("app", secret, tok.RefreshToken, ""); got.errorCode() != "invalid_grant" {
			t.Fatalf("reuse after the grace period = %d %v", got.status, got.body)
		}
		if got := s.refresh("app", secret, replies[0].body["refresh_token"].(string), ""); got.status == http.StatusOK {
			t.Fatal("the family survived a reuse after the grace period")
		}
	})
}
