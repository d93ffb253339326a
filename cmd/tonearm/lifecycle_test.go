package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// codeFlow signs username in (if the browser has no session) and returns
// the tokens of an authorization-code exchange.
func (s *server) codeFlow(r *rp, browser *http.Client, username string, opts ...oauth2.AuthCodeOption) *oauth2.Token {
	s.t.Helper()
	verifier := oauth2.GenerateVerifier()
	opts = append(opts, oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(s.t)))
	back := s.authorize(browser, r.conf.AuthCodeURL(random(s.t), opts...), username, false)
	tok, err := r.conf.Exchange(r.ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		s.t.Fatalf("code exchange: %v", err)
	}
	return tok
}

type tokenReply struct {
	status int
	body   map[string]any
}

func (t tokenReply) errorCode() string { s, _ := t.body["error"].(string); return s }

// post sends a form to an endpoint of this server (not the issuer: a
// second replica shares it) with HTTP Basic client authentication (none
// when clientID is empty).
func (s *server) post(path, clientID, secret string, form url.Values) tokenReply {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return tokenReply{status: resp.StatusCode, body: body}
}

func (s *server) refresh(clientID, secret, refreshToken, scope string) tokenReply {
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return s.post(provider.TokenPath, clientID, secret, f)
}

func (s *server) introspect(clientID, secret, token string) tokenReply {
	return s.post(provider.IntrospectPath, clientID, secret, url.Values{"token": {token}})
}

func (s *server) active(clientID, secret, token string) bool {
	s.t.Helper()
	r := s.introspect(clientID, secret, token)
	if r.status != http.StatusOK {
		s.t.Fatalf("introspection = %d %v", r.status, r.body)
	}
	return r.body["active"] == true
}

func TestRefreshRotationAndReuse(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("alice")
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
		r := s.rp("web", secret, "profile", "offline_access")
		first := s.codeFlow(r, s.browser(), "alice")
		idt, _ := r.verifier.Verify(r.ctx, first.Extra("id_token").(string))
		var orig struct {
			AuthTime int64 `json:"auth_time"`
		}
		idt.Claims(&orig)

		second := s.refresh("web", secret, first.RefreshToken, "")
		if second.status != http.StatusOK {
			t.Fatalf("refresh = %d %v", second.status, second.body)
		}
		r2, a2 := second.body["refresh_token"].(string), second.body["access_token"].(string)
		if r2 == "" || r2 == first.RefreshToken || second.body["scope"] != "openid profile offline_access" {
			t.Fatalf("refresh response = %v", second.body)
		}
		refreshedID, err := r.verifier.Verify(r.ctx, second.body["id_token"].(string))
		if err != nil {
			t.Fatalf("refreshed ID token: %v", err)
		}
		var again struct {
			AuthTime int64 `json:"auth_time"`
		}
		refreshedID.Claims(&again)
		if again.AuthTime != orig.AuthTime || orig.AuthTime == 0 {
			t.Fatalf("auth_time changed on refresh: %d → %d", orig.AuthTime, again.AuthTime)
		}
		if s.active("web", secret, first.AccessToken) {
			t.Fatal("the access token of a rotated refresh token is still active")
		}
		if !s.active("web", secret, a2) {
			t.Fatal("the new access token is not active")
		}

		// Reuse of the first refresh token: invalid_grant, and the whole
		// family dies, including the tokens issued by the legitimate refresh.
		reuse := s.refresh("web", secret, first.RefreshToken, "")
		if reuse.status != http.StatusBadRequest || reuse.errorCode() != "invalid_grant" {
			t.Fatalf("reused refresh token = %d %v", reuse.status, reuse.body)
		}
		if s.active("web", secret, a2) {
			t.Fatal("reuse did not revoke the family's access token")
		}
		if got := s.refresh("web", secret, r2, ""); got.errorCode() != "invalid_grant" {
			t.Fatalf("refresh token of a revoked family = %d %v", got.status, got.body)
		}
	})
}

// Concurrent refreshes with one token: exactly one wins. PostgreSQL runs
// them truly in parallel; the conditional UPDATE inside the transaction
// decides.
func TestConcurrentRefresh(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("bob")
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
		r := s.rp("web", secret, "offline_access")
		browser := s.browser()
		for round := 0; round < 3; round++ {
			tok := s.codeFlow(r, browser, map[bool]string{true: "bob"}[round == 0])
			const n = 8
			replies := make([]tokenReply, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					<-start
					replies[i] = s.refresh("web", secret, tok.RefreshToken, "")
				}(i)
			}
			close(start)
			wg.Wait()
			wins := 0
			for _, rep := range replies {
				switch {
				case rep.status == http.StatusOK:
					wins++
				case rep.errorCode() == "invalid_grant":
				default:
					t.Fatalf("round %d: a concurrent refresh got %d %v", round, rep.status, rep.body)
				}
			}
			if wins != 1 {
				t.Fatalf("round %d: %d of %d concurrent refreshes succeeded, want exactly 1", round, wins, n)
			}
		}
	})
}

// Many clients and chains at once (on SQLite their writes share batched
// commits): every token the endpoint hands out is stored — it introspects
// active (for a rotation chain, its last access token) — and every
// rotated refresh token is spent.
func TestConcurrentTokensAreStored(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("bob")
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
		_, svcSecret := s.client(clients.Spec{ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"profile"}})
		r := s.rp("web", secret, "offline_access")
		browser := s.browser()
		const chains = 12
		first := make([]string, chains)
		for i := range first {
			first[i] = s.codeFlow(r, browser, map[bool]string{true: "bob"}[i == 0]).RefreshToken
		}
		type issued struct{ client, secret, access, spent string }
		var mu sync.Mutex
		var got []issued
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range chains {
			wg.Add(2)
			go func() { // a rotation chain
				defer wg.Done()
				<-start
				rt := first[i]
				for n := range 3 {
					rep := s.refresh("web", secret, rt, "")
					if rep.status != http.StatusOK {
						t.Errorf("chain %d: refresh = %d %v", i, rep.status, rep.body)
						return
					}
					// A rotation ends the chain's earlier access
					// tokens: the last one must be live.
					access := ""
					if n == 2 {
						access = rep.body["access_token"].(string)
					}
					mu.Lock()
					got = append(got, issued{"web", secret, access, rt})
					mu.Unlock()
					rt = rep.body["refresh_token"].(string)
				}
			}()
			go func() { // a machine client
				defer wg.Done()
				<-start
				for range 3 {
					rep := s.post(provider.TokenPath, "svc", svcSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}})
					if rep.status != http.StatusOK {
						t.Errorf("client credentials = %d %v", rep.status, rep.body)
						return
					}
					mu.Lock()
					got = append(got, issued{"svc", svcSecret, rep.body["access_token"].(string), ""})
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(got) != chains*6 {
			t.Fatalf("%d tokens issued, want %d", len(got), chains*6)
		}
		for _, tok := range got {
			if tok.access != "" && !s.active(tok.client, tok.secret, tok.access) {
				t.Fatalf("an access token handed to %s is not stored", tok.client)
			}
		}
		// (Presenting a spent token revokes its chain: after the checks
		// above.)
		for _, tok := range got {
			if tok.spent != "" {
				if rep := s.refresh("web", secret, tok.spent, ""); rep.errorCode() != "invalid_grant" {
					t.Fatalf("a rotated refresh token still works: %d %v", rep.status, rep.body)
				}
			}
		}
	})
}

func TestRefreshScopes(t *testing.T) {
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.user("carol")
	_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
	r := s.rp("web", secret, "profile", "email", "offline_access")
	tok := s.codeFlow(r, s.browser(), "carol")

	wider := s.refresh("web", secret, tok.RefreshToken, "openid profile listenbrainz")
	if wider.errorCode() != "invalid_scope" {
		t.Fatalf("refresh asking for a wider scope = %d %v", wider.status, wider.body)
	}
	narrow := s.refresh("web", secret, tok.RefreshToken, "openid profile")
	if narrow.status != http.StatusOK || narrow.body["scope"] != "openid profile" {
		t.Fatalf("narrower refresh = %d %v", narrow.status, narrow.body)
	}
	at := verifyAccessToken(t, s.issuer, narrow.body["access_token"].(string))
	if at["scope"] != "openid profile" {
		t.Fatalf("narrowed access token scope = %v", at["scope"])
	}
	if in := s.introspect("web", secret, narrow.body["access_token"].(string)); in.body["scope"] != "openid profile" {
		t.Fatalf("introspection of the narrowed token: scope %v", in.body["scope"])
	}
	// The new refresh token keeps the original grant (RFC 6749 §6).
	full := s.refresh("web", secret, narrow.body["refresh_token"].(string), "")
	if full.status != http.StatusOK || full.body["scope"] != "openid profile email offline_access" {
		t.Fatalf("refresh after a narrowed one = %d %v", full.status, full.body)
	}
}

func TestClientCredentials(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		_, adminSecret := s.client(clients.Spec{ID: "ops", GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin", "profile"}})
		_, plainSecret := s.client(clients.Spec{ID: "worker", GrantTypes: []string{"client_credentials"}, Scopes: []string{"profile"}})
		_, webSecret := s.client(clients.Spec{ID: "web", FirstParty: true})
		cc := func(id, secret, scope string) tokenReply {
			return s.post(provider.TokenPath, id, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
		}
		got := cc("ops", adminSecret, "admin")
		if got.status != http.StatusOK || got.body["refresh_token"] != nil || got.body["id_token"] != nil {
			t.Fatalf("client credentials = %d %v", got.status, got.body)
		}
		claims := verifyAccessToken(t, s.issuer, got.body["access_token"].(string))
		if claims["sub"] != "ops" || claims["client_id"] != "ops" || claims["scope"] != "admin" {
			t.Fatalf("client-credentials token claims = %v", claims)
		}
		in := s.introspect("ops", adminSecret, got.body["access_token"].(string))
		if in.body["active"] != true || in.body["sub"] != "ops" || in.body["scope"] != "admin" {
			t.Fatalf("introspection = %v", in.body)
		}
		if r := cc("worker", plainSecret, "admin"); r.errorCode() != "invalid_scope" {
			t.Fatalf("admin scope for a client not registered with it = %d %v", r.status, r.body)
		}
		if r := cc("ops", adminSecret, "openid"); r.errorCode() != "invalid_scope" {
			t.Fatalf("unregistered scope = %d %v", r.status, r.body)
		}
		if r := cc("web", webSecret, "profile"); r.errorCode() != "unauthorized_client" {
			t.Fatalf("client without the grant = %d %v", r.status, r.body)
		}
		if r := cc("ops", "wrong-secret", "admin"); r.status != http.StatusUnauthorized || r.errorCode() != "invalid_client" {
			t.Fatalf("wrong secret = %d %v", r.status, r.body)
		}
	})
}

func TestIntrospection(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		clock := &offsetClock{}
		s := startE2E(t, dbURL, options{now: clock.now})
		s.app.provider.WithClock(clock.now)
		u := s.user("dave")
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
		_, rsSecret := s.client(clients.Spec{ID: "api", GrantTypes: []string{"client_credentials"}, Scopes: []string{"profile"}})
		r := s.rp("web", secret, "profile", "offline_access")
		tok := s.codeFlow(r, s.browser(), "dave")

		// Another client learns nothing of web's token (it names no API
		// that lists that client as its introspector).
		if other := s.introspect("api", rsSecret, tok.AccessToken); other.status != http.StatusOK || other.body["active"] != false || len(other.body) != 1 {
			t.Fatalf("introspection by a foreign client = %d %v, want {\"active\": false}", other.status, other.body)
		}
		in := s.introspect("web", secret, tok.AccessToken)
		if in.status != http.StatusOK || in.body["active"] != true || in.body["sub"] != u.ID || in.body["client_id"] != "web" ||
			in.body["scope"] != "openid profile offline_access" || in.body["token_type"] != "Bearer" || in.body["exp"] == nil || in.body["iat"] == nil {
			t.Fatalf("introspection of a live token = %d %v", in.status, in.body)
		}
		if rt := s.introspect("web", secret, tok.RefreshToken); rt.body["active"] != true || rt.body["token_type"] != "refresh_token" {
			t.Fatalf("introspection of a refresh token = %v", rt.body)
		}
		for name, token := range map[string]string{
			"unknown":   "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
			"malformed": "%%%not a token%%%",
			"empty-ish": "x",
		} {
			got := s.introspect("api", rsSecret, token)
			if got.status != http.StatusOK || got.body["active"] != false || len(got.body) != 1 {
				t.Errorf("%s token: %d %v, want 200 {\"active\": false}", name, got.status, got.body)
			}
		}
		// Callers must authenticate.
		if got := s.introspect("", "", tok.AccessToken); got.status != http.StatusUnauthorized {
			t.Fatalf("unauthenticated introspection = %d %v", got.status, got.body)
		}
		if got := s.introspect("api", "wrong", tok.AccessToken); got.status != http.StatusUnauthorized {
			t.Fatalf("introspection with a wrong secret = %d %v", got.status, got.body)
		}
		// The server's clock moved past the token's own exp (no real wait).
		clock.advance(time.Until(time.Unix(int64(in.body["exp"].(float64)), 0)) + time.Second)
		if got := s.introspect("web", secret, tok.AccessToken); got.body["active"] != false {
			t.Fatalf("expired token: %v", got.body)
		}
	})
}

func TestRevocation(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("erin")
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
		_, otherSecret := s.client(clients.Spec{ID: "other", FirstParty: true})
		r := s.rp("web", secret, "offline_access")
		browser := s.browser()
		tok := s.codeFlow(r, browser, "erin")
		revoke := func(id, sec, token string) tokenReply {
			return s.post(provider.RevokePath, id, sec, url.Values{"token": {token}})
		}
		// Another client cannot revoke web's tokens.
		if got := revoke("other", otherSecret, tok.RefreshToken); got.status == http.StatusOK {
			t.Fatal("a client revoked another client's refresh token")
		}
		if !s.active("web", secret, tok.AccessToken) {
			t.Fatal("a refused revocation revoked the token")
		}
		if got := revoke("web", secret, "never-issued-token"); got.status != http.StatusOK {
			t.Fatalf("revoking an unknown token = %d %v, want 200", got.status, got.body)
		}
		// Revoking the refresh token revokes its access tokens.
		if got := revoke("web", secret, tok.RefreshToken); got.status != http.StatusOK {
			t.Fatalf("revoke = %d %v", got.status, got.body)
		}
		if s.active("web", secret, tok.AccessToken) {
			t.Fatal("access token active after its refresh token was revoked")
		}
		if got := s.refresh("web", secret, tok.RefreshToken, ""); got.errorCode() != "invalid_grant" {
			t.Fatalf("revoked refresh token = %d %v", got.status, got.body)
		}
		// Revoking an access token alone.
		tok2 := s.codeFlow(r, browser, "")
		if got := revoke("web", secret, tok2.AccessToken); got.status != http.StatusOK {
			t.Fatalf("revoke access token = %d %v", got.status, got.body)
		}
		if s.active("web", secret, tok2.AccessToken) {
			t.Fatal("revoked access token still active")
		}
	})
}

func TestLogout(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("frank")
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true, PostLogoutRedirectURIs: []string{"https://app.example/bye"}})
		r := s.rp("web", secret, "profile")
		browser := s.browser()
		tok := s.codeFlow(r, browser, "frank")
		idToken := tok.Extra("id_token").(string)
		var doc struct {
			EndSession string `json:"end_session_endpoint"`
		}
		if err := r.provider.Claims(&doc); err != nil || doc.EndSession != s.issuer+provider.LogoutPath {
			t.Fatalf("end_session_endpoint = %q, %v", doc.EndSession, err)
		}
		promptNone := func() *url.URL {
			p := get(t, browser, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "none")))
			if p.location == nil {
				t.Fatalf("prompt=none showed a page: %d", p.status)
			}
			return p.location
		}
		if loc := promptNone(); loc.Query().Get("code") == "" {
			t.Fatalf("prompt=none with a session = %v, want a code", loc)
		}

		// An unregistered post_logout_redirect_uri is refused and changes nothing.
		q := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://evil.example/bye"}, "state": {"st-1"}}
		p := get(t, browser, doc.EndSession+"?"+q.Encode())
		if p.status != http.StatusBadRequest || p.location != nil {
			t.Fatalf("unregistered post_logout_redirect_uri: %d %v", p.status, p.location)
		}
		if loc := promptNone(); loc.Query().Get("code") == "" {
			t.Fatal("a refused logout ended the session")
		}

		q.Set("post_logout_redirect_uri", "https://app.example/bye")
		p = get(t, browser, doc.EndSession+"?"+q.Encode())
		if p.location == nil || p.location.Host != "app.example" || p.location.Query().Get("state") != "st-1" {
			t.Fatalf("logout = %d %v, want a redirect to the registered URI with state", p.status, p.location)
		}
		if loc := promptNone(); loc.Query().Get("error") != "login_required" {
			t.Fatalf("prompt=none after logout = %v, want login_required", loc)
		}

		// Without an id_token_hint the user confirms on a CSRF-protected page.
		s.codeFlow(r, browser, "frank")
		p = get(t, browser, doc.EndSession)
		if p.status != http.StatusOK || !strings.Contains(p.body, `value="logout"`) {
			t.Fatalf("logout without hint: %d, want a confirmation page", p.status)
		}
		f := parseForm(t, p.body, p.url)
		if forged := submit(t, browser, f, map[string]string{"csrf_token": "forged"}); forged.status != http.StatusForbidden {
			t.Fatalf("logout with a forged CSRF token = %d", forged.status)
		}
		if done := submit(t, browser, f, nil); done.status != http.StatusOK || !strings.Contains(done.body, "signed out") {
			t.Fatalf("confirmed logout = %d", done.status)
		}
		if loc := promptNone(); loc.Query().Get("error") != "login_required" {
			t.Fatalf("prompt=none after confirmed logout = %v", loc)
		}
	})
}

func TestPromptAndMaxAge(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.user("gina")
	_, secret := s.client(clients.Spec{ID: "third", PostLogoutRedirectURIs: nil})
	r := s.rp("third", secret, "profile")
	browser := s.browser()
	authURL := func(opts ...oauth2.AuthCodeOption) string {
		return r.conf.AuthCodeURL(random(t), append(opts, oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))...)
	}
	// No session: prompt=none answers login_required to the client.
	p := get(t, browser, authURL(oauth2.SetAuthURLParam("prompt", "none")))
	if p.location == nil || p.location.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none without a session = %d %v", p.status, p.location)
	}
	// Signed in, but no consent yet: consent_required.
	p = get(t, browser, authURL())
	p = submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"username": "gina", "password": e2ePassword})
	if !strings.Contains(p.body, `value="consent"`) {
		t.Fatalf("expected consent page, got %d", p.status)
	}
	p = get(t, browser, authURL(oauth2.SetAuthURLParam("prompt", "none")))
	if p.location == nil || p.location.Query().Get("error") != "consent_required" {
		t.Fatalf("prompt=none without consent = %d %v", p.status, p.location)
	}
	// Consent given: prompt=none returns a code without any page.
	s.authorize(browser, authURL(), "", true)
	p = get(t, browser, authURL(oauth2.SetAuthURLParam("prompt", "none")))
	if p.location == nil || p.location.Query().Get("code") == "" {
		t.Fatalf("prompt=none with session and consent = %d %v", p.status, p.location)
	}
	// prompt=consent asks again although consent is remembered.
	if p = get(t, browser, authURL(oauth2.SetAuthURLParam("prompt", "consent"))); !strings.Contains(p.body, `value="consent"`) {
		t.Fatalf("prompt=consent: %d", p.status)
	}
	// max_age=0 forces a fresh login; so does prompt=login.
	for _, opt := range []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "0"), oauth2.SetAuthURLParam("prompt", "login")} {
		p = get(t, browser, authURL(opt))
		if p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("expected the login form, got %d %v", p.status, p.location)
		}
		p = submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"username": "gina", "password": e2ePassword})
		if p.location == nil || p.location.Query().Get("code") == "" {
			t.Fatalf("after the forced login: %d %v", p.status, p.location)
		}
	}
	// A generous max_age does not.
	if p = get(t, browser, authURL(oauth2.SetAuthURLParam("max_age", "3600"))); p.location == nil || p.location.Query().Get("code") == "" {
		t.Fatalf("max_age=3600 with a fresh session: %d %v", p.status, p.location)
	}
}

func TestHousekeeping(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		ctx := context.Background()
		u := s.user("hank")
		past := time.Now().Add(-time.Hour)
		for i := 0; i < 1200; i++ {
			r := storage.OAuthRequest{Kind: storage.KindAccessToken, Signature: random(t), RequestID: "r", RequestedAt: past,
				ClientID: "c", Subject: u.ID, Active: true, ExpiresAt: past, Session: []byte("{}")}
			if err := s.app.store.CreateOAuthRequest(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		live := storage.OAuthRequest{Kind: storage.KindAccessToken, Signature: "live", RequestID: "r", RequestedAt: past,
			ClientID: "c", Subject: u.ID, Active: true, ExpiresAt: time.Now().Add(time.Hour), Session: []byte("{}")}
		if err := s.app.store.CreateOAuthRequest(ctx, live); err != nil {
			t.Fatal(err)
		}
		if err := s.app.store.CreateSession(ctx, storage.Session{IDHash: []byte("expired-session-hash-0123456789a"), UserID: u.ID,
			AuthTime: past, CreatedAt: past, ExpiresAt: past}); err != nil {
			t.Fatal(err)
		}
		deleted := sweepExpired(ctx, s.app.store, time.Now(), 90*24*time.Hour, discardLogger())
		if deleted["oauth2 requests"] != 1200 || deleted["sessions"] != 1 {
			t.Fatalf("sweep deleted %v, want 1200 requests in batches and 1 session", deleted)
		}
		if _, err := s.app.store.GetOAuthRequest(ctx, storage.KindAccessToken, "live"); err != nil {
			t.Fatalf("the sweep deleted a live token: %v", err)
		}
	})
}
