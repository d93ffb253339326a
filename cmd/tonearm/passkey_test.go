package main

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// startPasskeyServer is startE2E under a domain name: WebAuthn refuses IP
// addresses as relying-party IDs, so the issuer is http://localhost:PORT
// (a secure context for browsers, like https).
func startPasskeyServer(t *testing.T, dbURL string) *server {
	t.Helper()
	return startPasskeyServerWith(t, dbURL, options{})
}

func startPasskeyServerWith(t *testing.T, dbURL string, opt options) *server {
	t.Helper()
	return startE2EConfig(t, dbURL, opt, func(c *config.Config) {
		c.Issuer = strings.Replace(c.Issuer, "127.0.0.1", "localhost", 1)
	})
}

// passkeyOptions asks for the options of a ceremony as the pages' script
// does: a POST with the page's CSRF token.
func (s *server) passkeyOptions(t *testing.T, c *http.Client, path, csrf string) page {
	t.Helper()
	resp, err := c.PostForm(s.issuer+path, url.Values{"csrf_token": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

// addPasskey adds a passkey made by answer to the account the browser is
// signed in to, and returns the answer and the page it led to.
func (s *server) addPasskey(t *testing.T, c *http.Client, name string, answer func(webauthnOptions) string) (string, page) {
	t.Helper()
	f := accountForm(t, get(t, c, s.issuer+"/account"), "/account/passkeys/add")
	o := s.passkeyOptions(t, c, "/account/passkeys/options", f.values.Get("csrf_token"))
	if o.status != http.StatusOK {
		t.Fatalf("registration options: %d %s", o.status, o.body)
	}
	a := answer(parseOptions(t, o.body))
	return a, submit(t, c, f, map[string]string{"passkey_name": name, "passkey_attestation": a})
}

// passkeyLogin answers the sign-in page p (of an authorization request or
// the stand-alone one) with a passkey, as the script does.
func (s *server) passkeyLogin(t *testing.T, c *http.Client, p page, answer func(webauthnOptions) string) page {
	t.Helper()
	if !strings.Contains(p.body, `id="passkey_login"`) {
		t.Fatalf("no passkey button on the sign-in page:\n%s", p.body)
	}
	f := parseForm(t, p.body, p.url)
	o := s.passkeyOptions(t, c, web.PasskeyOptionsPath, f.values.Get("csrf_token"))
	if o.status != http.StatusOK {
		t.Fatalf("sign-in options: %d %s", o.status, o.body)
	}
	return submit(t, c, f, map[string]string{web.PasskeyAssertionField: answer(parseOptions(t, o.body))})
}

func cspOf(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Content-Security-Policy")
}

func amrOf(t *testing.T, tok *oauth2.Token) []any {
	t.Helper()
	amr, _ := idClaims(t, tok.Extra("id_token").(string))["amr"].([]any)
	return amr
}

// Passkeys end to end over HTTP, with a software authenticator playing
// both the owner and the attacker.
func TestPasskeys(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		mail := newCaptureMailer()
		s := startPasskeyServerWith(t, dbURL, options{mailer: mail})
		alice := s.user("alice")
		mallory := s.user("mallory")
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
		r := s.rp("web", secret)

		// The sign-in pages offer passkeys and may run the one script;
		// other pages run none.
		if csp := cspOf(t, s.issuer+"/login"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Fatalf("login CSP = %q", csp)
		}
		if csp := cspOf(t, s.issuer+web.ForgotPath); strings.Contains(csp, "script-src") {
			t.Fatalf("a page without passkeys allows script: %q", csp)
		}
		if js := get(t, http.DefaultClient, s.issuer+"/static/passkey.js"); js.status != http.StatusOK || !strings.Contains(js.body, "navigator.credentials") {
			t.Fatalf("passkey.js: %d", js.status)
		}
		// Options need the page's CSRF token.
		if o := s.passkeyOptions(t, s.browser(), web.PasskeyOptionsPath, "forged"); o.status != http.StatusForbidden {
			t.Fatalf("options without a CSRF token: %d", o.status)
		}

		// Alice signs in with her password and adds a passkey.
		b := s.browser()
		s.signInPage(t, b, "alice")
		key := newSoftKey(t, s.issuer)
		var opts webauthnOptions
		attestation, done := s.addPasskey(t, b, "Laptop", func(o webauthnOptions) string { opts = o; return key.create(o) })
		if done.url.Query().Get("done") != "passkey-added" {
			t.Fatalf("adding a passkey: %d %v\n%s", done.status, done.url, done.body)
		}
		ps := opts.PublicKey
		if ps.RP.ID != "localhost" || ps.AuthenticatorSelection.ResidentKey != "required" || ps.AuthenticatorSelection.UserVerification != "required" ||
			string(key.handle) != alice.ID {
			t.Fatalf("registration options = %+v", ps)
		}
		if acct := get(t, b, s.issuer+"/account"); !strings.Contains(acct.body, "Laptop") || !strings.Contains(acct.body, `id="add_passkey"`) {
			t.Fatal("the account page does not list the passkey")
		}
		// The same answer again: its challenge is spent.
		f := accountForm(t, get(t, b, s.issuer+"/account"), "/account/passkeys/add")
		if p := submit(t, b, f, map[string]string{"passkey_name": "Again", "passkey_attestation": attestation}); p.status != http.StatusBadRequest {
			t.Fatalf("replayed registration: %d", p.status)
		}
		// Answers from another origin, without user verification, or for
		// a ceremony that was someone else's are refused.
		evil := newSoftKey(t, "http://evil.example")
		if _, p := s.addPasskey(t, b, "Evil", evil.create); p.status != http.StatusBadRequest {
			t.Fatalf("registration from another origin: %d", p.status)
		}
		lazy := newSoftKey(t, s.issuer)
		lazy.noUV = true
		if _, p := s.addPasskey(t, b, "Lazy", lazy.create); p.status != http.StatusBadRequest {
			t.Fatalf("registration without user verification: %d", p.status)
		}
		mb := s.browser()
		s.signInPage(t, mb, "mallory")
		aliceOpts := s.passkeyOptions(t, b, "/account/passkeys/options", accountForm(t, get(t, b, s.issuer+"/account"), "/account/passkeys/add").values.Get("csrf_token"))
		mf := accountForm(t, get(t, mb, s.issuer+"/account"), "/account/passkeys/add")
		if p := submit(t, mb, mf, map[string]string{"passkey_attestation": newSoftKey(t, s.issuer).create(parseOptions(t, aliceOpts.body))}); p.status != http.StatusBadRequest {
			t.Fatalf("another account's ceremony: %d", p.status)
		}
		if keys, _ := s.app.store.ListPasskeys(ctx, alice.ID); len(keys) != 1 || keys[0].Name != "Laptop" {
			t.Fatalf("alice's passkeys = %+v", keys)
		}
		if keys, _ := s.app.store.ListPasskeys(ctx, mallory.ID); len(keys) != 0 {
			t.Fatalf("mallory's passkeys = %+v", keys)
		}

		// Through a relying party's authorization request: no username,
		// the same session as a password sign-in, amr hwk.
		pb := s.browser()
		verifier := oauth2.GenerateVerifier()
		var assertion string
		back := s.passkeyLogin(t, pb, get(t, pb, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(t)))),
			func(o webauthnOptions) string {
				if o.PublicKey.RPID != "localhost" || o.PublicKey.UserVerification != "required" {
					t.Fatalf("sign-in options = %+v", o.PublicKey)
				}
				assertion = key.get(o)
				return assertion
			})
		if back.location == nil || back.location.Query().Get("code") == "" {
			t.Fatalf("passkey sign-in: %d %v\n%s", back.status, back.location, back.body)
		}
		tok, err := r.conf.Exchange(r.ctx, back.location.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		claims := idClaims(t, tok.Extra("id_token").(string))
		if claims["sub"] != alice.ID || claims["sid"] == nil || !slices.Equal(amrOf(t, tok), []any{"hwk", "user", "mfa"}) {
			t.Fatalf("ID token after a passkey = %v", claims)
		}
		if again := s.codeFlow(r, pb, ""); !slices.Equal(amrOf(t, again), []any{"hwk", "user", "mfa"}) { // single sign-on keeps it
			t.Fatalf("SSO amr = %v", amrOf(t, again))
		}
		if pw := s.codeFlow(r, s.browser(), "alice"); !slices.Equal(amrOf(t, pw), []any{"pwd"}) {
			t.Fatalf("password amr = %v", amrOf(t, pw))
		}
		if keys, _ := s.app.store.ListPasskeys(ctx, alice.ID); keys[0].SignCount != key.counter || keys[0].LastUsedAt.IsZero() {
			t.Fatalf("after a sign-in: %+v", keys[0])
		}

		// Attacks on sign-in: a replayed answer, a user handle that is not
		// the passkey's owner, a counter that does not move forward.
		fresh := func() (*http.Client, *form) {
			c := s.browser()
			p := get(t, c, s.issuer+"/login")
			return c, parseForm(t, p.body, p.url)
		}
		c, lf := fresh()
		if p := submit(t, c, lf, map[string]string{web.PasskeyAssertionField: assertion}); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "could not be used") {
			t.Fatalf("replayed assertion: %d", p.status)
		}
		c = s.browser()
		if p := s.passkeyLogin(t, c, get(t, c, s.issuer+"/login"), func(o webauthnOptions) string {
			key.counter++
			return key.sign(o.PublicKey.RPID, o.PublicKey.Challenge, []byte(mallory.ID))
		}); p.status != http.StatusUnauthorized {
			t.Fatalf("someone else's user handle: %d", p.status)
		}
		c = s.browser()
		key.counter -= 2 // the next get repeats the last counter a sign-in used
		if p := s.passkeyLogin(t, c, get(t, c, s.issuer+"/login"), key.get); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "may have been copied") {
			t.Fatalf("a repeated counter: %d\n%s", p.status, p.body)
		}
		if evs, _ := s.app.store.ListEvents(ctx, storage.EventFilter{Type: audit.PasskeyCloneSuspected, User: alice.ID, Limit: 5}); len(evs) != 1 {
			t.Fatalf("clone events = %d", len(evs))
		}
		key.counter += 5

		// A reset link mailed before passkey-only is void afterwards.
		if _, err := s.app.store.UpdateUser(ctx, alice.ID, func(u storage.User) (storage.User, error) {
			u.Email = "alice@example.org"
			return u, nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.app.accounts.RequestPasswordReset(ctx, "alice@example.org", mail); err != nil {
			t.Fatal(err)
		}
		mail.wait(t)
		resetToken := mail.sent["alice@example.org"]

		// Passkey-only: not from a password session.
		pwb := s.browser()
		s.signInPage(t, pwb, "alice")
		of := accountForm(t, get(t, pwb, s.issuer+"/account"), "/account/passkeys/only")
		if p := submit(t, pwb, of, map[string]string{"confirm": "yes"}); p.status != http.StatusForbidden || !strings.Contains(p.body, "passkeys first") {
			t.Fatalf("passkey-only from a password session: %d", p.status)
		}
		of = accountForm(t, get(t, pb, s.issuer+"/account"), "/account/passkeys/only")
		if p := submit(t, pb, of, map[string]string{"confirm": "yes"}); p.url.Query().Get("done") != "passkey-only" {
			t.Fatalf("passkey-only: %d %v", p.status, p.url)
		}
		if u, _ := s.app.store.GetUser(ctx, alice.ID); !u.PasskeyOnly || u.PasswordHash != "" {
			t.Fatalf("after passkey-only: only=%v, hash kept=%v", u.PasskeyOnly, u.PasswordHash != "")
		}
		if p := get(t, pwb, s.issuer+"/account"); !strings.HasSuffix(p.url.Path, "/login") {
			t.Fatalf("the password session survived: %d %v", p.status, p.url)
		}
		// Every password path refuses.
		if p := s.signInPage(t, s.browser(), "alice"); p.status != http.StatusUnauthorized {
			t.Fatalf("password sign-in of a passkey-only account: %d", p.status)
		}
		s.want(s.call(nil, http.MethodPost, "/api/User/startSession", "", map[string]string{"username": "alice", "password": e2ePassword}), http.StatusUnauthorized)
		s.want(s.call(pb, http.MethodPost, "/api/me/password", "", map[string]string{"currentPassword": e2ePassword, "newPassword": e2ePassword + "-2"}), http.StatusConflict)
		s.want(s.call(nil, http.MethodPost, "/api/password-reset/confirm", "", map[string]string{"token": resetToken, "newPassword": e2ePassword + "-x"}), http.StatusBadRequest)
		if err := s.app.accounts.RequestPasswordReset(ctx, "alice@example.org", mail); err != nil || mail.count != 1 {
			t.Fatalf("a reset for a passkey-only account: %v, %d mails", err, mail.count)
		}
		// The last passkey stays.
		rf := accountForm(t, get(t, pb, s.issuer+"/account"), "/account/passkeys/remove")
		if p := submit(t, pb, rf, nil); p.status != http.StatusConflict || !strings.Contains(p.body, "last passkey") {
			t.Fatalf("removing the last passkey: %d", p.status)
		}
		c = s.browser()
		if p := s.passkeyLogin(t, c, get(t, c, s.issuer+"/login"), key.get); p.status != http.StatusOK || !strings.HasSuffix(p.url.Path, "/account") {
			t.Fatalf("passkey sign-in of a passkey-only account: %d %v", p.status, p.url)
		}

		// Setting a password (within 5 minutes of the passkey sign-in)
		// turns passkey-only off; the owner turns it on again.
		sf := accountForm(t, get(t, pb, s.issuer+"/account"), "/account/password/set")
		if p := submit(t, pb, sf, map[string]string{"new_password": e2ePassword}); p.url.Query().Get("done") != "password-set" {
			t.Fatalf("setting a password: %d %v\n%s", p.status, p.url, p.body)
		}
		if p := s.signInPage(t, s.browser(), "alice"); !strings.HasSuffix(p.url.Path, "/account") {
			t.Fatalf("password sign-in after setting one: %d %v", p.status, p.url)
		}
		of = accountForm(t, get(t, pb, s.issuer+"/account"), "/account/passkeys/only")
		if p := submit(t, pb, of, map[string]string{"confirm": "yes"}); p.url.Query().Get("done") != "passkey-only" {
			t.Fatalf("passkey-only again: %d %v", p.status, p.url)
		}

		// An admin removes the passkeys of a lost device: passkey-only
		// ends, the sessions end, the passkey no longer signs in.
		removed := s.want(s.call(nil, http.MethodDelete, "/api/admin/users/"+alice.ID+"/passkeys", s.opsToken(), nil), http.StatusOK)
		if removed.body["removed"] != float64(1) {
			t.Fatalf("removed = %s", removed.raw)
		}
		if u, _ := s.app.store.GetUser(ctx, alice.ID); u.PasskeyOnly {
			t.Fatal("still passkey-only without passkeys")
		}
		if p := get(t, pb, s.issuer+"/account"); !strings.HasSuffix(p.url.Path, "/login") {
			t.Fatalf("the passkey session survived: %d %v", p.status, p.url)
		}
		c = s.browser()
		if p := s.passkeyLogin(t, c, get(t, c, s.issuer+"/login"), key.get); p.status != http.StatusUnauthorized {
			t.Fatalf("a removed passkey: %d", p.status)
		}
		signIns, _ := s.app.store.ListEvents(ctx, storage.EventFilter{Type: audit.SignInSucceeded, User: alice.ID, Limit: 50})
		if !slices.ContainsFunc(signIns, func(e storage.Event) bool { return strings.Contains(string(e.Detail), `"passkey"`) }) {
			t.Error("no sign-in event names the passkey")
		}
		for _, typ := range []string{audit.PasskeyAdded, audit.PasskeyRemoved} {
			if evs, _ := s.app.store.ListEvents(ctx, storage.EventFilter{Type: typ, User: alice.ID, Limit: 5}); len(evs) == 0 {
				t.Errorf("no %s event", typ)
			}
		}
	})
}

// Without a domain name (an IP address as the issuer's host) passkeys are
// off: no button, no script, no options.
func TestPasskeysNeedADomainName(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "tonearm.db"), options{})
	if p := get(t, s.browser(), s.issuer+"/login"); strings.Contains(p.body, "passkey") {
		t.Fatal("the login page offers passkeys under an IP address")
	}
	if csp := cspOf(t, s.issuer+"/login"); strings.Contains(csp, "script-src") {
		t.Fatalf("CSP = %q", csp)
	}
	if o := s.passkeyOptions(t, s.browser(), web.PasskeyOptionsPath, "x"); o.status != http.StatusNotFound && o.status != http.StatusMethodNotAllowed {
		t.Fatalf("options: %d", o.status)
	}
}

// The console removes a user's passkeys (with a ticked box); a
// passkey-only account is deleted by its owner after a recent sign-in,
// without a password.
func TestPasskeysConsoleAndDeletion(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		clock := &offsetClock{}
		s := startPasskeyServerWith(t, dbURL, options{now: clock.now})
		bob := s.user("bob")
		carol := s.user("carol")
		s.admin("root")
		enrol := func(name string) (*softKey, *http.Client) {
			c := s.browser()
			s.signInPage(t, c, name)
			key := newSoftKey(t, s.issuer)
			if _, p := s.addPasskey(t, c, "Phone", key.create); p.url.Query().Get("done") != "passkey-added" {
				t.Fatalf("adding %s's passkey: %d", name, p.status)
			}
			pc := s.browser()
			if p := s.passkeyLogin(t, pc, get(t, pc, s.issuer+"/login"), key.get); !strings.HasSuffix(p.url.Path, "/account") {
				t.Fatalf("%s's passkey sign-in: %d %v", name, p.status, p.url)
			}
			return key, pc
		}
		_, bobSession := enrol("bob")

		admin := s.browser()
		s.signInPage(t, admin, "root")
		userPage := get(t, admin, s.issuer+"/admin/users/"+bob.ID)
		if !strings.Contains(userPage.body, "Phone") {
			t.Fatal("the console does not list bob's passkey")
		}
		f := accountForm(t, userPage, "/admin/users/"+bob.ID+"/remove-passkeys")
		if p := submit(t, admin, f, nil); p.status != http.StatusBadRequest {
			t.Fatalf("removal without the box: %d", p.status)
		}
		if keys, _ := s.app.store.ListPasskeys(ctx, bob.ID); len(keys) != 1 {
			t.Fatal("an unconfirmed removal removed the passkey")
		}
		if p := submit(t, admin, f, map[string]string{"confirm": "yes"}); p.url.Query().Get("done") != "passkeys-removed" {
			t.Fatalf("removal: %d %v", p.status, p.url)
		}
		if keys, _ := s.app.store.ListPasskeys(ctx, bob.ID); len(keys) != 0 {
			t.Fatalf("bob's passkeys = %+v", keys)
		}
		if p := get(t, bobSession, s.issuer+"/account"); !strings.HasSuffix(p.url.Path, "/login") {
			t.Fatal("bob's session survived the removal")
		}

		// Carol goes passkey-only, then deletes her account without a
		// password: her passkey sign-in is recent.
		_, carolSession := enrol("carol")
		of := accountForm(t, get(t, carolSession, s.issuer+"/account"), "/account/passkeys/only")
		if p := submit(t, carolSession, of, map[string]string{"confirm": "yes"}); p.url.Query().Get("done") != "passkey-only" {
			t.Fatalf("passkey-only: %d", p.status)
		}
		df := accountForm(t, get(t, carolSession, s.issuer+"/account"), "/account/delete")
		if _, ok := df.values["delete_password"]; ok {
			t.Fatal("a passkey-only account is asked for a password")
		}
		// Six minutes later the sign-in is no longer recent: neither
		// deletion nor a new password without signing in again.
		clock.advance(6 * time.Minute)
		if p := submit(t, carolSession, df, map[string]string{"confirm": "yes"}); p.status != http.StatusForbidden || !strings.Contains(p.body, "Sign in again") {
			t.Fatalf("deletion after a stale sign-in: %d", p.status)
		}
		sf := accountForm(t, get(t, carolSession, s.issuer+"/account"), "/account/password/set")
		if p := submit(t, carolSession, sf, map[string]string{"new_password": e2ePassword}); p.status != http.StatusForbidden {
			t.Fatalf("a password after a stale sign-in: %d", p.status)
		}
		clock.advance(-6 * time.Minute)
		if p := submit(t, carolSession, df, map[string]string{"confirm": "yes"}); p.status != http.StatusOK || !strings.Contains(p.body, "Account deleted") {
			t.Fatalf("deleting a passkey-only account: %d", p.status)
		}
		if _, err := s.app.store.GetUser(ctx, carol.ID); err == nil {
			t.Fatal("carol's account survived")
		}
		if keys, _ := s.app.store.ListPasskeys(ctx, carol.ID); len(keys) != 0 {
			t.Fatal("a deleted account's passkeys survived")
		}
	})
}
