package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
)

// verifyAccessToken checks an access token the way a resource server does:
// offline, against the published JWKS only.
func verifyAccessToken(t *testing.T, issuer, token string) map[string]any {
	t.Helper()
	resp, err := http.Get(issuer + provider.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	obj, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		t.Fatalf("access token is not a JWS: %v", err)
	}
	h := obj.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "at+jwt" {
		t.Fatalf("access token typ = %q, want at+jwt", typ)
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("access token kid %q is not in the JWKS", h.KeyID)
	}
	payload, err := obj.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("access token does not verify against the JWKS: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"iss", "sub", "client_id", "aud", "scope", "exp", "iat", "jti"} {
		if _, ok := claims[c]; !ok {
			t.Fatalf("access token lacks %q: %v", c, claims)
		}
	}
	if claims["iss"] != issuer {
		t.Fatalf("access token iss = %v, want %s", claims["iss"], issuer)
	}
	return claims
}

func TestDiscoveryAndJWKS(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	resp, err := http.Get(s.issuer + provider.DiscoveryPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if resp.Header.Get("Cache-Control") == "" || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age") {
		t.Fatalf("discovery Cache-Control = %q", resp.Header.Get("Cache-Control"))
	}
	if doc["issuer"] != s.issuer || doc["token_endpoint"] != s.issuer+provider.TokenPath || doc["jwks_uri"] != s.issuer+provider.JWKSPath {
		t.Fatalf("discovery = %v", doc)
	}
	has := func(field, value string) bool {
		for _, v := range doc[field].([]any) {
			if v == value {
				return true
			}
		}
		return false
	}
	for field, values := range map[string][]string{
		"response_types_supported":              {"code"},
		"grant_types_supported":                 {"authorization_code", "refresh_token", "client_credentials"},
		"scopes_supported":                      {"openid", "profile", "email", "listenbrainz", "offline_access"},
		"code_challenge_methods_supported":      {"S256"},
		"token_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post", "none"},
		"id_token_signing_alg_values_supported": {"RS256"},
		"claims_supported":                      {"sub", "preferred_username", "listenbrainz_name", "listenbrainz_token", "auth_time", "nonce"},
	} {
		for _, v := range values {
			if !has(field, v) {
				t.Errorf("discovery %s lacks %q", field, v)
			}
		}
	}
	if has("code_challenge_methods_supported", "plain") {
		t.Error("plain PKCE advertised")
	}

	resp, err = http.Get(s.issuer + provider.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if etag == "" || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age") {
		t.Fatalf("JWKS headers: ETag %q, Cache-Control %q", etag, resp.Header.Get("Cache-Control"))
	}
	var set struct{ Keys []map[string]any }
	json.Unmarshal(body, &set)
	algs := map[string]bool{}
	for _, k := range set.Keys {
		if k["kid"] == nil || k["use"] != "sig" || k["d"] != nil {
			t.Fatalf("JWKS key %v: want kid, use=sig and no private part", k)
		}
		algs[k["alg"].(string)] = true
	}
	if !algs["RS256"] || !algs["ES256"] {
		t.Fatalf("JWKS algorithms %v, want RS256 and ES256", algs)
	}
	req, _ := http.NewRequest(http.MethodGet, s.issuer+provider.JWKSPath, nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional JWKS GET = %v, %v; want 304", resp.StatusCode, err)
	}
	resp.Body.Close()
}

func TestAuthorizationCodeFlow(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		u := s.user("alice")
		if _, err := s.app.accounts.AssociateToken(context.Background(), u.ID, lbToken); err != nil {
			t.Fatal(err)
		}
		_, secret := s.client(clients.Spec{ID: "web"})
		r := s.rp("web", secret, "profile", "listenbrainz", "offline_access")
		browser := s.browser()
		state, nonce, verifier := random(t), random(t), oauth2.GenerateVerifier()
		authURL := r.conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))

		back := s.authorize(browser, authURL, "alice", true)
		if back.Query().Get("state") != state || back.Query().Get("code") == "" {
			t.Fatalf("redirect back = %v", back)
		}
		tok, err := r.conf.Exchange(r.ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("code exchange: %v", err)
		}
		rawID, _ := tok.Extra("id_token").(string)
		idt, err := r.verifier.Verify(r.ctx, rawID)
		if err != nil {
			t.Fatalf("ID token does not verify with go-oidc: %v", err)
		}
		if idt.Nonce != nonce || idt.Subject != u.ID {
			t.Fatalf("ID token nonce %q sub %q", idt.Nonce, idt.Subject)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Fatalf("at_hash: %v", err)
		}
		var claims map[string]any
		idt.Claims(&claims)
		for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash"} {
			if _, ok := claims[c]; !ok {
				t.Errorf("ID token lacks %s: %v", c, claims)
			}
		}
		if claims["preferred_username"] != "alice" || claims["listenbrainz_name"] != "rob_listens" {
			t.Fatalf("ID token claims = %v", claims)
		}
		if _, ok := claims["listenbrainz_token"]; ok {
			t.Fatal("listenbrainz_token in the ID token")
		}
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token although offline_access was asked and allowed")
		}

		at := verifyAccessToken(t, s.issuer, tok.AccessToken)
		if at["sub"] != u.ID || at["client_id"] != "web" || !strings.Contains(at["scope"].(string), "listenbrainz") {
			t.Fatalf("access token claims = %v", at)
		}

		info, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		var ic map[string]any
		info.Claims(&ic)
		if ic["sub"] != u.ID || ic["listenbrainz_name"] != "rob_listens" || ic["listenbrainz_token"] != lbToken || ic["preferred_username"] != "alice" {
			t.Fatalf("userinfo = %v", ic)
		}

		// Refresh: new tokens for the same user.
		expired := &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}
		fresh, err := r.conf.TokenSource(r.ctx, expired).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken {
			t.Fatal("refresh did not rotate the tokens")
		}
		if c := verifyAccessToken(t, s.issuer, fresh.AccessToken); c["sub"] != u.ID {
			t.Fatalf("refreshed access token sub = %v", c["sub"])
		}

		// The consent is remembered: the next authorization of the same
		// scopes needs neither login (the browser session) nor consent.
		verifier2 := oauth2.GenerateVerifier()
		back = s.authorize(browser, r.conf.AuthCodeURL(random(t), oidc.Nonce(random(t)), oauth2.S256ChallengeOption(verifier2)), "", false)
		if back.Query().Get("code") == "" {
			t.Fatalf("second authorization = %v", back)
		}
		// A wider scope asks again.
		wider := r.conf
		wider.Scopes = append(append([]string(nil), r.conf.Scopes...), "email")
		p := get(t, browser, wider.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier2)))
		if !strings.Contains(p.body, `value="consent"`) {
			t.Fatalf("a wider scope did not ask for consent: %d %v", p.status, p.location)
		}
	})
}

// A session from startSession (the User API) is the same browser session:
// the authorization needs no second login. A public, first-party client
// sees no consent page and gets no listenbrainz_token.
func TestSingleSignOnFromUserAPI(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	u := s.user("bob")
	if _, err := s.app.accounts.AssociateToken(context.Background(), u.ID, lbToken); err != nil {
		t.Fatal(err)
	}
	s.client(clients.Spec{ID: "spa", Public: true, FirstParty: true})
	browser := s.browser()
	resp, err := browser.Post(s.issuer+"/api/User/startSession", "application/json",
		strings.NewReader(`{"username":"bob","password":"`+e2ePassword+`"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("startSession: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	r := s.rp("spa", "", "profile", "listenbrainz")
	verifier := oauth2.GenerateVerifier()
	back := s.authorize(browser, r.conf.AuthCodeURL("state-123", oauth2.S256ChallengeOption(verifier)), "", false)
	tok, err := r.conf.Exchange(r.ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("public client exchange: %v", err)
	}
	if tok.RefreshToken != "" {
		t.Fatal("refresh token issued without offline_access")
	}
	info, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	var ic map[string]any
	info.Claims(&ic)
	if ic["listenbrainz_name"] != "rob_listens" {
		t.Fatalf("userinfo = %v", ic)
	}
	if _, ok := ic["listenbrainz_token"]; ok {
		t.Fatal("listenbrainz_token released to a public client")
	}
}

func TestAuthorizationRefusals(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("carol")
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
		s.client(clients.Spec{ID: "spa", Public: true, FirstParty: true})
		r := s.rp("web", secret, "profile")

		// Unknown client and unregistered redirect_uri: an error page, never
		// a redirect.
		for name, q := range map[string]url.Values{
			"unknown client":   {"client_id": {"nope"}, "response_type": {"code"}, "redirect_uri": {redirectURI}, "scope": {"openid"}, "state": {"abcdefgh"}},
			"foreign redirect": {"client_id": {"web"}, "response_type": {"code"}, "redirect_uri": {"https://evil.example/cb"}, "scope": {"openid"}, "state": {"abcdefgh"}},
		} {
			p := get(t, s.browser(), s.issuer+provider.AuthorizePath+"?"+q.Encode())
			if p.status != http.StatusBadRequest || p.location != nil || !strings.Contains(p.body, "<html") {
				t.Errorf("%s: got %d, Location %v; want a 400 error page without redirect", name, p.status, p.location)
			}
		}

		// Public client without PKCE: invalid_request back to the client.
		spa := s.rp("spa", "")
		p := get(t, s.browser(), spa.conf.AuthCodeURL("state-abc1"))
		if p.location == nil || p.location.Query().Get("error") != "invalid_request" || p.location.Query().Get("state") != "state-abc1" {
			t.Fatalf("public client without PKCE: %d %v", p.status, p.location)
		}

		// Wrong password: the login page again, with an error that does not
		// say which part was wrong; no redirect.
		browser := s.browser()
		verifier := oauth2.GenerateVerifier()
		authURL := r.conf.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(verifier))
		p = get(t, browser, authURL)
		f := parseForm(t, p.body, p.url)
		p = submit(t, browser, f, map[string]string{"username": "carol", "password": "wrong-password"})
		if p.status != http.StatusUnauthorized || p.location != nil || !strings.Contains(p.body, "Invalid username or password") {
			t.Fatalf("wrong password: %d %v", p.status, p.location)
		}
		p = submit(t, browser, f, map[string]string{"username": "nobody", "password": "wrong-password"})
		if !strings.Contains(p.body, "Invalid username or password") {
			t.Fatal("unknown user answered differently from a wrong password")
		}
		// A form posted without its CSRF token is refused.
		p = submit(t, browser, f, map[string]string{"username": "carol", "password": e2ePassword, "csrf_token": "forged"})
		if p.status != http.StatusForbidden || p.location != nil {
			t.Fatalf("forged CSRF token: %d %v", p.status, p.location)
		}

		// Get a code, then misuse it.
		code := s.authorize(browser, authURL, "carol", false).Query().Get("code")
		if _, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("wrong code_verifier: %v", err)
		}
		bad := r.conf
		bad.ClientSecret = "not-the-secret-not-the-secret-not-the"
		if _, err := bad.Exchange(r.ctx, code, oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_client") || statusOf(err) != http.StatusUnauthorized {
			t.Fatalf("wrong client secret: %v", err)
		}

		// A fresh code, exchanged twice: the second is invalid_grant and
		// revokes the tokens of the first.
		verifier = oauth2.GenerateVerifier()
		code = s.authorize(browser, r.conf.AuthCodeURL("state-0002", oauth2.S256ChallengeOption(verifier)), "", false).Query().Get("code")
		tok, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok)); err != nil {
			t.Fatalf("userinfo before reuse: %v", err)
		}
		if _, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("reused code: %v", err)
		}
		if _, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Fatal("the access token of a reused code still works")
		}
	})
}

func TestExpiredCode(t *testing.T) {
	t.Parallel()
	clock := &offsetClock{}
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{now: clock.now})
	s.app.provider.WithClock(clock.now)
	s.user("dave")
	_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
	r := s.rp("web", secret)
	verifier := oauth2.GenerateVerifier()
	code := s.authorize(s.browser(), r.conf.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(verifier)), "dave", false).Query().Get("code")
	// The server's clock moved past the code's lifetime, not a real wait.
	clock.advance(provider.DefaultLifespans.AuthorizeCode + time.Second)
	if _, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("expired code: %v", err)
	}
}

func TestConsentDenied(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.user("erin")
	_, secret := s.client(clients.Spec{ID: "third-party"})
	r := s.rp("third-party", secret, "profile")
	browser := s.browser()
	p := get(t, browser, r.conf.AuthCodeURL("state-xyz1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	p = submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"username": "erin", "password": e2ePassword})
	if !strings.Contains(p.body, "third-party") || !strings.Contains(p.body, `value="consent"`) {
		t.Fatalf("no consent page: %d", p.status)
	}
	p = submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"decision": "deny"})
	if p.location == nil || p.location.Query().Get("error") != "access_denied" || p.location.Query().Get("state") != "state-xyz1" {
		t.Fatalf("denied consent: %d %v", p.status, p.location)
	}
}

// Two replicas on one database publish the same keys and accept each
// other's codes and tokens.
func TestReplicasShareKeysAndCodes(t *testing.T) {
	a := startE2E(t, pgtest.URL(t), options{})
	b := a.second()
	ja, _ := a.app.provider.JWKS()
	jb, _ := b.app.provider.JWKS()
	if string(ja) != string(jb) {
		t.Fatal("replicas publish different JWKS")
	}
	a.user("frank")
	_, secret := a.client(clients.Spec{ID: "web", FirstParty: true})
	r := a.rp("web", secret)
	verifier := oauth2.GenerateVerifier()
	code := a.authorize(a.browser(), r.conf.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(verifier)), "frank", false).Query().Get("code")
	atB := r.conf
	atB.Endpoint.TokenURL = b.srv.URL + provider.TokenPath
	tok, err := atB.Exchange(r.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("replica B refused replica A's code: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, a.srv.URL+provider.UserinfoPath, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("replica A refused replica B's token: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
}

// After a key rotation the old access token still verifies offline and at
// userinfo, and new tokens use the new key.
func TestKeyRotationKeepsTokensValid(t *testing.T) {
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.user("gina")
	_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
	r := s.rp("web", secret)
	verifier := oauth2.GenerateVerifier()
	code := s.authorize(s.browser(), r.conf.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(verifier)), "gina", false).Query().Get("code")
	old, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.keys.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	verifyAccessToken(t, s.issuer, old.AccessToken)
	if _, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(old)); err != nil {
		t.Fatalf("userinfo with a token signed by the rotated-out key: %v", err)
	}
	rawID, _ := old.Extra("id_token").(string)
	if _, err := s.rp("web", secret).verifier.Verify(context.Background(), rawID); err != nil {
		t.Fatalf("old ID token after rotation: %v", err)
	}
}

func TestUserinfoRefusals(t *testing.T) {
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	for name, auth := range map[string]string{"none": "", "garbage": "Bearer not.a.token", "forged": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."} {
		req, _ := http.NewRequest(http.MethodGet, s.issuer+provider.UserinfoPath, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %d %q, want 401 with WWW-Authenticate: Bearer", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
}

func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	if !asRetrieveError(err, &re) {
		return false
	}
	return re.ErrorCode == code
}

func statusOf(err error) int {
	var re *oauth2.RetrieveError
	if !asRetrieveError(err, &re) {
		return 0
	}
	return re.Response.StatusCode
}

func asRetrieveError(err error, target **oauth2.RetrieveError) bool {
	if err == nil {
		return false
	}
	re, ok := err.(*oauth2.RetrieveError)
	if ok {
		*target = re
	}
	return ok
}

// prompt=login shows the login form even to a signed-in browser, and the
// consent that follows does not loop back to it.
func TestPromptLoginThenConsent(t *testing.T) {
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	u := s.user("hank")
	_, secret := s.client(clients.Spec{ID: "third-party"})
	r := s.rp("third-party", secret, "profile")
	browser := s.browser()
	verifier := oauth2.GenerateVerifier()
	s.authorize(browser, r.conf.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(verifier)), "hank", true)
	before := time.Now().Add(-time.Second)
	verifier = oauth2.GenerateVerifier()
	authURL := r.conf.AuthCodeURL("state-0002", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "login"),
		oauth2.SetAuthURLParam("scope", "openid profile email"))
	back := s.authorize(browser, authURL, "hank", true)
	tok, err := r.conf.Exchange(r.ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := r.verifier.Verify(r.ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AuthTime int64 `json:"auth_time"`
	}
	idt.Claims(&c)
	if idt.Subject != u.ID || time.Unix(c.AuthTime, 0).Before(before.Truncate(time.Second)) {
		t.Fatalf("auth_time %v is older than the forced login at %v", time.Unix(c.AuthTime, 0), before)
	}
}

// The User API accepts a bearer access token whose subject is the user and
// that was granted the account scope; a token granted only openid is for
// userinfo, not for tonearm's API.
func TestUserAPIWithBearerToken(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	u := s.user("ivy")
	other := s.user("jack")
	_, secret := s.client(clients.Spec{ID: "web", FirstParty: true, Scopes: []string{"openid", "account"}})
	token := func(scopes ...string) string {
		r := s.rp("web", secret, scopes...)
		verifier := oauth2.GenerateVerifier()
		code := s.authorize(s.browser(), r.conf.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(verifier)), "ivy", false).Query().Get("code")
		tok, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	call := func(bearer, user string) int {
		req, _ := http.NewRequest(http.MethodPost, s.issuer+"/api/User/associateToken",
			strings.NewReader(`{"user":"`+user+`","scrobbleToken":"`+lbToken+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	openidOnly, account := token(), token("account")
	if st := call(openidOnly, u.ID); st != http.StatusForbidden {
		t.Fatalf("own account with an openid-only token = %d, want 403", st)
	}
	if st := call(account, u.ID); st != http.StatusOK {
		t.Fatalf("own account with an account token = %d", st)
	}
	if st := call(account, other.ID); st != http.StatusForbidden {
		t.Fatalf("another account with a bearer token = %d, want 403", st)
	}
	if st := call(account+"x", u.ID); st != http.StatusUnauthorized {
		t.Fatalf("tampered bearer token = %d, want 401", st)
	}
}

// A single-page app on another origin can exchange its code and call
// userinfo (CORS without credentials); the token endpoint never reads
// cookies, so this opens nothing.
func TestCORSForBrowserApps(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	for _, path := range []string{provider.TokenPath, provider.UserinfoPath, provider.RevokePath} {
		req, _ := http.NewRequest(http.MethodOptions, s.issuer+path, nil)
		req.Header.Set("Origin", "https://spa.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
			resp.Header.Get("Access-Control-Allow-Credentials") != "" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Fatalf("preflight %s = %d %v", path, resp.StatusCode, resp.Header)
		}
	}
	// The admin and account APIs stay closed to other origins.
	req, _ := http.NewRequest(http.MethodOptions, s.issuer+"/api/me", nil)
	req.Header.Set("Origin", "https://spa.example")
	req.Header.Set("Access-Control-Request-Method", "PATCH")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("the account API answers CORS preflights")
	}
}
