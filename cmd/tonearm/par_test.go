package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

// push sends an authorization request to the PAR endpoint as clientID.
func (s *server) push(t *testing.T, clientID, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	return s.formPost(t, provider.PARPath, form, func(r *http.Request) {
		if secret != "" {
			r.SetBasicAuth(clientID, secret)
		}
	})
}

func parForm(verifier string) url.Values {
	return url.Values{
		"client_id": {"pushy"}, "response_type": {"code"}, "redirect_uri": {redirectURI}, "scope": {"openid profile"},
		"state": {"state-of-the-art"}, "nonce": {"nonce-of-the-art"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
}

// Pushed authorization requests (RFC 9126): a client registered
// --require-par must push; the request_uri works for one interaction
// (login and consent post it back) and not after, and not past a minute
// unopened; bad pushes are refused before anyone signs in.
func TestPushedAuthorizationRequests(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		clock := &offsetClock{}
		s := startE2E(t, dbURL, options{now: clock.now})
		_, secret := s.client(clients.Spec{ID: "pushy", RequirePAR: true, Scopes: []string{"openid", "profile"}})
		u := s.user("pusher")

		// Discovery advertises the endpoint.
		if p := get(t, http.DefaultClient, s.issuer+provider.DiscoveryPath); !strings.Contains(p.body, `"pushed_authorization_request_endpoint":"`+s.issuer+provider.PARPath+`"`) {
			t.Fatalf("discovery: %s", p.body)
		}

		// Sent straight to the authorization endpoint: refused.
		verifier := oauth2.GenerateVerifier()
		direct := s.issuer + provider.AuthorizePath + "?" + parForm(verifier).Encode()
		if p := get(t, s.browser(), direct); p.location == nil || p.location.Query().Get("error") != "invalid_request" || p.location.Query().Get("code") != "" {
			t.Fatalf("direct request of a PAR-only client: %d %v", p.status, p.location)
		}

		// Bad pushes.
		for name, c := range map[string]struct {
			secret string
			change url.Values
			status int
		}{
			"no client authentication": {"", nil, http.StatusUnauthorized},
			"wrong secret":             {"not-the-secret-at-all-not-at-all", nil, http.StatusUnauthorized},
			"unregistered redirect":    {secret, url.Values{"redirect_uri": {"https://evil.example/cb"}}, http.StatusBadRequest},
			"no PKCE":                  {secret, url.Values{"code_challenge": {""}}, http.StatusBadRequest},
			"plain PKCE":               {secret, url.Values{"code_challenge_method": {"plain"}}, http.StatusBadRequest},
			"scope not allowed":        {secret, url.Values{"scope": {"openid email"}}, http.StatusBadRequest},
			"request_uri inside":       {secret, url.Values{"request_uri": {provider.PARRequestURIPrefix + "x"}}, http.StatusBadRequest},
		} {
			form := parForm(verifier)
			for k, v := range c.change {
				if v[0] == "" {
					form.Del(k)
				} else {
					form[k] = v
				}
			}
			status, body := s.push(t, "pushy", c.secret, form)
			if status != c.status || body["request_uri"] != nil {
				t.Errorf("%s: %d %v, want %d", name, status, body, c.status)
			}
		}

		// A good push; the browser brings only client_id and request_uri.
		status, body := s.push(t, "pushy", secret, parForm(verifier))
		uri, _ := body["request_uri"].(string)
		if status != http.StatusCreated || !strings.HasPrefix(uri, provider.PARRequestURIPrefix) || body["expires_in"] != float64(60) {
			t.Fatalf("push: %d %v", status, body)
		}
		auth := s.issuer + provider.AuthorizePath + "?" + url.Values{"client_id": {"pushy"}, "request_uri": {uri}}.Encode()
		browser := s.browser()
		back := s.authorize(browser, auth, u.Username, true)
		q := back.Query()
		if q.Get("code") == "" || q.Get("state") != "state-of-the-art" || q.Get("iss") != s.issuer {
			t.Fatalf("redirect after a pushed request: %v", back)
		}
		r := s.rp("pushy", secret, "profile")
		tok, err := r.conf.Exchange(r.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("code exchange: %v", err)
		}
		idToken, _ := tok.Extra("id_token").(string)
		if c := idClaims(t, idToken); c["nonce"] != "nonce-of-the-art" || c["preferred_username"] != "pusher" {
			t.Fatalf("ID token claims = %v", c)
		}

		// The request_uri is spent: no second code from it, even in the
		// browser that used it.
		if p := get(t, browser, auth); p.location != nil && p.location.Query().Get("code") != "" {
			t.Fatal("a spent request_uri gave another code")
		}

		// Unopened for over a minute: expired.
		status, body = s.push(t, "pushy", secret, parForm(verifier))
		late, _ := body["request_uri"].(string)
		if status != http.StatusCreated {
			t.Fatalf("push: %d %v", status, body)
		}
		clock.advance(61 * time.Second)
		p := get(t, s.browser(), s.issuer+provider.AuthorizePath+"?"+url.Values{"client_id": {"pushy"}, "request_uri": {late}}.Encode())
		if strings.Contains(p.body, `name="password"`) || (p.location != nil && p.location.Query().Get("code") != "") {
			t.Fatalf("an expired request_uri was accepted: %d %v", p.status, p.location)
		}
	})
}
