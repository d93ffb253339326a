package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

func jwtAlg(t *testing.T, token string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Alg
}

// A client registered --id-token-alg ES256 gets ES256 ID tokens (code
// exchange and refresh), verified by go-oidc against the JWKS; others keep
// RS256; discovery lists both; an ES256 ID token is a logout hint too.
func TestES256IDTokens(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("ellie")
		_, esSecret := s.client(clients.Spec{ID: "fast", FirstParty: true, IDTokenAlg: "ES256"})
		_, rsSecret := s.client(clients.Spec{ID: "classic", FirstParty: true})
		if _, _, err := s.app.clients.Create(t.Context(), clients.Spec{ID: "odd", RedirectURIs: []string{redirectURI}, IDTokenAlg: "HS256"}); err == nil {
			t.Fatal("HS256 was accepted as an ID-token algorithm")
		}
		disco := s.want(s.call(nil, http.MethodGet, provider.DiscoveryPath, "", nil), http.StatusOK)
		if !strings.Contains(disco.raw, `"id_token_signing_alg_values_supported":["RS256","ES256"]`) {
			t.Fatalf("discovery: %s", disco.raw)
		}
		browser := s.browser()
		fast := s.rp("fast", esSecret, "offline_access")
		tok := s.codeFlow(fast, browser, "ellie")
		idt := tok.Extra("id_token").(string)
		if jwtAlg(t, idt) != "ES256" {
			t.Fatalf("the ES256 client's ID token is %s", jwtAlg(t, idt))
		}
		if _, err := fast.verifier.Verify(fast.ctx, idt); err != nil {
			t.Fatalf("go-oidc refuses the ES256 ID token: %v", err)
		}
		refreshed := s.refresh("fast", esSecret, tok.RefreshToken, "")
		if refreshed.status != http.StatusOK || jwtAlg(t, refreshed.body["id_token"].(string)) != "ES256" {
			t.Fatalf("refresh: %d %v", refreshed.status, refreshed.body)
		}
		classic := s.codeFlow(s.rp("classic", rsSecret), browser, "")
		if jwtAlg(t, classic.Extra("id_token").(string)) != "RS256" {
			t.Fatal("the default client's ID token is not RS256")
		}
		// An ES256 ID token ends its session like any ID token.
		p := get(t, http.DefaultClient, s.issuer+provider.LogoutPath+"?"+url.Values{"id_token_hint": {idt}}.Encode())
		if p.status != http.StatusOK {
			t.Fatalf("logout with an ES256 hint: %d", p.status)
		}
		if again := get(t, browser, fast.conf.AuthCodeURL("s", oauth2S256(t))); !strings.Contains(again.body, `name="password"`) {
			t.Fatalf("still signed in after logout: %d %v", again.status, again.location)
		}
	})
}

func oauth2S256(t *testing.T) oauth2.AuthCodeOption {
	return oauth2.S256ChallengeOption(oauth2.GenerateVerifier())
}
