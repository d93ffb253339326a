package main

import (
	"context"
	"encoding/base32"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/totp"
	"github.com/tonearm-idp/tonearm/storage"
)

// Round three, holes found from outside: TONEARM_ADMIN_MFA=required asks
// how this sign-in was made (the session's amr, the token's acr), not what
// the account owns; new recovery codes and a new authenticator app need a
// recent sign-in or the password.

// adminTokenRP is a first-party client that may ask for the admin scope.
func (s *server) adminTokenRP(t *testing.T) *rp {
	t.Helper()
	c, secret, err := s.app.clients.Create(context.Background(), clients.Spec{ID: "adm-" + random(t)[:8], RedirectURIs: []string{redirectURI},
		FirstParty: true, Scopes: []string{"openid", "account", "admin"}})
	if err != nil {
		t.Fatal(err)
	}
	return s.rp(c.ID, secret, "account", "admin")
}

// stepUpPage asks for a console page and expects the step-up in place: the
// second-factor step of an interaction, not the console and not an error.
func stepUpPage(t *testing.T, s *server, b *http.Client, path string) page {
	t.Helper()
	p := get(t, b, s.issuer+path)
	if p.status != http.StatusOK || !strings.HasPrefix(p.url.Path, "/interaction/") || !strings.Contains(p.body, `id="step-up"`) {
		t.Fatalf("%s with a one-factor session: %d %s\n%s", path, p.status, p.url, p.body)
	}
	return p
}

func TestRound3AdminMFAConsoleAndAPIAskThisSignIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFrozenClock()
	s := startE2EConfig(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{now: clock.now}, func(c *config.Config) { c.AdminMFA = "required" })
	if _, err := s.app.accounts.Create(ctx, accounts.NewUser{Username: "root", Password: e2ePassword, Role: storage.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	r := s.adminTokenRP(t)

	// A password-only session of an admin with no second factor yet.
	b := s.browser()
	s.signInPage(t, b, "root")
	if p := get(t, b, s.issuer+"/admin/users"); p.url.Path != "/account" || !strings.Contains(p.body, `id="mfa-required"`) {
		t.Fatalf("an admin without a second factor reached %s", p.url)
	}
	onePwd := s.codeFlow(r, s.browser(), "root").AccessToken

	// The app is set up in that session: the session was still made with
	// a password alone, and so was the token.
	secret, _ := enrolTOTP(t, s, b, clock)
	step := stepUpPage(t, s, b, "/admin/users?q=ro")
	if !strings.Contains(step.body, `name="totp_code"`) {
		t.Fatalf("the step-up does not ask for a code:\n%s", step.body)
	}
	// A console form posted by the one-factor session (with a valid CSRF
	// token) changes nothing: it steps up, and comes back to the console.
	csrf := accountForm(t, get(t, b, s.issuer+"/account"), "/account/profile").values.Get("csrf_token")
	sneaky := &form{action: s.issuer + "/admin/users/create", values: map[string][]string{"csrf_token": {csrf}, "username": {"sneaky"}, "password": {e2ePassword}, "role": {"admin"}}}
	if p := submit(t, b, sneaky, nil); !strings.Contains(p.body, `id="step-up"`) {
		t.Fatalf("a console POST of a one-factor session: %d %s", p.status, p.url)
	}
	if _, err := s.app.store.GetUserByUsername(ctx, "sneaky"); err == nil {
		t.Fatal("a one-factor session created a user in the console")
	}
	refused := s.want(s.call(nil, http.MethodGet, "/api/admin/users", onePwd, nil), http.StatusForbidden)
	if !strings.Contains(refused.errMsg(), "two factors") {
		t.Fatalf("the refusal does not say why: %q", refused.errMsg())
	}
	// The User API's admin powers follow the same rule.
	guest := map[string]any{"username": "guest1", "password": e2ePassword, "role": "guest"}
	s.want(s.call(nil, http.MethodPost, "/api/User/createUser", onePwd, guest), http.StatusForbidden)

	// A wrong code keeps the step; the right one opens a session with mfa
	// and comes back to the page asked for.
	if p := submit(t, b, parseForm(t, step.body, step.url), map[string]string{"totp_code": "000000"}); p.status != http.StatusUnauthorized {
		t.Fatalf("a wrong code: %d", p.status)
	}
	clock.advance(totp.Period)
	back := submit(t, b, parseForm(t, step.body, step.url), map[string]string{"totp_code": clock.code(secret)})
	if back.status != http.StatusOK || back.url.Path != "/admin/users" || back.url.Query().Get("q") != "ro" {
		t.Fatalf("after the step-up: %d %s\n%s", back.status, back.url, back.body)
	}
	if p := get(t, b, s.issuer+"/admin"); p.status != http.StatusOK || p.url.Path != "/admin" {
		t.Fatalf("the stepped-up session: %d %s", p.status, p.url)
	}

	// A fresh password sign-in of the same admin steps up again.
	b2 := s.browser()
	if p := s.signInPage(t, b2, "root"); !strings.Contains(p.body, `name="totp_code"`) {
		t.Fatalf("the sign-in of an account with an app skipped the code:\n%s", p.body)
	}

	// A token from a two-factor sign-in (acr multi-factor) works; the
	// one-factor token still does not; client credentials are unchanged.
	verifier := oauth2.GenerateVerifier()
	tb := s.browser()
	login := get(t, tb, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(t))))
	sf := submit(t, tb, parseForm(t, login.body, login.url), map[string]string{"username": "root", "password": e2ePassword})
	clock.advance(totp.Period)
	landed := submit(t, tb, parseForm(t, sf.body, sf.url), map[string]string{"totp_code": clock.code(secret)})
	if landed.location == nil {
		t.Fatalf("the two-factor sign-in did not land: %d\n%s", landed.status, landed.body)
	}
	tok, err := r.conf.Exchange(r.ctx, landed.location.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if jwtClaims(t, tok.AccessToken)["acr"] != accounts.ACRMultiFactor {
		t.Fatalf("the token's acr: %v", jwtClaims(t, tok.AccessToken))
	}
	s.want(s.call(nil, http.MethodGet, "/api/admin/users", tok.AccessToken, nil), http.StatusOK)
	s.want(s.call(nil, http.MethodPost, "/api/User/createUser", tok.AccessToken, guest), http.StatusOK)
	s.want(s.call(nil, http.MethodGet, "/api/admin/users", onePwd, nil), http.StatusForbidden)
	s.want(s.call(nil, http.MethodGet, "/api/admin/users", s.opsToken(), nil), http.StatusOK)
}

// An admin who has a passkey and signs in with the password alone steps up
// with the passkey (or goes back to the account page).
func TestRound3AdminMFAPasskeyStepUp(t *testing.T) {
	t.Parallel()
	s := startE2EConfig(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{}, func(c *config.Config) {
		c.Issuer = strings.Replace(c.Issuer, "127.0.0.1", "localhost", 1)
		c.AdminMFA = "required"
	})
	if _, err := s.app.accounts.Create(context.Background(), accounts.NewUser{Username: "pam", Password: e2ePassword, Role: storage.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	b := s.browser()
	s.signInPage(t, b, "pam")
	key := newSoftKey(t, s.issuer)
	if _, done := s.addPasskey(t, b, "Laptop", key.create); done.url.Query().Get("done") != "passkey-added" {
		t.Fatalf("adding a passkey: %d %s", done.status, done.url)
	}
	// The session that added the passkey, and a new password-only one.
	for _, c := range []*http.Client{b, func() *http.Client { c := s.browser(); s.signInPage(t, c, "pam"); return c }()} {
		p := stepUpPage(t, s, c, "/admin/clients")
		if !strings.Contains(p.body, `id="use-passkey"`) || strings.Contains(p.body, `name="totp_code"`) {
			t.Fatalf("the step-up of a passkey holder:\n%s", p.body)
		}
	}
	// Declining goes to the account page, not round again.
	p := stepUpPage(t, s, b, "/admin/clients")
	if back := submit(t, b, parseForm(t, p.body, p.url), nil); back.url.Path != "/account" {
		t.Fatalf("declining the step-up: %d %s", back.status, back.url)
	}
	// The passkey: the interaction's sign-in page, then the console page.
	p = stepUpPage(t, s, b, "/admin/clients")
	i := strings.Index(p.body, `value="passkey"`)
	again := submit(t, b, parseForm(t, p.body[strings.LastIndex(p.body[:i], "<form"):], p.url), nil)
	done := s.passkeyLogin(t, b, again, key.get)
	if done.status != http.StatusOK || done.url.Path != "/admin/clients" {
		t.Fatalf("after the passkey: %d %s\n%s", done.status, done.url, done.body)
	}
}

// New recovery codes and a new authenticator app need a sign-in within
// five minutes or the current password, as the email address does.
func TestRound3AdminMFARecentSignInForSecondFactorChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFrozenClock()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{now: clock.now})
	rita := s.user("rita")
	b := s.browser()
	s.signInPage(t, b, "rita")

	// Enrolling with a session older than five minutes: refused, nothing
	// stored; with a wrong password too; with the password it works.
	clock.advance(accounts.RecentAuth + time.Second)
	acct := get(t, b, s.issuer+"/account")
	secret := totpSecretOf(t, acct)
	f := accountForm(t, acct, "/account/totp/enrol")
	if p := submit(t, b, f, map[string]string{"totp_code": clock.code(secret)}); p.status != http.StatusForbidden || !strings.Contains(p.body, "more than 5 minutes ago") {
		t.Fatalf("enrolment with an old session: %d\n%s", p.status, p.body)
	}
	if p := submit(t, b, f, map[string]string{"totp_code": clock.code(secret), "current_password": "not-the-password"}); p.status != http.StatusForbidden {
		t.Fatalf("enrolment with a wrong password: %d", p.status)
	}
	if u, _ := s.app.store.GetUser(ctx, rita.ID); accounts.HasTOTP(u) {
		t.Fatal("an old session set up an app")
	}
	if p := submit(t, b, f, map[string]string{"totp_code": clock.code(secret), "current_password": e2ePassword}); p.status != http.StatusOK || !strings.Contains(p.body, `id="recovery-codes"`) {
		t.Fatalf("enrolment with the password: %d\n%s", p.status, p.body)
	}

	// New recovery codes: refused to an old session; the old codes stay.
	before, _ := s.app.store.CountRecoveryCodes(ctx, rita.ID)
	clock.advance(accounts.RecentAuth + time.Second)
	acct = get(t, b, s.issuer+"/account")
	if p := submit(t, b, accountForm(t, acct, "/account/totp/recovery-codes"), nil); p.status != http.StatusForbidden || strings.Contains(p.body, `id="recovery-codes"`) {
		t.Fatalf("new codes for an old session: %d\n%s", p.status, p.body)
	}
	if u, _ := s.app.store.GetUser(ctx, rita.ID); !accounts.HasTOTP(u) {
		t.Fatal("the app is gone")
	}
	if n, _ := s.app.store.CountRecoveryCodes(ctx, rita.ID); n != before {
		t.Fatalf("recovery codes %d, were %d", n, before)
	}
	// Signing in again (password and code) makes the session recent.
	again := s.signInPage(t, b, "rita")
	clock.advance(totp.Period)
	if p := submit(t, b, parseForm(t, again.body, again.url), map[string]string{"totp_code": clock.code(secret)}); p.url.Path != "/account" {
		t.Fatalf("signing in again: %d %s", p.status, p.url)
	}
	acct = get(t, b, s.issuer+"/account")
	if p := submit(t, b, accountForm(t, acct, "/account/totp/recovery-codes"), nil); p.status != http.StatusOK || !strings.Contains(p.body, `id="recovery-codes"`) {
		t.Fatalf("new codes after signing in again: %d\n%s", p.status, p.body)
	}

	// Replacing the app: removing it takes its own proof; the new one
	// needs a recent sign-in again.
	clock.advance(totp.Period)
	if p := submit(t, b, accountForm(t, acct, "/account/totp/remove"), map[string]string{"totp_code": clock.code(secret)}); p.status != http.StatusOK {
		t.Fatalf("removal: %d", p.status)
	}
	clock.advance(accounts.RecentAuth + time.Second)
	acct = get(t, b, s.issuer+"/account")
	next := totpSecretOf(t, acct)
	if p := submit(t, b, accountForm(t, acct, "/account/totp/enrol"), map[string]string{"totp_code": clock.code(next)}); p.status != http.StatusForbidden {
		t.Fatalf("replacing the app with an old session: %d", p.status)
	}
	if u, _ := s.app.store.GetUser(ctx, rita.ID); accounts.HasTOTP(u) {
		t.Fatal("an old session replaced the app")
	}
}

// totpSecretOf reads the key the account page offers to set up.
func totpSecretOf(t *testing.T, acct page) []byte {
	t.Helper()
	m := totpSecretRe.FindStringSubmatch(acct.body)
	if m == nil {
		t.Fatalf("no key on /account:\n%s", acct.body)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return secret
}
