package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

// logoutFor waits for the logout token about sid, passing over tokens about
// sessions that ended before (a client that refreshed since may be told of
// its old session again), and verifies it.
func (rp *relyingParty) logoutFor(t *testing.T, issuer, clientID, sub, sid string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case tok := <-rp.tokens:
			var c struct {
				SID string `json:"sid"`
			}
			if parts := strings.Split(tok, "."); len(parts) == 3 {
				payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
				_ = json.Unmarshal(payload, &c)
			}
			if c.SID == sid {
				verifyLogoutToken(t, issuer, tok, clientID, sub, sid)
				return
			}
		case <-deadline:
			t.Fatalf("no logout token about session %s arrived", sid)
		}
	}
}

// Refresh tokens issued with offline_access outlive a sign-out (OpenID
// Connect Back-Channel Logout 1.0 §2.7) for every app, whether or not it
// registered a back-channel logout URI: RP-initiated logout, the User API's
// endSession and session expiry leave them working (and the listening app
// still gets its logout token). A password change, disabling the person,
// revoking the app, "sign out every other session" and "sign out of every
// app" on /account end them.
func TestOfflineAccessSurvivesSignOut(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		listener := newRelyingParty(t)
		_, syncSecret := s.client(clients.Spec{ID: "syncer", FirstParty: true, BackchannelLogoutURI: listener.srv.URL + "/backchannel",
			Display: clients.Display{Name: "Listen Syncer"}})
		_, quietSecret := s.client(clients.Spec{ID: "quiet", FirstParty: true, Display: clients.Display{Name: "Quiet Syncer"}})
		secrets := map[string]string{"syncer": syncSecret, "quiet": quietSecret}
		s.admin("root")
		ops := s.opsToken()
		u := s.user("listener")

		// grants holds each app's current refresh token (they rotate).
		type grants struct {
			browser *http.Client
			sid     string
			idToken string
			refresh map[string]string
		}
		signIn := func() *grants {
			t.Helper()
			browser := s.browser()
			g := &grants{browser: browser, refresh: map[string]string{}}
			first := true
			for _, id := range []string{"syncer", "quiet"} {
				name := ""
				if first {
					name, first = "listener", false
				}
				tok := s.codeFlow(s.rp(id, secrets[id], "offline_access"), browser, name)
				if tok.RefreshToken == "" {
					t.Fatalf("%s got no refresh token with offline_access", id)
				}
				g.refresh[id] = tok.RefreshToken
				if id == "syncer" {
					g.idToken = tok.Extra("id_token").(string)
					g.sid = idClaims(t, g.idToken)["sid"].(string)
				}
			}
			return g
		}
		// works refreshes each app's token and wants it to work (or not).
		works := func(way string, g *grants, want bool) {
			t.Helper()
			for _, id := range []string{"syncer", "quiet"} {
				r := s.refresh(id, secrets[id], g.refresh[id], "")
				switch {
				case want && r.status != http.StatusOK:
					t.Fatalf("%s: %s's offline_access refresh token = %d %v, want it to keep working", way, id, r.status, r.body)
				case want:
					g.refresh[id] = r.body["refresh_token"].(string)
				case r.status != http.StatusBadRequest || r.errorCode() != "invalid_grant":
					t.Fatalf("%s: %s's refresh token = %d %v, want invalid_grant", way, id, r.status, r.body)
				}
			}
		}

		// RP-initiated logout by a relying party's server.
		g := signIn()
		resp, err := http.Get(s.issuer + provider.LogoutPath + "?" + url.Values{"id_token_hint": {g.idToken}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		listener.logoutFor(t, s.issuer, "syncer", u.ID, g.sid)
		works("RP-initiated logout", g, true)
		works("RP-initiated logout, twice", g, true)

		// RP-initiated logout confirmed in the browser.
		g = signIn()
		p := get(t, g.browser, s.issuer+provider.LogoutPath)
		if p = submit(t, g.browser, parseForm(t, p.body, p.url), nil); p.status != http.StatusOK {
			t.Fatalf("confirming the sign-out: %d", p.status)
		}
		listener.logoutFor(t, s.issuer, "syncer", u.ID, g.sid)
		works("sign-out confirmed in the browser", g, true)

		// The User API's endSession.
		g = signIn()
		s.want(s.call(g.browser, http.MethodPost, "/api/User/endSession", "", map[string]string{"user": u.ID}), http.StatusOK)
		listener.logoutFor(t, s.issuer, "syncer", u.ID, g.sid)
		works("endSession", g, true)

		// Session expiry.
		g = signIn()
		if _, err := s.app.store.DeleteExpiredSessions(context.Background(), time.Now().Add(400*24*time.Hour), 1000); err != nil {
			t.Fatal(err)
		}
		works("session expiry", g, true)

		// "Sign out every other session" on /account ends the others' apps.
		g = signIn()
		here := s.browser()
		s.signInPage(t, here, "listener")
		if p := submit(t, here, accountForm(t, get(t, here, s.issuer+"/account"), "/account/sessions/end-others"), nil); p.url.Query().Get("done") != "others-ended" {
			t.Fatalf("sign out every other session: %d %v", p.status, p.url)
		}
		works("sign out every other session", g, false)

		// "Sign out of every app" on /account: the apps' tokens end, refresh
		// tokens included, the listening app hears it, and the browser
		// stays signed in.
		g = signIn()
		if p := submit(t, g.browser, accountForm(t, get(t, g.browser, s.issuer+"/account"), "/account/apps/sign-out"), nil); p.url.Query().Get("done") != "apps-signed-out" {
			t.Fatalf("sign out of every app: %d %v", p.status, p.url)
		}
		listener.logoutFor(t, s.issuer, "syncer", u.ID, g.sid)
		works("sign out of every app", g, false)
		if p := get(t, g.browser, s.issuer+"/account"); p.status != http.StatusOK || p.url.Path != "/account" {
			t.Fatalf("after signing out of every app, /account = %d %v; want still signed in", p.status, p.url)
		}

		// Revoking each app on /account.
		g = signIn()
		for _, id := range []string{"syncer", "quiet"} {
			f := accountForm(t, get(t, here, s.issuer+"/account"), "/account/apps/revoke")
			f.values["client_id"] = []string{id}
			if p := submit(t, here, f, nil); p.url.Query().Get("done") != "revoked" {
				t.Fatalf("revoking %s: %d %v", id, p.status, p.url)
			}
		}
		works("revoking the apps", g, false)

		// A password change.
		g = signIn()
		s.want(s.call(g.browser, http.MethodPost, "/api/me/password", "", map[string]string{"currentPassword": e2ePassword, "newPassword": e2ePassword + "-2"}), http.StatusOK)
		works("password change", g, false)
		s.want(s.call(nil, http.MethodPost, "/api/admin/users/"+u.ID+"/password", ops, map[string]string{"password": e2ePassword}), http.StatusOK)

		// Disabling the person.
		g = signIn()
		s.want(s.call(nil, http.MethodPatch, "/api/admin/users/"+u.ID, ops, map[string]any{"disabled": true}), http.StatusOK)
		works("disabling the person", g, false)
	})
}

// login_hint (OpenID Connect Core §3.1.2.1) fills the sign-in page's
// username, from the query and from a pushed request alike; html/template
// escapes it; an overlong hint is ignored. The prefilled form signs in.
func TestLoginHintPrefillsUsername(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	_, secret := s.client(clients.Spec{ID: "hinted", FirstParty: true})
	s.user("alice")
	r := s.rp("hinted", secret)
	loginPage := func(browser *http.Client, authURL string) page {
		t.Helper()
		p := get(t, browser, authURL)
		if p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("expected the login page, got %d %v:\n%s", p.status, p.location, p.body)
		}
		return p
	}
	authURL := func(hint string) string {
		return r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("login_hint", hint))
	}

	browser := s.browser()
	p := loginPage(browser, authURL("alice"))
	f := parseForm(t, p.body, p.url)
	if got := f.values.Get("username"); got != "alice" {
		t.Fatalf("username input = %q, want the login_hint alice", got)
	}
	if back := submit(t, browser, f, map[string]string{"password": e2ePassword}); back.location == nil || back.location.Query().Get("code") == "" {
		t.Fatalf("signing in with the prefilled username: %d %v", back.status, back.location)
	}

	hostile := `"><script>alert(1)</script>`
	p = loginPage(s.browser(), authURL(hostile))
	if got := parseForm(t, p.body, p.url).values.Get("username"); got != hostile || strings.Contains(p.body, "<script>alert") {
		t.Fatalf("a hint with markup: username = %q, page escapes it: %v", got, !strings.Contains(p.body, "<script>alert"))
	}
	p = loginPage(s.browser(), authURL(strings.Repeat("a", 300)))
	if got := parseForm(t, p.body, p.url).values.Get("username"); got != "" {
		t.Fatalf("an overlong hint filled the username with %d characters", len(got))
	}

	// A pushed request (RFC 9126) carries its login_hint too.
	verifier := oauth2.GenerateVerifier()
	status, body := s.push(t, "hinted", secret, url.Values{
		"client_id": {"hinted"}, "response_type": {"code"}, "redirect_uri": {redirectURI}, "scope": {"openid"},
		"state": {"pushed-state"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
		"login_hint": {"alice"},
	})
	uri, _ := body["request_uri"].(string)
	if status != http.StatusCreated || uri == "" {
		t.Fatalf("push: %d %v", status, body)
	}
	p = loginPage(s.browser(), s.issuer+provider.AuthorizePath+"?"+url.Values{"client_id": {"hinted"}, "request_uri": {uri}}.Encode())
	if got := parseForm(t, p.body, p.url).values.Get("username"); got != "alice" {
		t.Fatalf("pushed request: username input = %q, want alice", got)
	}
}

// In a real browser: the app's login_hint is in the username field, the
// focus waits in the password field, and typing the password and Enter
// signs in and returns to the app.
func TestLoginHintInBrowser(t *testing.T) {
	t.Parallel()
	if chromiumPath() == "" && os.Getenv("CI") != "true" {
		t.Skip("chromium is not installed (apt-get install chromium): browser tests skipped")
	}
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	s.user("hinted-alice")
	app := s.webAppWith(t, "party-hint", true)
	b := newBrowser(t)
	b.open(app.conf.AuthCodeURL(app.state, oauth2.S256ChallengeOption(app.verifier), oauth2.SetAuthURLParam("login_hint", "hinted-alice")))
	got := value(b, chromedp.Evaluate[string](`document.getElementById("username").value + "|" + document.activeElement.id`))
	if got != "hinted-alice|password" {
		t.Fatalf("username value | focused field = %q, want hinted-alice|password", got)
	}
	b.run(chromedp.KeyEvent(e2ePassword), chromedp.KeyEvent(kb.Enter))
	if tok := app.finish(t, b); tok.AccessToken == "" {
		t.Fatal("no access token after signing in with the hinted username")
	}
}
