package main

import (
	"context"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/totp"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// frozenClock is a fixed time the test moves by hand.
type frozenClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFrozenClock() *frozenClock {
	// Five seconds into a 30-second step (codes are those of one step),
	// twenty minutes back: the test moves it forward, and what it signs
	// must never be from the future.
	return &frozenClock{t: time.Now().Add(-20 * time.Minute).Truncate(totp.Period).Add(5 * time.Second)}
}

func (c *frozenClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *frozenClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *frozenClock) code(secret []byte) string { return totp.Code(secret, totp.Step(c.now())) }

var (
	totpSecretRe   = regexp.MustCompile(`id="totp_secret">([A-Z2-7]+)<`)
	recoveryCodeRe = regexp.MustCompile(`<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>`)
)

// enrolTOTP sets up an authenticator app on /account as a person does:
// reading the key in totp_secret, typing the app's code. It returns the
// key and the recovery codes shown.
func enrolTOTP(t *testing.T, s *server, b *http.Client, clock *frozenClock) ([]byte, []string) {
	t.Helper()
	acct := get(t, b, s.issuer+"/account")
	m := totpSecretRe.FindStringSubmatch(acct.body)
	if m == nil || !strings.Contains(acct.body, "<svg") {
		t.Fatalf("no key or QR code on /account:\n%s", acct.body)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	p := submit(t, b, accountForm(t, acct, "/account/totp/enrol"), map[string]string{"totp_code": clock.code(secret)})
	var codes []string
	for _, c := range recoveryCodeRe.FindAllStringSubmatch(p.body, -1) {
		codes = append(codes, c[1])
	}
	if p.status != http.StatusOK || len(codes) != accounts.RecoveryCodes {
		t.Fatalf("enrolment: %d, %d codes\n%s", p.status, len(codes), p.body)
	}
	return secret, codes
}

// toSecondFactor starts an app's sign-in with a password and returns the
// second-factor page.
func toSecondFactor(t *testing.T, b *http.Client, r *rp, username string, opts ...oauth2.AuthCodeOption) (page, string) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	opts = append(opts, oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(t)))
	login := get(t, b, r.conf.AuthCodeURL(random(t), opts...))
	p := submit(t, b, parseForm(t, login.body, login.url), map[string]string{"username": username, "password": e2ePassword})
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="totp_code"`) || !strings.Contains(p.body, `name="recovery_code"`) {
		t.Fatalf("expected the second-factor step: %d\n%s", p.status, p.body)
	}
	return p, verifier
}

func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	return c
}

func TestSecondFactor(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		clock := newFrozenClock()
		s := startE2E(t, dbURL, options{now: clock.now})
		tina := s.user("tina")
		s.client(clients.Spec{ID: "app", Public: true, FirstParty: true, GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "profile"}})
		r := s.rp("app", "", "profile")
		var disc struct {
			ACRValues []string `json:"acr_values_supported"`
			Claims    []string `json:"claims_supported"`
		}
		if err := r.provider.Claims(&disc); err != nil || !slices.Equal(disc.ACRValues, []string{accounts.ACRMultiFactor}) || !slices.Contains(disc.Claims, "acr") {
			t.Fatalf("discovery: %+v %v", disc, err)
		}

		// Enrolment: a wrong code first (nothing stored), then the app's.
		b := s.browser()
		s.signInPage(t, b, "tina")
		acct := get(t, b, s.issuer+"/account")
		bad := submit(t, b, accountForm(t, acct, "/account/totp/enrol"), map[string]string{"totp_code": "000000"})
		if bad.status != http.StatusUnauthorized || !strings.Contains(bad.body, `id="totp-error"`) {
			t.Fatalf("a wrong enrolment code: %d\n%s", bad.status, bad.body)
		}
		if u, _ := s.app.store.GetUser(ctx, tina.ID); u.TOTPSecret != nil {
			t.Fatal("a wrong code stored the key")
		}
		secret, codes := enrolTOTP(t, s, b, clock)
		u, _ := s.app.store.GetUser(ctx, tina.ID)
		if !accounts.HasTOTP(u) || strings.Contains(string(u.TOTPSecret), string(secret)) {
			t.Fatalf("the key is not stored sealed: %x", u.TOTPSecret)
		}

		// Signing in to an app: the password opens no session; the code
		// of the step the enrolment used is refused (used once); the next
		// step's code signs in with amr pwd otp mfa and the acr.
		b2 := s.browser()
		sf, verifier := toSecondFactor(t, b2, r, "tina")
		if p := get(t, b2, s.issuer+"/account"); !strings.Contains(p.url.Path, "/login") {
			t.Fatalf("a password alone opened a session: %s", p.url)
		}
		form := parseForm(t, sf.body, sf.url)
		if p := submit(t, b2, form, map[string]string{"totp_code": clock.code(secret)}); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "used already") {
			t.Fatalf("a replayed step: %d\n%s", p.status, p.body)
		}
		clock.advance(totp.Period)
		landed := submit(t, b2, form, map[string]string{"totp_code": clock.code(secret)})
		idt, claims := finishAt(t, r, landed, verifier)
		if idt.Subject != tina.ID || !slices.Equal(amrValues(claims), []string{"pwd", "otp", "mfa"}) || claims["acr"] != accounts.ACRMultiFactor {
			t.Fatalf("claims after two factors: %v", claims)
		}
		// The same code again, from another browser: refused.
		b3 := s.browser()
		sf3, verifier3 := toSecondFactor(t, b3, r, "tina")
		form3 := parseForm(t, sf3.body, sf3.url)
		if p := submit(t, b3, form3, map[string]string{"totp_code": clock.code(secret)}); p.status != http.StatusUnauthorized {
			t.Fatalf("a code used twice: %d\n%s", p.status, p.body)
		}
		// A recovery code works once.
		landed = submit(t, b3, form3, map[string]string{"recovery_code": strings.ToUpper(codes[0])})
		if idt, _ := finishAt(t, r, landed, verifier3); idt.Subject != tina.ID {
			t.Fatalf("recovery code sign-in: %s", idt.Subject)
		}
		b4 := s.browser()
		sf4, _ := toSecondFactor(t, b4, r, "tina")
		if p := submit(t, b4, parseForm(t, sf4.body, sf4.url), map[string]string{"recovery_code": codes[0]}); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "recovery code is wrong or used") {
			t.Fatalf("a recovery code used twice: %d\n%s", p.status, p.body)
		}
		if p := get(t, b3, s.issuer+"/account"); !strings.Contains(p.body, "9 recovery codes left") {
			t.Fatalf("the account page does not count the codes left:\n%s", p.body)
		}
		// The access token carries acr and auth_time for resource servers.
		rp2 := s.rp("app", "", "profile")
		b5 := s.browser()
		sf5, v5 := toSecondFactor(t, b5, rp2, "tina")
		clock.advance(totp.Period)
		landed = submit(t, b5, parseForm(t, sf5.body, sf5.url), map[string]string{"totp_code": clock.code(secret)})
		tok, err := rp2.conf.Exchange(rp2.ctx, landed.location.Query().Get("code"), oauth2.VerifierOption(v5))
		if err != nil {
			t.Fatal(err)
		}
		if at := jwtClaims(t, tok.AccessToken); at["acr"] != accounts.ACRMultiFactor || at["auth_time"] == nil {
			t.Fatalf("access token claims: %v", at)
		}
		// The User API's startSession is one factor: refused.
		s.want(s.call(nil, http.MethodPost, "/api/User/startSession", "", map[string]string{"username": "tina", "password": e2ePassword}), http.StatusUnauthorized)

		// Step-up within a session: b's session (a password, before the
		// app was set up) is asked for a code when the app sends
		// acr_values; prompt=none cannot.
		stepUp := oauth2.SetAuthURLParam("acr_values", accounts.ACRMultiFactor)
		none := get(t, b, r.conf.AuthCodeURL(random(t), stepUp, oauth2.SetAuthURLParam("prompt", "none"), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if none.location == nil || none.location.Query().Get("error") != "interaction_required" {
			t.Fatalf("prompt=none with a step-up: %d %v", none.status, none.location)
		}
		v6 := oauth2.GenerateVerifier()
		p := get(t, b, r.conf.AuthCodeURL(random(t), stepUp, oauth2.S256ChallengeOption(v6), oidc.Nonce(random(t))))
		if !strings.Contains(p.body, `name="totp_code"`) {
			t.Fatalf("step-up within a session: %d\n%s", p.status, p.body)
		}
		clock.advance(totp.Period)
		_, claims = finishAt(t, r, submit(t, b, parseForm(t, p.body, p.url), map[string]string{"totp_code": clock.code(secret)}), v6)
		if claims["acr"] != accounts.ACRMultiFactor {
			t.Fatalf("after the step-up: %v", claims)
		}

		// An account without a second factor: a page says so, and the app
		// hears unmet_authentication_requirements.
		s.user("sam")
		bs := s.browser()
		s.signInPage(t, bs, "sam")
		p = get(t, bs, r.conf.AuthCodeURL(random(t), stepUp, oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if !strings.Contains(p.body, `id="no-second-factor"`) {
			t.Fatalf("step-up without a second factor: %d\n%s", p.status, p.body)
		}
		back := submit(t, bs, parseForm(t, p.body, p.url), nil)
		if back.location == nil || back.location.Query().Get("error") != "unmet_authentication_requirements" {
			t.Fatalf("unmet: %d %v\n%s", back.status, back.location, back.body)
		}

		// Audit events.
		seen := map[string]bool{}
		events, _ := s.app.store.ListEvents(ctx, storage.EventFilter{User: tina.ID, Limit: 200})
		for _, e := range events {
			seen[e.Type] = true
		}
		for _, typ := range []string{audit.SecondFactorEnrolled, audit.SecondFactorFailed, audit.RecoveryCodeUsed} {
			if !seen[typ] {
				t.Errorf("no %s event", typ)
			}
		}

		// Wrong codes count with wrong passwords: after a few, this address
		// is throttled for tina, for codes and passwords alike.
		b7 := s.browser()
		sf7, _ := toSecondFactor(t, b7, r, "tina")
		form7 := parseForm(t, sf7.body, sf7.url)
		throttled := false
		for i := 0; i < 12 && !throttled; i++ {
			p := submit(t, b7, form7, map[string]string{"totp_code": "000000"})
			throttled = p.status == http.StatusTooManyRequests
		}
		if !throttled {
			t.Fatal("wrong codes were never throttled")
		}
		bl := s.browser()
		login := get(t, bl, s.issuer+"/login")
		if p := submit(t, bl, parseForm(t, login.body, login.url), map[string]string{"username": "tina", "password": e2ePassword}); !strings.Contains(p.body, "Too many") {
			t.Fatalf("the password is not throttled after wrong codes: %d\n%s", p.status, p.body)
		}

		// Removing the app: the password or a current code (once the
		// throttling window has passed).
		clock.advance(web.LoginWindow + totp.Period)
		acct = get(t, b, s.issuer+"/account")
		if p := submit(t, b, accountForm(t, acct, "/account/totp/remove"), map[string]string{"password": "not-the-password"}); p.status != http.StatusForbidden {
			t.Fatalf("removal with a wrong password: %d", p.status)
		}
		if p := submit(t, b, accountForm(t, acct, "/account/totp/remove"), map[string]string{"totp_code": clock.code(secret)}); p.status != http.StatusOK || !strings.Contains(p.body, "authenticator app is removed") {
			t.Fatalf("removal: %d\n%s", p.status, p.body)
		}
		if u, _ := s.app.store.GetUser(ctx, tina.ID); accounts.HasTOTP(u) {
			t.Fatal("the key stayed")
		}
		if n, _ := s.app.store.CountRecoveryCodes(ctx, tina.ID); n != 0 {
			t.Fatalf("%d recovery codes stayed", n)
		}
	})
}

// TONEARM_ADMIN_MFA=required: an admin without a second factor reaches
// /account to set one up and nothing of the console or the admin API
// (with one, a one-factor sign-in steps up first);
// admins remove a user's second factor, ending their sessions.
func TestAdminMFAPolicy(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		clock := newFrozenClock()
		s := startE2EConfig(t, dbURL, options{now: clock.now}, func(c *config.Config) { c.AdminMFA = "required" })
		if _, err := s.app.accounts.Create(ctx, accounts.NewUser{Username: "root", Password: e2ePassword, Role: storage.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
		b := s.browser()
		s.signInPage(t, b, "root")
		p := get(t, b, s.issuer+"/admin/users")
		if p.url.Path != "/account" || !strings.Contains(p.body, `id="mfa-required"`) {
			t.Fatalf("an admin without a second factor reached %s:\n%s", p.url, p.body)
		}
		token := s.userToken("root", "admin")
		s.want(s.call(nil, http.MethodGet, "/api/admin/users", token, nil), http.StatusForbidden)
		// Client credentials act for their client: not concerned.
		s.want(s.call(nil, http.MethodGet, "/api/admin/users", s.opsToken(), nil), http.StatusOK)

		// Owning a second factor is not using it: the password-only
		// session steps up with a code (round3_adminmfa_test.go has more).
		secret, _ := enrolTOTP(t, s, b, clock)
		step := get(t, b, s.issuer+"/admin/users")
		if !strings.Contains(step.body, `id="step-up"`) {
			t.Fatalf("after enrolment, the one-factor session: %d %s", step.status, step.url)
		}
		clock.advance(totp.Period)
		if p := submit(t, b, parseForm(t, step.body, step.url), map[string]string{"totp_code": clock.code(secret)}); p.status != http.StatusOK || p.url.Path != "/admin/users" {
			t.Fatalf("after the step-up: %d %s", p.status, p.url)
		}
		s.want(s.call(nil, http.MethodGet, "/api/admin/users", token, nil), http.StatusForbidden)

		// An admin removes a user's second factor.
		lost := s.user("lost")
		lb := s.browser()
		s.signInPage(t, lb, "lost")
		enrolTOTP(t, s, lb, clock)
		s.want(s.call(nil, http.MethodDelete, "/api/admin/users/"+lost.ID+"/second-factor", s.opsToken(), nil), http.StatusOK)
		if u, _ := s.app.store.GetUser(ctx, lost.ID); accounts.HasTOTP(u) {
			t.Fatal("the admin API left the key")
		}
		if p := get(t, lb, s.issuer+"/account"); !strings.Contains(p.url.Path, "/login") {
			t.Fatalf("the user's session survived: %s", p.url)
		}
		s.want(s.call(nil, http.MethodDelete, "/api/admin/users/"+lost.ID+"/second-factor", s.opsToken(), nil), http.StatusNotFound)
		// And in the console.
		s.signInPage(t, lb, "lost")
		enrolTOTP(t, s, lb, clock)
		userPage := get(t, b, s.issuer+"/admin/users/"+lost.ID)
		done := submit(t, b, accountForm(t, userPage, "/admin/users/"+lost.ID+"/remove-second-factor"), map[string]string{"confirm": "yes"})
		if u, _ := s.app.store.GetUser(ctx, lost.ID); done.status != http.StatusOK || accounts.HasTOTP(u) {
			t.Fatalf("console removal: %d\n%s", done.status, done.body)
		}
	})
}

// In Chromium: set up an authenticator app on /account (reading the key
// in totp_secret as a person types it into the app), sign out, and sign
// in to an app with the password and a code.
func browserSecondFactor(t *testing.T, s *server) {
	u := s.user("two-factor")
	app := s.webAppWith(t, "party-2fa", true)
	b := newBrowser(t)
	b.signIn(s, u.Username, e2ePassword)
	key := value(b, chromedp.Text(chromedp.CSS("#totp_secret")))
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimSpace(key))
	if err != nil {
		t.Fatalf("totp_secret %q: %v", key, err)
	}
	b.run(chromedp.SetValue(chromedp.CSS("#totp_code"), totp.Code(secret, totp.Step(time.Now()))),
		chromedp.Click(chromedp.CSS(`form[action$="/account/totp/enrol"] button`)), chromedp.WaitVisible(chromedp.CSS("#recovery-codes")))
	b.wantText("10 recovery codes left")
	// Sign out (the header's link, then the confirmation).
	b.open(s.issuer + provider.LogoutPath)
	b.run(chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	b.wantText("signed out")
	b.open(app.authURL())
	b.run(fill(map[string]string{"username": u.Username, "password": e2ePassword}), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#totp_code")))
	// The next step's code: the enrolment spent this one's.
	b.run(chromedp.SetValue(chromedp.CSS("#totp_code"), totp.Code(secret, totp.Step(time.Now())+1)),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	tok := app.finish(t, b)
	claims := idClaims(t, tok.Extra("id_token").(string))
	if claims["sub"] != u.ID || claims["acr"] != accounts.ACRMultiFactor {
		t.Fatalf("ID token claims = %v", claims)
	}
}

// Step-up for an account without an app, where passkeys are on: the page
// offers to sign in again with a passkey (two factors by itself), which
// takes the person back to the sign-in page of the same interaction.
func TestStepUpOffersAPasskey(t *testing.T) {
	t.Parallel()
	s := startPasskeyServer(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"))
	s.user("pia")
	s.client(clients.Spec{ID: "app", Public: true, FirstParty: true, GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "profile"}})
	r := s.rp("app", "", "profile")
	b := s.browser()
	s.signInPage(t, b, "pia")
	p := get(t, b, r.conf.AuthCodeURL(random(t), oauth2.SetAuthURLParam("acr_values", accounts.ACRMultiFactor), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if !strings.Contains(p.body, `id="no-second-factor"`) || !strings.Contains(p.body, `id="use-passkey"`) {
		t.Fatalf("step-up page: %d\n%s", p.status, p.body)
	}
	i := strings.Index(p.body, `value="passkey"`)
	start := strings.LastIndex(p.body[:i], "<form")
	back := submit(t, b, parseForm(t, p.body[start:], p.url), nil)
	if !strings.Contains(back.body, `name="password"`) || !strings.Contains(back.body, `id="passkey_login"`) || !strings.Contains(back.url.Path, "/interaction/") {
		t.Fatalf("after choosing a passkey: %d %s\n%s", back.status, back.url, back.body)
	}
}
