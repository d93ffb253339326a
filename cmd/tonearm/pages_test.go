package main

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// The pages' guard rails, attacked with a plain HTTP client (the browser
// tests walk the happy paths).

func userCount(t *testing.T, s *server) int {
	t.Helper()
	users, err := s.app.store.ListUsers(context.Background(), storage.UserFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(users)
}

// signInPage signs a cookie-keeping client in on the stand-alone page.
func (s *server) signInPage(t *testing.T, c *http.Client, username string) page {
	t.Helper()
	p := get(t, c, s.issuer+"/login")
	return submit(t, c, parseForm(t, p.body, p.url), map[string]string{"username": username, "password": e2ePassword})
}

func TestSignupPage(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		c := s.browser()
		before := userCount(t, s)

		// No CSRF token, or another browser's: refused, nothing written.
		resp, err := c.PostForm(s.issuer+"/signup", url.Values{"username": {"mallory"}, "password": {"long-enough-password"}})
		if err != nil {
			t.Fatal(err)
		}
		if p := read(t, resp); p.status != http.StatusForbidden || userCount(t, s) != before {
			t.Fatalf("sign-up without CSRF: %d, %d users", p.status, userCount(t, s))
		}

		// continue must be a path on this server: an absolute or
		// scheme-relative URL is dropped, never redirected to.
		for _, evil := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"} {
			p := get(t, c, s.issuer+"/signup?continue="+url.QueryEscape(evil))
			if p.status != http.StatusOK || strings.Contains(p.body, "evil.example") || strings.Contains(p.body, "javascript:") {
				t.Fatalf("continue=%q kept on the page:\n%s", evil, p.body)
			}
		}
		p := get(t, c, s.issuer+"/signup?continue="+url.QueryEscape("https://evil.example/"))
		f := parseForm(t, p.body, p.url)
		f.values.Set("continue", "//evil.example/x")
		p = submit(t, c, f, map[string]string{"username": "fresh", "password": "long-enough-password", "email": "fresh@example.org"})
		if p.status != http.StatusOK || p.url.Path != "/account" || !strings.Contains(p.body, "Welcome! Your account is ready.") {
			t.Fatalf("after sign-up: %d at %v:\n%s", p.status, p.url, p.body)
		}

		// Taken username, bad email: the messages of createUser, next to
		// their fields, and nothing written.
		before = userCount(t, s)
		other := s.browser()
		p = get(t, other, s.issuer+"/signup")
		p = submit(t, other, parseForm(t, p.body, p.url), map[string]string{"username": "FRESH", "password": "long-enough-password"})
		if p.status != http.StatusConflict || !strings.Contains(p.body, `id="username-error">Username is already taken.`) {
			t.Fatalf("taken username: %d\n%s", p.status, p.body)
		}
		p = submit(t, other, parseForm(t, p.body, p.url), map[string]string{"username": "newer", "password": "long-enough-password", "email": "fresh@example.org"})
		if p.status != http.StatusConflict || !strings.Contains(p.body, `id="email-error">Email already exists.`) {
			t.Fatalf("taken email: %d\n%s", p.status, p.body)
		}
		p = submit(t, other, parseForm(t, p.body, p.url), map[string]string{"username": "newer", "password": "long-enough-password", "email": "not-an-email"})
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="email-error">`) {
			t.Fatalf("bad email: %d\n%s", p.status, p.body)
		}
		if userCount(t, s) != before {
			t.Fatal("a refused sign-up wrote a user")
		}

		// Sign-ups are counted per address, in the database: ten
		// attempts that pass validation (three so far: one account, two
		// refusals) from one address in the window, then no more.
		for i := 0; ; i++ {
			p = submit(t, other, parseForm(t, p.body, p.url), map[string]string{"username": "fresh", "password": "long-enough-password", "email": ""})
			if p.status == http.StatusTooManyRequests {
				if i != 7 || !strings.Contains(p.body, "Too many") {
					t.Fatalf("throttled after %d attempts:\n%s", i, p.body)
				}
				break
			}
			if i > 12 {
				t.Fatal("sign-ups from one address are not limited")
			}
		}
	})
}

func TestSignupClosed(t *testing.T) {
	s := startE2EConfig(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{}, func(c *config.Config) { c.Registration = "admin" })
	c := s.browser()
	if p := get(t, c, s.issuer+"/signup"); p.status != http.StatusForbidden || !strings.Contains(p.body, "Registration is closed") {
		t.Fatalf("GET /signup with registration closed: %d\n%s", p.status, p.body)
	}
	if p := get(t, c, s.issuer+"/login"); strings.Contains(p.body, "/signup") {
		t.Fatal("the login page links to a closed sign-up")
	}
	s.client(clients.Spec{ID: "closed-app"})
	auth := s.issuer + provider.AuthorizePath + "?" + url.Values{"client_id": {"closed-app"}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"abcdefgh"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}.Encode()
	if p := get(t, c, auth); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) || strings.Contains(p.body, "/signup") {
		t.Fatalf("authorization login page with registration closed: %d\n%s", p.status, p.body)
	}
}

func TestAccountAndConsoleGuards(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		u := s.user("plain-user")
		if _, err := s.app.accounts.Create(context.Background(), accounts.NewUser{Username: "boss", Password: e2ePassword, Role: storage.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
		anon := s.browser()
		anon.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		for _, path := range []string{"/account", "/admin", "/admin/users"} {
			p := get(t, anon, s.issuer+path)
			if p.status != http.StatusSeeOther || p.location == nil || p.location.Path != "/login" || p.location.Query().Get("continue") != path {
				t.Fatalf("%s signed out: %d %v", path, p.status, p.location)
			}
		}

		// Someone guesses the user's password; the owner sees it in the
		// account's recent activity.
		guesser := s.browser()
		lp := get(t, guesser, s.issuer+"/login")
		if p := submit(t, guesser, parseForm(t, lp.body, lp.url), map[string]string{"username": u.Username, "password": "guess-one-two"}); p.status != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", p.status)
		}

		// A plain user reaches the account page, not the console.
		c := s.browser()
		if p := s.signInPage(t, c, u.Username); p.url.Path != "/account" || !strings.Contains(p.body, "Signed in as <strong>plain-user</strong>") {
			t.Fatalf("after sign-in: %v\n%s", p.url, p.body)
		}
		if p := get(t, c, s.issuer+"/admin/users"); p.status != http.StatusForbidden {
			t.Fatalf("console for a plain user: %d", p.status)
		}
		account := get(t, c, s.issuer+"/account")
		if !strings.Contains(account.body, "Wrong password entered") || !strings.Contains(account.body, "<td>Signed in</td>") {
			t.Fatalf("the account's recent activity does not show the guess:\n%s", account.body)
		}
		// Forms without the CSRF token change nothing.
		resp, err := c.PostForm(s.issuer+"/account/delete", url.Values{"delete_password": {e2ePassword}, "confirm": {"yes"}})
		if err != nil {
			t.Fatal(err)
		}
		if p := read(t, resp); p.status != http.StatusForbidden {
			t.Fatalf("account deletion without CSRF: %d", p.status)
		}
		if _, err := s.app.store.GetUser(context.Background(), u.ID); err != nil {
			t.Fatal("the account was deleted without a CSRF token")
		}

		// An admin's console actions need the CSRF token too; a plain
		// user's valid token does not open the console.
		boss := s.browser()
		s.signInPage(t, boss, "boss")
		resp, err = boss.PostForm(s.issuer+"/admin/users/"+u.ID+"/disable", url.Values{"confirm": {"yes"}})
		if err != nil {
			t.Fatal(err)
		}
		if p := read(t, resp); p.status != http.StatusForbidden {
			t.Fatalf("console action without CSRF: %d", p.status)
		}
		token := parseForm(t, account.body, account.url).values.Get("csrf_token")
		resp, err = c.PostForm(s.issuer+"/admin/users/"+u.ID+"/disable", url.Values{"confirm": {"yes"}, "csrf_token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		if p := read(t, resp); p.status != http.StatusForbidden {
			t.Fatalf("console action by a plain user: %d", p.status)
		}
		if got, _ := s.app.store.GetUser(context.Background(), u.ID); got.Disabled {
			t.Fatal("the user was disabled")
		}

		// Deleting the account needs the box ticked and the password.
		f := accountForm(t, account, "/account/delete")
		if p := submit(t, c, f, map[string]string{"delete_password": e2ePassword}); p.status != http.StatusBadRequest {
			t.Fatalf("deletion without the box: %d", p.status)
		}
		if p := submit(t, c, f, map[string]string{"delete_password": "wrong-password", "confirm": "yes"}); p.status != http.StatusForbidden ||
			!strings.Contains(p.body, "The current password is wrong.") {
			t.Fatalf("deletion with a wrong password: %d\n%s", p.status, p.body)
		}
		if p := submit(t, c, f, map[string]string{"delete_password": e2ePassword, "confirm": "yes"}); p.status != http.StatusOK || !strings.Contains(p.body, "Account deleted") {
			t.Fatalf("deletion: %d\n%s", p.status, p.body)
		}
		if _, err := s.app.store.GetUser(context.Background(), u.ID); err == nil {
			t.Fatal("the account survived its deletion")
		}
	})
}

// accountForm is the form of the account page that posts to action.
func accountForm(t *testing.T, p page, action string) *form {
	t.Helper()
	i := strings.Index(p.body, `action="`+action+`"`)
	if i < 0 {
		t.Fatalf("no form to %s on the page", action)
	}
	start := strings.LastIndex(p.body[:i], "<form")
	return parseForm(t, p.body[start:], p.url)
}

// The console creates a client with display metadata and shows its secret
// once; the secret works; the login page then shows the name.
func TestConsoleCreatesClient(t *testing.T) {
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	if _, err := s.app.accounts.Create(context.Background(), accounts.NewUser{Username: "boss", Password: e2ePassword, Role: storage.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	c := s.browser()
	s.signInPage(t, c, "boss")
	p := get(t, c, s.issuer+"/admin/clients")
	f := accountForm(t, p, "/admin/clients")
	bad := submit(t, c, f, map[string]string{"client_id": "scrobbler", "redirect_uris": "https://scrobbler.example/cb", "logo_uri": "javascript:alert(1)"})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "the logo must be an https URL") || !strings.Contains(bad.body, `value="scrobbler"`) {
		t.Fatalf("bad logo: %d\n%s", bad.status, bad.body)
	}
	f.values["grant_type"] = []string{"authorization_code", "refresh_token"}
	p = submit(t, c, f, map[string]string{"client_id": "scrobbler", "redirect_uris": "https://scrobbler.example/cb\r\nhttp://127.0.0.1/cb",
		"name": "Scrobbler 3000", "logo_uri": "https://scrobbler.example/logo.png", "scope": "openid profile"})
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="client-secret"`) {
		t.Fatalf("create: %d\n%s", p.status, p.body)
	}
	i := strings.Index(p.body, `id="client-secret">`) + len(`id="client-secret">`)
	secret := p.body[i : i+strings.Index(p.body[i:], "<")]
	if again := get(t, c, s.issuer+"/admin/clients"); strings.Contains(again.body, secret) {
		t.Fatal("the secret is shown twice")
	}
	cl, err := s.app.store.GetClient(context.Background(), "scrobbler")
	if err != nil || cl.Name != "Scrobbler 3000" || len(cl.RedirectURIs) != 2 || cl.LogoURI != "https://scrobbler.example/logo.png" {
		t.Fatalf("stored client = %+v, %v", cl, err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.issuer+provider.IntrospectPath, strings.NewReader("token=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("scrobbler", secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if r := read(t, resp); r.status != http.StatusOK {
		t.Fatalf("the shown secret does not authenticate: %d %s", r.status, r.body)
	}
	auth := s.issuer + provider.AuthorizePath + "?" + url.Values{"client_id": {"scrobbler"}, "redirect_uri": {"https://scrobbler.example/cb"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"abcdefgh"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}.Encode()
	anon := s.browser()
	if p := get(t, anon, auth); !strings.Contains(p.body, "Scrobbler 3000") || !strings.Contains(p.body, `src="https://scrobbler.example/logo.png"`) {
		t.Fatalf("the login page does not show the client's name and logo:\n%s", p.body)
	}

	// Deleting needs the box; then the client is gone.
	p = get(t, c, s.issuer+"/admin/clients")
	del := accountForm(t, p, "/admin/clients/delete")
	if r := submit(t, c, del, nil); r.status != http.StatusBadRequest {
		t.Fatalf("delete without the box: %d", r.status)
	}
	if r := submit(t, c, del, map[string]string{"confirm": "yes"}); r.status != http.StatusOK || !strings.Contains(r.body, "The client is deleted") {
		t.Fatalf("delete: %d\n%s", r.status, r.body)
	}
	if _, err := s.app.store.GetClient(context.Background(), "scrobbler"); err == nil {
		t.Fatal("the client survived")
	}
}

// The account page's password form: a wrong current password changes
// nothing; the right one changes it, ends every other session and keeps
// this browser signed in.
func TestAccountPagePasswordChange(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("quill")
		b, other := s.browser(), s.browser()
		s.signInPage(t, b, "quill")
		s.signInPage(t, other, "quill")
		f := accountForm(t, get(t, b, s.issuer+"/account"), "/account/password")
		if p := submit(t, b, f, map[string]string{"password_current": "not-my-password", "new_password": e2ePassword + "-new"}); p.status != http.StatusForbidden || !strings.Contains(p.body, "current password is wrong") {
			t.Fatalf("wrong current password: %d", p.status)
		}
		f = accountForm(t, get(t, b, s.issuer+"/account"), "/account/password")
		if p := submit(t, b, f, map[string]string{"password_current": e2ePassword, "new_password": e2ePassword + "-new"}); p.url.Query().Get("done") != "password" {
			t.Fatalf("password change: %d %v", p.status, p.url)
		}
		if p := get(t, other, s.issuer+"/account"); !strings.HasSuffix(p.url.Path, "/login") {
			t.Fatalf("the other session survived: %v", p.url)
		}
		if p := s.signInPage(t, s.browser(), "quill"); p.status != http.StatusUnauthorized {
			t.Fatalf("the old password still works: %d", p.status)
		}
		c := s.browser()
		p := get(t, c, s.issuer+"/login")
		if p = submit(t, c, parseForm(t, p.body, p.url), map[string]string{"username": "quill", "password": e2ePassword + "-new"}); !strings.HasSuffix(p.url.Path, "/account") {
			t.Fatalf("the new password: %d %v", p.status, p.url)
		}
	})
}
