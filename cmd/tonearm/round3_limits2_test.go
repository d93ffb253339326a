package main

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/totp"
)

// Issue 31 (limits2) item 1: a wrong current password typed anywhere
// (the /api/me password change and deletion, the account page's forms) is
// a signin.failed event for the account, saying where it was typed, as
// docs/security.md promises; only the sign-in's were recorded.
func TestWrongPasswordsEverywhereAreAudited(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		u := s.user("wanda")
		api := s.loginBrowser("wanda")
		s.want(s.call(api, http.MethodPost, "/api/me/password", "", map[string]string{"currentPassword": "wrong-password-1", "newPassword": "another-pass-99"}), http.StatusForbidden)
		s.want(s.call(api, http.MethodDelete, "/api/me", "", map[string]string{"password": "wrong-password-2"}), http.StatusForbidden)
		// A fresh sign-in needs no password for a new email, but one typed
		// is checked: a wrong one refuses the change (and is recorded), it
		// is not ignored.
		s.want(s.call(api, http.MethodPatch, "/api/me", "", map[string]string{"email": "wanda@example.org", "currentPassword": "wrong-password-5"}), http.StatusForbidden)
		if got, _ := s.app.store.GetUser(context.Background(), u.ID); got.Email != "" {
			t.Fatalf("a wrong current password changed the email to %q", got.Email)
		}

		b := s.browser()
		s.signInPage(t, b, "wanda")
		f := accountForm(t, get(t, b, s.issuer+"/account"), "/account/password")
		if p := submit(t, b, f, map[string]string{"password_current": "wrong-password-3", "new_password": e2ePassword + "-new"}); p.status != http.StatusForbidden {
			t.Fatalf("/account/password with a wrong password: %d", p.status)
		}
		f = accountForm(t, get(t, b, s.issuer+"/account"), "/account/delete")
		if p := submit(t, b, f, map[string]string{"delete_password": "wrong-password-4", "confirm": "yes"}); p.status != http.StatusForbidden {
			t.Fatalf("/account/delete with a wrong password: %d", p.status)
		}

		var purposes []string
		for _, e := range eventsOf(s.events(t, "type=signin.failed&user="+u.ID)) {
			d, _ := e["detail"].(map[string]any)
			p, _ := d["purpose"].(string)
			purposes = append(purposes, p)
		}
		sort.Strings(purposes)
		if got := strings.Join(purposes, ","); got != "account_delete,account_delete,email_change,password_change,password_change" {
			t.Fatalf("signin.failed purposes = %q, want two password changes, two deletions and an email change", got)
		}
		if p := get(t, b, s.issuer+"/account"); strings.Count(p.body, "Wrong password entered") != 5 {
			t.Fatalf("the account's recent activity shows %d wrong passwords, want 5", strings.Count(p.body, "Wrong password entered"))
		}
	})
}

// submitWithHeader is submit that also returns the answer's headers.
func submitWithHeader(t testing.TB, c *http.Client, f *form, set map[string]string) (page, http.Header) {
	t.Helper()
	v := url.Values{}
	for k, vals := range f.values {
		v[k] = append([]string(nil), vals...)
	}
	for k, val := range set {
		v.Set(k, val)
	}
	resp, err := c.PostForm(f.action, v)
	if err != nil {
		t.Fatal(err)
	}
	h := resp.Header
	return read(t, resp), h
}

// wantThrottled fails unless p is a 429 with a Retry-After of 1 to max
// seconds (docs/security.md) and body says what.
func wantThrottled(t *testing.T, where string, p page, h http.Header, max int, says string) {
	t.Helper()
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if p.status != http.StatusTooManyRequests || err != nil || n < 1 || n > max {
		t.Fatalf("%s throttled: %d, Retry-After %q (want 429 with 1..%d)", where, p.status, h.Get("Retry-After"), max)
	}
	if !strings.Contains(p.body, says) {
		t.Fatalf("%s throttled: the page does not say %q", where, says)
	}
}

// Issue 31 (limits2) item 2: every page that reports a sign-in limit
// answers 429 with Retry-After, as docs/security.md says: the stand-alone
// sign-in page, the authorization request's password step and the account
// page's password change answered 401, 401 and 403 without it, the
// second-factor step 429 without it; and the code step's message spoke of
// passwords.
func TestThrottledPagesAnswer429(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		clock := newFrozenClock() // no window ends during the test
		s := startE2EConfig(t, dbURL, options{now: clock.now}, behindProxy)
		s.client(clients.Spec{ID: "app", Public: true, FirstParty: true, GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "profile"}})

		// The second-factor step: 10 wrong codes from this address for
		// the account, then the 11th is refused.
		s.user("tom")
		owner := s.browser()
		s.signInPage(t, owner, "tom")
		secret, _ := enrolTOTP(t, s, owner, clock)
		clock.advance(totp.Period)
		b := s.browser()
		sf, _ := toSecondFactor(t, b, s.rp("app", "", "profile"), "tom")
		form := parseForm(t, sf.body, sf.url)
		for i := range 10 {
			if p := submit(t, b, form, map[string]string{"totp_code": wrongCode(secret, clock.now())}); p.status != http.StatusUnauthorized {
				t.Fatalf("wrong code %d: %d", i+1, p.status)
			}
		}
		p, h := submitWithHeader(t, b, form, map[string]string{"totp_code": wrongCode(secret, clock.now())})
		wantThrottled(t, "the second-factor step", p, h, 15*60, "Too many wrong codes")

		// Passwords: 10 wrong current passwords on /account/password from
		// this address, then every password step from it is refused.
		s.user("tess")
		acct := s.browser()
		s.signInPage(t, acct, "tess")
		for i := range 10 {
			f := accountForm(t, get(t, acct, s.issuer+"/account"), "/account/password")
			if p := submit(t, acct, f, map[string]string{"password_current": "wrong-password", "new_password": e2ePassword + "-new"}); p.status != http.StatusForbidden {
				t.Fatalf("wrong current password %d: %d", i+1, p.status)
			}
		}
		f := accountForm(t, get(t, acct, s.issuer+"/account"), "/account/password")
		p, h = submitWithHeader(t, acct, f, map[string]string{"password_current": "wrong-password", "new_password": e2ePassword + "-new"})
		wantThrottled(t, "/account/password", p, h, 15*60, "Too many failed password attempts")
		f = accountForm(t, get(t, acct, s.issuer+"/account"), "/account/delete")
		p, h = submitWithHeader(t, acct, f, map[string]string{"delete_password": "wrong-password", "confirm": "yes"})
		wantThrottled(t, "/account/delete", p, h, 15*60, "Too many failed password attempts")

		c := s.browser()
		login := get(t, c, s.issuer+"/login")
		p, h = submitWithHeader(t, c, parseForm(t, login.body, login.url), map[string]string{"username": "tess", "password": e2ePassword})
		wantThrottled(t, "POST /login", p, h, 15*60, "Too many failed password attempts")

		r := s.rp("app", "", "profile")
		login = get(t, c, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oidc.Nonce(random(t))))
		p, h = submitWithHeader(t, c, parseForm(t, login.body, login.url), map[string]string{"username": "tess", "password": e2ePassword})
		wantThrottled(t, "the authorization request's password step", p, h, 15*60, "Too many failed password attempts")
	})
}

// Issue 31 (limits2) item 6: for an account with an authenticator app,
// the password step alone is not a sign-in. The account's recent activity
// said "Signed in" for an address that passed only the password and then
// gave a wrong code or none; it now says the password was right and the
// code was asked, shows the wrong code, and says "Signed in" once the code
// passed.
func TestActivityPasswordStepIsNotASignIn(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		clock := newFrozenClock()
		s := startE2EConfig(t, dbURL, options{now: clock.now}, behindProxy)
		s.client(clients.Spec{ID: "app", Public: true, FirstParty: true, GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "profile"}})
		s.user("una")
		owner := s.browser()
		s.signInPage(t, owner, "una")
		secret, _ := enrolTOTP(t, s, owner, clock)
		clock.advance(totp.Period)
		signedIn := func() int {
			t.Helper()
			return strings.Count(get(t, owner, s.issuer+"/account").body, "<td>Signed in")
		}
		before := signedIn() // the owner's own sign-in

		// Someone with the password: one gives a wrong code, one none.
		b := s.browser()
		sf, _ := toSecondFactor(t, b, s.rp("app", "", "profile"), "una")
		submit(t, b, parseForm(t, sf.body, sf.url), map[string]string{"totp_code": wrongCode(secret, clock.now())})
		toSecondFactor(t, s.browser(), s.rp("app", "", "profile"), "una")
		page := get(t, owner, s.issuer+"/account").body
		if n := signedIn(); n != before {
			t.Fatalf("password steps without a code show as %d more sign-ins", n-before)
		}
		if strings.Count(page, "Right password entered") != 2 || !strings.Contains(page, "Wrong second-factor code entered") {
			t.Fatalf("recent activity does not tell of the password steps and the wrong code:\n%s", page)
		}

		// The code passes: a sign-in.
		c := s.browser()
		sf, _ = toSecondFactor(t, c, s.rp("app", "", "profile"), "una")
		clock.advance(totp.Period)
		submit(t, c, parseForm(t, sf.body, sf.url), map[string]string{"totp_code": clock.code(secret)})
		if !strings.Contains(get(t, owner, s.issuer+"/account").body, "Signed in with the authenticator app") {
			t.Fatal("the completed sign-in is not in the recent activity")
		}
	})
}

// Issue 31 (limits2) item 3, the same rounding on the protocol side: the
// device authorization endpoint's Retry-After was the wait's whole seconds
// plus one, so a wait of exactly 900 s (a window just started, the clock
// standing still) said 901, past the window.
func TestDeviceStartRetryAfterWithinWindow(t *testing.T) {
	t.Parallel()
	clock := newFrozenClock()
	s := startE2EConfig(t, "sqlite://"+filepath.Join(t.TempDir(), "tonearm.db"), options{now: clock.now}, nil)
	s.client(clients.Spec{ID: "scrobbler", Public: true, RedirectURIs: []string{}, GrantTypes: []string{clients.DeviceCodeGrant}, Scopes: []string{"openid"}})
	for i := 0; ; i++ {
		req, _ := http.NewRequest(http.MethodPost, s.issuer+provider.DeviceAuthorizationPath,
			strings.NewReader(url.Values{"client_id": {"scrobbler"}, "scope": {"openid"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			if got := resp.Header.Get("Retry-After"); got != "900" {
				t.Fatalf("Retry-After %q with the window just started, want 900", got)
			}
			return
		}
		if resp.StatusCode != http.StatusOK || i > 60 {
			t.Fatalf("device authorization %d: %d (not limited)", i, resp.StatusCode)
		}
	}
}
