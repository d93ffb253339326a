package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// DPoP covers the token-exchange grant too (RFC 9449 §5, issue 34): an
// exchange that presents a proof gets a token bound to that key.
func TestI34ExchangeWithDPoP(t *testing.T) {
	ctx := context.Background()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	if _, err := s.app.apis.Create(ctx, apis.Spec{ID: xStatsAPI, Scopes: []storage.APIScope{{Name: "stats:read"}}}); err != nil {
		t.Fatal(err)
	}
	_, playerSecret := s.client(clients.Spec{ID: "player", FirstParty: true, Scopes: []string{"openid", "stats:read"}})
	_, backendSecret := s.client(clients.Spec{ID: "backend", GrantTypes: []string{"client_credentials"}, Scopes: []string{"stats:read"}})
	rs, from := []string{"backend"}, []string{"backend"}
	if _, err := s.app.apis.Update(ctx, xStatsAPI, apis.Update{Introspectors: &rs, ExchangeFrom: &from}); err != nil {
		t.Fatal(err)
	}
	s.user("rita")
	b := s.browser()
	s.signInPage(t, b, "rita")
	r := s.rp("player", playerSecret, "stats:read")
	v := oauth2.GenerateVerifier()
	back := get(t, b, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(v)))
	if back.location == nil || back.location.Query().Get("code") == "" {
		t.Fatalf("sign-in: %d %v\n%s", back.status, back.location, back.body)
	}
	tok, err := r.conf.Exchange(r.ctx, back.location.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	key := newDPoPKey(t)
	form := url.Values{"grant_type": {provider.TokenExchangeGrant}, "subject_token": {tok.AccessToken},
		"subject_token_type": {provider.AccessTokenType}, "resource": {xStatsAPI}}
	got := dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, form, "backend", backendSecret, "",
		proofFor(t, key, http.MethodPost, s.issuer+provider.TokenPath, ""))
	if got.status != http.StatusOK || !strings.EqualFold(got.str("token_type"), "DPoP") || tokenCnf(t, got.str("access_token")) != jktOf(t, key) {
		t.Fatalf("exchange with a proof: %d %v (cnf %q, want %q)", got.status, got.body, tokenCnf(t, got.str("access_token")), jktOf(t, key))
	}
}

// Found from outside (issue 34): a bound token that lacks the scope of one
// of tonearm's APIs, stolen and sent as Bearer to /api/me, is refused for
// its missing key first (401 DPoP invalid_token), not for its scope (403).
func TestI34BindingBeforeScope(t *testing.T) {
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.user("ivy")
	s.client(clients.Spec{ID: "spa", Public: true, FirstParty: true, Scopes: []string{"openid", "account", "offline_access"},
		GrantTypes: []string{"authorization_code", "refresh_token"}})
	key := newDPoPKey(t)
	code, verifier := dpopCode(s, s.browser(), "ivy", url.Values{"scope": {"openid"}})
	tok := dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {verifier}, "client_id": {"spa"}, "redirect_uri": {redirectURI}}, "", "", "",
		proofFor(t, key, http.MethodPost, s.issuer+provider.TokenPath, ""))
	if tok.status != http.StatusOK || tok.str("token_type") != "DPoP" {
		t.Fatalf("a DPoP code exchange: %d %v", tok.status, tok.body)
	}
	stolen := dpopDo(t, s.issuer, http.MethodGet, "/api/me", nil, "", "", "Bearer "+tok.str("access_token"))
	if stolen.status != http.StatusUnauthorized || !strings.HasPrefix(stolen.header.Get("WWW-Authenticate"), "DPoP") ||
		!strings.Contains(stolen.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("a bound token without the account scope, as Bearer at /api/me: %d %q", stolen.status, stolen.header.Get("WWW-Authenticate"))
	}
}
