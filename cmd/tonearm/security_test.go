package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// These tests replay, as an attacker would, the attacks of the security
// probe and show each one refused.

// offsetClock is a clock the test can move forward.
type offsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *offsetClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *offsetClock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// grant signs username in through a client's consent page (when consent)
// and returns the tokens for scopes (besides openid).
func (s *server) grant(clientID, secret, username string, consent bool, scopes ...string) *oauth2.Token {
	s.t.Helper()
	r := s.rp(clientID, secret, scopes...)
	verifier := oauth2.GenerateVerifier()
	back := s.authorize(s.browser(), r.conf.AuthCodeURL(random(s.t), oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(s.t))), username, consent)
	tok, err := r.conf.Exchange(r.ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		s.t.Fatalf("code exchange: %v", err)
	}
	return tok
}

func setEmail(t *testing.T, s *server, userID, email string) {
	t.Helper()
	if _, err := s.app.accounts.UpdateProfile(context.Background(), userID, accounts.ProfileUpdate{Email: accounts.Value(email)}); err != nil {
		t.Fatal(err)
	}
}

// The takeover chain: a third-party app whose user granted only openid
// used the access token on /api/me to change the email, then had the
// password reset mailed to itself.
func TestRelyingPartyCannotTakeOverAccount(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		mailer := newCaptureMailer()
		s := startE2E(t, dbURL, options{mailer: mailer})
		ctx := context.Background()
		victim := s.user("victim")
		setEmail(t, s, victim.ID, "victim@example.org")
		_, secret := s.client(clients.Spec{ID: "thirdparty"}) // default scopes, consent required
		tok := s.grant("thirdparty", secret, "victim", true).AccessToken
		if claims := verifyAccessToken(t, s.issuer, tok); claims["scope"] != "openid" {
			t.Fatalf("granted scope = %v, want openid", claims["scope"])
		}

		// The token is good for userinfo and nothing else of tonearm's.
		req, _ := http.NewRequest(http.MethodGet, s.issuer+provider.UserinfoPath, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("userinfo = %d", resp.StatusCode)
		}
		me := s.want(s.call(nil, http.MethodGet, "/api/me", tok, nil), http.StatusForbidden)
		if strings.Contains(me.raw, "victim@example.org") || !strings.Contains(me.errMsg(), "account scope") {
			t.Fatalf("GET /api/me with an openid token = %s", me.raw)
		}
		s.want(s.call(nil, http.MethodPatch, "/api/me", tok, map[string]any{"email": "attacker@evil.example"}), http.StatusForbidden)
		s.want(s.call(nil, http.MethodPost, "/api/User/associateToken", tok, map[string]any{"user": victim.ID, "scrobbleToken": lbToken}), http.StatusForbidden)
		s.want(s.call(nil, http.MethodPost, "/api/User/endSession", tok, map[string]any{"user": victim.ID}), http.StatusForbidden)
		s.want(s.call(nil, http.MethodDelete, "/api/me", tok, map[string]any{"password": e2ePassword}), http.StatusForbidden)
		u, err := s.app.store.GetUser(ctx, victim.ID)
		if err != nil || u.Email != "victim@example.org" || u.ListenBrainzName != "" {
			t.Fatalf("victim after the attack = %+v, %v", u, err)
		}

		// The reset the attacker asks for goes nowhere; the owner's does.
		s.want(s.call(nil, http.MethodPost, "/api/password-reset/request", "", map[string]string{"email": "attacker@evil.example"}), http.StatusOK)
		s.want(s.call(nil, http.MethodPost, "/api/password-reset/request", "", map[string]string{"email": "victim@example.org"}), http.StatusOK)
		mailer.wait(t)
		time.Sleep(300 * time.Millisecond) // room for a wrong mail to show up
		mailer.mu.Lock()
		_, toAttacker := mailer.sent["attacker@evil.example"]
		count := mailer.count
		mailer.mu.Unlock()
		if toAttacker || count != 1 {
			t.Fatalf("reset mails: %d, to the attacker: %v", count, toAttacker)
		}
	})
}

// An app granted account may manage the account, but the email address
// (where resets go) changes only with the current password or right after
// a sign-in: a stolen token or session cannot redirect recovery.
func TestEmailChangeNeedsRecentSignInOrPassword(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		clock := &offsetClock{}
		s := startE2E(t, dbURL, options{now: clock.now})
		ctx := context.Background()
		owner := s.user("owner")
		setEmail(t, s, owner.ID, "owner@example.org")
		_, secret := s.client(clients.Spec{ID: "companion", Scopes: []string{"openid", "account"}})
		tok := s.grant("companion", secret, "owner", true, "account").AccessToken
		browser := s.loginBrowser("owner")

		// Within five minutes of signing in, a change goes through.
		s.want(s.call(nil, http.MethodPatch, "/api/me", tok, map[string]any{"email": "owner2@example.org"}), http.StatusOK)
		clock.advance(6 * time.Minute)
		for _, c := range []struct {
			name    string
			bearer  string
			browser *http.Client
		}{{"bearer", tok, nil}, {"cookie", "", browser}} {
			name := c.name
			r := s.want(s.call(c.browser, http.MethodPatch, "/api/me", c.bearer, map[string]any{"email": "attacker@evil.example"}), http.StatusForbidden)
			if !strings.Contains(r.errMsg(), "currentPassword") {
				t.Errorf("%s: %s", name, r.raw)
			}
			s.want(s.call(c.browser, http.MethodPatch, "/api/me", c.bearer, map[string]any{"email": "attacker@evil.example", "currentPassword": "wrong-password"}), http.StatusForbidden)
			s.want(s.call(c.browser, http.MethodPatch, "/api/me", c.bearer, map[string]any{"email": nil}), http.StatusForbidden)
			// Other fields need no proof.
			s.want(s.call(c.browser, http.MethodPatch, "/api/me", c.bearer, map[string]any{"bio": name}), http.StatusOK)
		}
		if u, _ := s.app.store.GetUser(ctx, owner.ID); u.Email != "owner2@example.org" || u.Bio != "cookie" {
			t.Fatalf("after refused changes: email %q bio %q", u.Email, u.Bio)
		}
		s.want(s.call(nil, http.MethodPatch, "/api/me", tok, map[string]any{"email": "owner3@example.org", "currentPassword": e2ePassword}), http.StatusOK)
		if u, _ := s.app.store.GetUser(ctx, owner.ID); u.Email != "owner3@example.org" || u.EmailVerified {
			t.Fatalf("after the proven change: %+v", u)
		}
	})
}

// An admin who signs in to an app hands it nothing of the admin's: the
// app cannot create itself an admin client. Only a client registered with
// admin may ask for it, and the user must be an admin at the time of the
// call.
func TestAdminSignInGrantsAppNothing(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		ctx := context.Background()
		root := s.admin("root")
		_, secret := s.client(clients.Spec{ID: "thirdparty", Scopes: []string{"openid", "profile", "email", "roles"}})
		tok := s.grant("thirdparty", secret, "root", true, "profile", "email", "roles").AccessToken
		s.want(s.call(nil, http.MethodPost, "/api/admin/clients", tok, map[string]any{
			"clientId": "backdoor", "grantTypes": []string{"client_credentials"}, "scope": "admin",
		}), http.StatusForbidden)
		s.want(s.call(nil, http.MethodGet, "/api/admin/users", tok, nil), http.StatusForbidden)
		if _, err := s.app.store.GetClient(ctx, "backdoor"); err == nil {
			t.Fatal("the app created itself a client")
		}

		// A client not registered with admin cannot ask for it.
		r := s.rp("thirdparty", secret, "admin")
		p := get(t, s.browser(), r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if p.location == nil || p.location.Query().Get("error") != "invalid_scope" {
			t.Fatalf("asking for admin without registration: %d %v", p.status, p.location)
		}

		// A console registered with admin gets it, with the admin's consent,
		// and loses it when the admin is demoted.
		_, consoleSecret := s.client(clients.Spec{ID: "console", Scopes: []string{"openid", "admin"}})
		adminTok := s.grant("console", consoleSecret, "root", true, "admin").AccessToken
		claims := verifyAccessToken(t, s.issuer, adminTok)
		if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != s.issuer+"/api" {
			t.Fatalf("aud of an admin token = %v", claims["aud"])
		}
		s.want(s.call(nil, http.MethodGet, "/api/admin/users", adminTok, nil), http.StatusOK)
		s.admin("second")
		role := storage.RoleUser
		if _, err := s.app.accounts.AdminUpdate(ctx, root.ID, accounts.AdminChange{Role: &role}); err != nil {
			t.Fatal(err)
		}
		s.want(s.call(nil, http.MethodGet, "/api/admin/users", adminTok, nil), http.StatusForbidden)
	})
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeSegment(t *testing.T, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Every bearer check in tonearm's APIs verifies the whole token: forged,
// foreign, cut and spliced tokens, an ID token, and revoked tokens are
// refused on /api/me and /api/admin/, and introspect inactive.
func TestBearerTokensAreCheckedWhole(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		ctx := context.Background()
		root := s.admin("root")
		s.user("member")
		_, secret := s.client(clients.Spec{ID: "app", FirstParty: true, Scopes: []string{"openid", "account", "admin"}})
		member := s.grant("app", secret, "member", false, "account")
		adminTok := s.grant("app", secret, "root", false, "admin").AccessToken
		tok := member.AccessToken
		parts := strings.Split(tok, ".")
		header, payload := decodeSegment(t, parts[0]), decodeSegment(t, parts[1])

		// Another tonearm (its own keys) signs a token for the same issuer.
		foreign := startE2E(t, "sqlite://"+t.TempDir()+"/foreign.db", options{})
		foreign.user("member")
		_, fSecret := foreign.client(clients.Spec{ID: "app", FirstParty: true, Scopes: []string{"openid", "account"}})
		foreignTok := foreign.grant("app", fSecret, "member", false, "account").AccessToken

		// The attacker's own key, claiming our kid.
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
			(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", header["kid"]))
		escalated := map[string]any{}
		for k, v := range payload {
			escalated[k] = v
		}
		escalated["sub"], escalated["scope"] = root.ID, "account admin"
		raw, _ := json.Marshal(escalated)
		obj, _ := signer.Sign(raw)
		selfSigned, _ := obj.CompactSerialize()
		none := b64(map[string]any{"alg": "none", "typ": "at+jwt"}) + "." + parts[1] + "."

		// Revoked: a second token of the member's, revoked by its client.
		revoked := s.grant("app", secret, "member", false, "account").AccessToken
		if got := s.post(provider.RevokePath, "app", secret, url.Values{"token": {revoked}}); got.status != http.StatusOK {
			t.Fatalf("revoke = %d", got.status)
		}

		for name, bad := range map[string]string{
			"signature segment with a made-up head": "AAAA.BBBB." + parts[2],
			"payload spliced to another subject":    parts[0] + "." + b64(escalated) + "." + parts[2],
			"header spliced":                        b64(map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "other"}) + "." + parts[1] + "." + parts[2],
			"signature cut off":                     parts[0] + "." + parts[1],
			"signature emptied":                     parts[0] + "." + parts[1] + ".",
			"alg none":                              none,
			"signed by the attacker's key":          selfSigned,
			"signed by another tonearm":             foreignTok,
			"an ID token":                           member.Extra("id_token").(string),
			"revoked":                               revoked,
			"garbage":                               "not-a-token",
		} {
			for _, path := range []string{"/api/me", "/api/admin/users"} {
				r := s.call(nil, http.MethodGet, path, bad, nil)
				if r.status != http.StatusUnauthorized && r.status != http.StatusForbidden {
					t.Errorf("%s on %s = %d %s", name, path, r.status, r.raw)
				}
				if r.status == http.StatusOK || strings.Contains(r.raw, "member") {
					t.Errorf("%s on %s leaked: %s", name, path, r.raw)
				}
			}
			if s.active("app", secret, bad) { // the client the genuine token was issued to
				t.Errorf("%s introspects active", name)
			}
		}
		// The genuine tokens work, each where it is meant to.
		s.want(s.call(nil, http.MethodGet, "/api/me", tok, nil), http.StatusOK)
		s.want(s.call(nil, http.MethodGet, "/api/admin/users", tok, nil), http.StatusForbidden)
		s.want(s.call(nil, http.MethodGet, "/api/admin/users", adminTok, nil), http.StatusOK)
		s.want(s.call(nil, http.MethodGet, "/api/me", adminTok, nil), http.StatusForbidden) // admin is not account
		if !s.active("app", secret, tok) {
			t.Fatal("the genuine token is not active")
		}
		if u, _ := s.app.store.GetUser(ctx, root.ID); u.Role != storage.RoleAdmin {
			t.Fatal("root changed")
		}
	})
}

// Introspection takes client credentials only: a bearer token (any
// client's, a public app's) is not a credential there.
func TestIntrospectionNeedsClientAuthentication(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("ann")
		s.user("bob")
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
		s.client(clients.Spec{ID: "spa", Public: true, FirstParty: true})
		victim := s.grant("web", secret, "ann", false).AccessToken
		spa := s.rp("spa", "")
		verifier := oauth2.GenerateVerifier()
		back := s.authorize(s.browser(), spa.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier)), "bob", false)
		spaTok, err := spa.conf.Exchange(spa.ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		introspect := func(form url.Values, set func(*http.Request)) (int, map[string]any) {
			return s.formPost(t, provider.IntrospectPath, form, set)
		}
		for name, c := range map[string]struct {
			form url.Values
			set  func(*http.Request)
		}{
			"bearer header":         {url.Values{"token": {victim}}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+spaTok.AccessToken) }},
			"access_token field":    {url.Values{"token": {victim}, "access_token": {spaTok.AccessToken}}, nil},
			"public client, Basic":  {url.Values{"token": {victim}}, func(r *http.Request) { r.SetBasicAuth("spa", "") }},
			"public client, post":   {url.Values{"token": {victim}, "client_id": {"spa"}}, nil},
			"wrong secret, post":    {url.Values{"token": {victim}, "client_id": {"web"}, "client_secret": {"wrong"}}, nil},
			"no credentials at all": {url.Values{"token": {victim}}, nil},
		} {
			st, body := introspect(c.form, c.set)
			if st != http.StatusUnauthorized || body["active"] == true || body["sub"] != nil {
				t.Errorf("%s: %d %v, want 401 and nothing about the token", name, st, body)
			}
		}
		st, body := introspect(url.Values{"token": {victim}, "client_id": {"web"}, "client_secret": {secret}}, nil)
		if st != http.StatusOK || body["active"] != true {
			t.Fatalf("client_secret_post introspection = %d %v", st, body)
		}
		if !s.active("web", secret, victim) {
			t.Fatal("Basic introspection of a live token is not active")
		}
	})
}

// signIn posts startSession as if from addr (behind a proxy that sets
// X-Forwarded-For).
func (s *server) signIn(addr, username, password string) apiReply {
	s.t.Helper()
	return s.signInWith(http.DefaultClient, addr, username, password)
}

// signInWith is signIn from a browser c (its cookies go along).
func (s *server) signInWith(c *http.Client, addr, username, password string) apiReply {
	s.t.Helper()
	b, _ := json.Marshal(map[string]string{"username": username, "password": password})
	req, _ := http.NewRequest(http.MethodPost, s.issuer+"/api/User/startSession", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	if addr != "" {
		req.Header.Set("X-Forwarded-For", addr)
	}
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := apiReply{status: resp.StatusCode, raw: resp.Header.Get("Retry-After")}
	_ = json.NewDecoder(resp.Body).Decode(&out.body)
	return out
}

// maxAccountWait is the longest a new browser waits for an account under
// attack (web's maxAccountDelay).
const maxAccountWait = 30 * time.Second

func behindProxy(c *config.Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
}

// The current password is checked under one limiter everywhere: guessing it
// through password change, account deletion and email change adds up, and
// ends in 429 even for the right password.
func TestCurrentPasswordGuessingIsLimited(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		clock := &offsetClock{}
		s := startE2E(t, dbURL, options{now: clock.now})
		ctx := context.Background()
		u := s.user("target")
		setEmail(t, s, u.ID, "target@example.org")
		_, secret := s.client(clients.Spec{ID: "companion", FirstParty: true, Scopes: []string{"openid", "account"}})
		tok := s.grant("companion", secret, "target", false, "account").AccessToken
		clock.advance(10 * time.Minute) // the sign-in is no longer recent
		wrong := 0
		for i := 0; i < 4; i++ {
			s.want(s.call(nil, http.MethodPost, "/api/me/password", tok, map[string]string{"currentPassword": fmt.Sprintf("guess-%d-xx", i), "newPassword": "attacker-pass-1"}), http.StatusForbidden)
			s.want(s.call(nil, http.MethodDelete, "/api/me", tok, map[string]string{"password": fmt.Sprintf("guess-%d-yy", i)}), http.StatusForbidden)
			wrong += 2
		}
		for ; wrong < 10; wrong++ {
			s.want(s.call(nil, http.MethodPatch, "/api/me", tok, map[string]any{"email": "attacker@evil.example", "currentPassword": fmt.Sprintf("guess-%d-zz", wrong)}), http.StatusForbidden)
		}
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{http.MethodPost, "/api/me/password", map[string]string{"currentPassword": e2ePassword, "newPassword": "attacker-pass-1"}},
			{http.MethodDelete, "/api/me", map[string]string{"password": e2ePassword}},
			{http.MethodPatch, "/api/me", map[string]any{"email": "attacker@evil.example", "currentPassword": e2ePassword}},
		} {
			s.want(s.call(nil, c.method, c.path, tok, c.body), http.StatusTooManyRequests)
		}
		if got, err := s.app.store.GetUser(ctx, u.ID); err != nil || got.Email != "target@example.org" {
			t.Fatalf("after the guesses: %+v, %v", got, err)
		}
		// The same counter holds sign-in from this address.
		s.want(s.call(nil, http.MethodPost, "/api/User/startSession", "", map[string]string{"username": "target", "password": e2ePassword}), http.StatusTooManyRequests)
	})
}

// The per-account count is per account: guesses by username and by email
// are one target, even from many addresses. After ten, a browser the
// account has not signed in on must wait.
func TestUsernameAndEmailShareOneCount(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2EConfig(t, dbURL, options{}, behindProxy)
		u := s.user("dual")
		setEmail(t, s, u.ID, "dual@example.org")
		for i := 0; i < 5; i++ {
			s.want(s.signIn(fmt.Sprintf("198.51.100.%d", i+1), "dual", "wrong-password"), http.StatusUnauthorized)
			s.want(s.signIn(fmt.Sprintf("203.0.113.%d", i+1), "DUAL@example.org", "wrong-password"), http.StatusUnauthorized)
		}
		s.want(s.signIn("192.0.2.77", "dual", e2ePassword), http.StatusTooManyRequests)
		s.want(s.signIn("192.0.2.78", "dual@example.org", e2ePassword), http.StatusTooManyRequests)
	})
}

// Forwarded addresses count only from trusted proxies: without
// TONEARM_TRUSTED_PROXIES a client's X-Forwarded-For is ignored (it cannot
// dodge the per-address limit); behind a trusted proxy one attacker's
// failures block that attacker, not everyone behind the proxy, and a
// forged left-hand hop changes nothing.
func TestForwardedAddresses(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		clock := &offsetClock{}
		direct := startE2E(t, dbURL, options{now: clock.now})
		direct.user("alice")
		for i := 0; i < 10; i++ {
			direct.want(direct.signIn(fmt.Sprintf("198.51.100.%d", i+1), "alice", "wrong-password"), http.StatusUnauthorized)
		}
		direct.want(direct.signIn("198.51.100.200", "alice", e2ePassword), http.StatusTooManyRequests)

		proxied := startE2EConfig(t, dbURL, options{now: clock.now}, behindProxy) // another replica, behind a proxy
		proxied.user("carol")
		for i := 0; i < 10; i++ {
			proxied.want(proxied.signIn("203.0.113.7", "carol", "wrong-password"), http.StatusUnauthorized)
		}
		proxied.want(proxied.signIn("203.0.113.7", "carol", e2ePassword), http.StatusTooManyRequests)
		// A forged hop on the left: the proxy appended the real one.
		proxied.want(proxied.signIn("198.51.100.2, 203.0.113.7", "carol", e2ePassword), http.StatusTooManyRequests)
		// The owner, behind the same proxy, is not blocked (a new browser
		// waits out the account's short delay).
		clock.advance(maxAccountWait)
		proxied.want(proxied.signIn("198.51.100.2", "carol", e2ePassword), http.StatusOK)
		proxied.want(proxied.signIn("203.0.113.7", "carol", e2ePassword), http.StatusTooManyRequests)
	})
}

// RFC 8252's any-port rule for loopback redirect URIs is for native
// (public) clients only.
func TestLoopbackPortsOnlyForPublicClients(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.client(clients.Spec{ID: "webapp", RedirectURIs: []string{"http://127.0.0.1:8000/callback"}})
		s.client(clients.Spec{ID: "native", Public: true, RedirectURIs: []string{"http://127.0.0.1/callback"}})
		authURL := func(client, redirect, scope string) string {
			q := url.Values{"client_id": {client}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {scope},
				"state": {"state-12345678"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
			return s.issuer + provider.AuthorizePath + "?" + q.Encode()
		}
		for name, u := range map[string]string{
			"other port":                authURL("webapp", "http://127.0.0.1:9999/callback", "openid"),
			"other port, invalid scope": authURL("webapp", "http://127.0.0.1:9999/callback", "openid nonsense"),
		} {
			p := get(t, s.browser(), u)
			if p.status != http.StatusBadRequest || p.location != nil {
				t.Errorf("%s: %d %v, want an error page and no redirect", name, p.status, p.location)
			}
		}
		// The registered URI itself, and a native app on any port.
		for _, u := range []string{authURL("webapp", "http://127.0.0.1:8000/callback", "openid"), authURL("native", "http://127.0.0.1:53127/callback", "openid")} {
			if p := get(t, s.browser(), u); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
				t.Errorf("%s: %d, want the login page", u, p.status)
			}
		}
	})
}

// An https issuer sends Strict-Transport-Security on every answer; an http
// one (development) does not.
func TestHSTS(t *testing.T) {
	t.Parallel()
	for issuer, want := range map[string]string{"https://id.example": "max-age=31536000", "http://127.0.0.1:8080": ""} {
		dbURL := "sqlite://" + t.TempDir() + "/t.db"
		s := startE2EConfig(t, dbURL, options{}, func(c *config.Config) { c.Issuer = issuer })
		for _, path := range []string{provider.DiscoveryPath, "/api/me", "/no/such/page"} {
			rec := httptest.NewRecorder()
			s.app.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if got := rec.Header().Get("Strict-Transport-Security"); got != want {
				t.Errorf("%s %s: Strict-Transport-Security %q, want %q", issuer, path, got, want)
			}
		}
	}
}

// A token for tonearm's API keeps its audience through refresh, and the
// refreshed access token works where the first one did.
func TestAPITokenRefresh(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("ria")
		_, secret := s.client(clients.Spec{ID: "app", FirstParty: true, Scopes: []string{"openid", "account", "offline_access"}})
		tok := s.grant("app", secret, "ria", false, "account", "offline_access")
		got := s.refresh("app", secret, tok.RefreshToken, "")
		if got.status != http.StatusOK {
			t.Fatalf("refresh = %d %v", got.status, got.body)
		}
		fresh := got.body["access_token"].(string)
		if aud, _ := verifyAccessToken(t, s.issuer, fresh)["aud"].([]any); len(aud) != 1 || aud[0] != s.issuer+"/api" {
			t.Fatalf("refreshed aud = %v", aud)
		}
		s.want(s.call(nil, http.MethodGet, "/api/me", fresh, nil), http.StatusOK)
		// Narrowed to openid, the new token is for userinfo only.
		narrow := s.refresh("app", secret, got.body["refresh_token"].(string), "openid")
		if narrow.status != http.StatusOK {
			t.Fatalf("narrowed refresh = %d %v", narrow.status, narrow.body)
		}
		s.want(s.call(nil, http.MethodGet, "/api/me", narrow.body["access_token"].(string), nil), http.StatusForbidden)

		// Asking for the API as an audience without its scopes grants nothing.
		_, ccSecret := s.client(clients.Spec{ID: "machine", GrantTypes: []string{"client_credentials"}, Scopes: []string{"profile"}})
		cc := s.post(provider.TokenPath, "machine", ccSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}, "audience": {s.issuer + "/api"}})
		if cc.status != http.StatusOK {
			t.Fatalf("client credentials = %d %v", cc.status, cc.body)
		}
		if aud, _ := verifyAccessToken(t, s.issuer, cc.body["access_token"].(string))["aud"].([]any); len(aud) != 1 || aud[0] != "machine" {
			t.Fatalf("aud without the API's scopes = %v", aud)
		}
	})
}

// Issue 13: guessing slows the guesser, never locks the owner out. 1,000
// wrong passwords from 20 addresses, spread over two replicas that share
// their counters, reach the password hash only a few times; the owner's
// browser that signed in before gets in at once; a new browser waits
// seconds, not fifteen minutes; one address alone is stopped as before.
func TestGuessingDoesNotLockOutTheOwner(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		clock := newFrozenClock() // on a real one, a busy machine's seconds add to the 100 simulated
		a := startE2EConfig(t, dbURL, options{now: clock.now}, behindProxy)
		b := a.secondWith(options{now: clock.now})
		a.user("olive")
		known := a.browser()
		a.want(a.signInWith(known, "192.0.2.10", "olive", e2ePassword), http.StatusOK)

		reached, refused := 0, 0
		for i := 0; i < 1000; i++ {
			replica := []*server{a, b}[i%2]
			r := replica.signIn(fmt.Sprintf("198.51.100.%d", i%20+1), "olive", fmt.Sprintf("guess-%04d", i))
			switch r.status {
			case http.StatusUnauthorized:
				reached++
			case http.StatusTooManyRequests:
				refused++
			default:
				t.Fatalf("guess %d: %d %v", i, r.status, r.body)
			}
			clock.advance(100 * time.Millisecond) // 100 s in all
		}
		t.Logf("of 1,000 guesses from 20 addresses on two replicas, %d reached the password hash", reached)
		// 10 free guesses, then one after 1, 2, 4, 8, 16 and every 30 s.
		if reached > 20 || reached < 10 || reached+refused != 1000 {
			t.Fatalf("guesses that reached the hash: %d (refused %d); want 10–20", reached, refused)
		}

		// The owner's known browser, on either replica, gets in at once.
		a.want(b.signInWith(known, "192.0.2.10", "olive", e2ePassword), http.StatusOK)
		// A new browser is asked to wait seconds, then gets in.
		fresh := b.signInWith(a.browser(), "192.0.2.11", "olive", e2ePassword)
		if fresh.status != http.StatusTooManyRequests || !strings.Contains(fmt.Sprint(fresh.body["error"]), "not signed in on") {
			t.Fatalf("a new browser during the attack: %d %v", fresh.status, fresh.body)
		}
		wait, err := time.ParseDuration(fresh.raw + "s")
		if err != nil || wait <= 0 || wait > maxAccountWait {
			t.Fatalf("Retry-After %q, want 1–30 seconds", fresh.raw)
		}
		clock.advance(wait)
		a.want(a.signIn("192.0.2.11", "olive", e2ePassword), http.StatusOK)

		// One address guessing alone is stopped, right password or not.
		a.user("pat")
		for i := 0; i < 10; i++ {
			clock.advance(maxAccountWait) // past any account delay
			a.want(a.signIn("203.0.113.50", "pat", "wrong-password"), http.StatusUnauthorized)
		}
		clock.advance(time.Minute)
		a.want(b.signIn("203.0.113.50", "pat", e2ePassword), http.StatusTooManyRequests)
		a.want(b.signIn("203.0.113.51", "pat", e2ePassword), http.StatusOK)

		// Ending every session of the user voids the known-device cookie.
		olive, _ := a.app.store.GetUserByUsername(context.Background(), "olive")
		if err := a.app.accounts.EndUserSessions(context.Background(), olive.ID); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 12; i++ {
			a.signIn(fmt.Sprintf("198.51.100.%d", 100+i), "olive", "wrong-again")
		}
		a.want(a.signInWith(known, "192.0.2.10", "olive", e2ePassword), http.StatusTooManyRequests)
	})
}

// A known-device cookie counts only for its own account, and only as
// signed.
func TestKnownDeviceCookieIsBound(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		clock := &offsetClock{}
		s := startE2EConfig(t, dbURL, options{now: clock.now}, behindProxy)
		s.user("quinn")
		s.user("rae")
		browser := s.browser()
		s.want(s.signInWith(browser, "192.0.2.20", "quinn", e2ePassword), http.StatusOK)
		issuer, _ := url.Parse(s.issuer)
		var device *http.Cookie
		for _, c := range browser.Jar.Cookies(issuer) {
			if c.Name == "tonearm_device" {
				device = c
			}
		}
		if device == nil {
			t.Fatal("no known-device cookie after sign-in")
		}
		for i := 0; i < 11; i++ {
			s.signIn(fmt.Sprintf("198.51.100.%d", i+1), "rae", "wrong-password")
			s.signIn(fmt.Sprintf("203.0.113.%d", i+1), "quinn", "wrong-password")
		}
		// quinn's cookie does not help with rae's account.
		s.want(s.signInWith(browser, "192.0.2.20", "rae", e2ePassword), http.StatusTooManyRequests)
		// A tampered cookie is no cookie.
		forged, _ := cookiejarWith(t, s.issuer, &http.Cookie{Name: device.Name, Value: device.Value[:len(device.Value)-2] + "AA", Path: "/"})
		s.want(s.signInWith(forged, "192.0.2.21", "quinn", e2ePassword), http.StatusTooManyRequests)
		// The genuine one works.
		s.want(s.signInWith(browser, "192.0.2.20", "quinn", e2ePassword), http.StatusOK)
	})
}

func cookiejarWith(t *testing.T, issuer string, c *http.Cookie) (*http.Client, error) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(issuer)
	jar.SetCookies(u, []*http.Cookie{c})
	return &http.Client{Jar: jar}, nil
}

// A stranger who uses up the per-email reset requests cannot keep the owner
// from resetting: the owner's known browser is not held to that limit.
func TestResetLimitSparesTheOwnersBrowser(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		mailer := newCaptureMailer()
		s := startE2EConfig(t, dbURL, options{mailer: mailer}, behindProxy)
		u := s.user("sam")
		setEmail(t, s, u.ID, "sam@example.org")
		owner := s.browser()
		s.want(s.signInWith(owner, "192.0.2.30", "sam", e2ePassword), http.StatusOK)
		for i := 0; i < 3; i++ {
			s.want(s.call(nil, http.MethodPost, "/api/password-reset/request", "", map[string]string{"email": "sam@example.org"}), http.StatusOK)
			mailer.wait(t)
		}
		s.want(s.call(nil, http.MethodPost, "/api/password-reset/request", "", map[string]string{"email": "sam@example.org"}), http.StatusTooManyRequests)
		s.want(s.call(owner, http.MethodPost, "/api/password-reset/request", "", map[string]string{"email": "SAM@example.org"}), http.StatusOK)
		mailer.wait(t)
		// The cookie helps only with its own account's address.
		other := s.user("tess")
		setEmail(t, s, other.ID, "tess@example.org")
		for i := 0; i < 3; i++ {
			s.want(s.call(nil, http.MethodPost, "/api/password-reset/request", "", map[string]string{"email": "tess@example.org"}), http.StatusOK)
		}
		s.want(s.call(owner, http.MethodPost, "/api/password-reset/request", "", map[string]string{"email": "tess@example.org"}), http.StatusTooManyRequests)
	})
}
