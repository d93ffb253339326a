package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/provider/totp"
	"github.com/tonearm-idp/tonearm/storage"
)

// The pages for people, driven in a real browser: Debian's chromium,
// headless, through chromedp. Under CI=true a missing browser fails the
// run; elsewhere these tests are skipped with a message.

func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browserTab is one browser (its own profile, so its own cookies) with
// one tab.
type browserTab struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts a headless chromium for the test.
func newBrowser(t *testing.T) *browserTab {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed: .ci/run installs Debian's chromium package, and CI never skips the browser tests")
		}
		t.Skip("chromium is not installed (apt-get install chromium): browser tests skipped")
	}
	// A loaded machine (the whole suite runs at once) now and then kills a
	// starting browser; a few attempts tell that from a broken install.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
			chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-crash-reporter", true),
			chromedp.WindowSize(1280, 900),
		)
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(alloc)
		// The first action starts the browser and ties it to its context:
		// it must be the long-lived one, not a step's deadline.
		if lastErr = chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); lastErr == nil {
			t.Cleanup(func() { cancel(); cancelAlloc() })
			return &browserTab{t: t, ctx: ctx}
		}
		cancel()
		cancelAlloc()
		time.Sleep(time.Second)
	}
	t.Fatalf("starting chromium: %v", lastErr)
	return nil
}

// run runs steps with a deadline; a step that cannot finish fails the
// test with the page it was on.
func (b *browserTab) run(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v\nat %s:\n%s", err, b.location(), b.body())
	}
}

// value runs one action that returns a value.
func value[T any](b *browserTab, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v\nat %s", err, b.location())
	}
	return v
}

func (b *browserTab) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// body is the page's visible text.
func (b *browserTab) body() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	return s
}

func (b *browserTab) html() string {
	return value(b, chromedp.OuterHTML(chromedp.CSS("html")))
}

// open navigates and waits for the page's main element.
func (b *browserTab) open(u string) {
	b.t.Helper()
	b.run(chromedp.Navigate(u), chromedp.WaitReady(chromedp.CSS("main")))
}

// fill types into empty inputs by id.
func fill(values map[string]string) chromedp.Action[chromedp.Void] {
	var steps []chromedp.Action[chromedp.Void]
	for id, v := range values {
		steps = append(steps, chromedp.SendKeys(chromedp.CSS("#"+id), v))
	}
	return chromedp.Steps(steps...)
}

// signIn signs in on the stand-alone page; the browser ends on continue
// (the account page by default), or on the login page with a message.
func (b *browserTab) signIn(s *server, username, password string) {
	b.t.Helper()
	b.open(s.issuer + "/login")
	b.run(fill(map[string]string{"username": username, "password": password}), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	b.waitFor(`document.readyState === "complete" && (location.pathname !== "/login" || document.querySelector("[role=alert]") !== null)`)
}

// waitFor polls a condition in the page (the test's script, not the
// page's: pages run none).
func (b *browserTab) waitFor(cond string) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waiting for %s: %v\nat %s:\n%s", cond, err, b.location(), b.body())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *browserTab) wantText(want string) {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body := b.body()
		if strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the page at %s does not say %q:\n%s", b.location(), want, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// appCallback is a web app's callback: it records what the browser
// brought back.
type appCallback struct {
	srv  *httptest.Server
	mu   sync.Mutex
	last url.Values
}

func newAppCallback(t *testing.T) *appCallback {
	rp := &appCallback{}
	rp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r) // the browser's favicon request
			return
		}
		rp.mu.Lock()
		rp.last = r.URL.Query()
		rp.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>The app</title><main><p id="rp-done">Back at the app</p></main>`)
	}))
	t.Cleanup(rp.srv.Close)
	return rp
}

func (rp *appCallback) callback() url.Values {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.last
}

const pixelPNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

// appFlow is an authorization request of a registered web app.
type appFlow struct {
	conf     oauth2.Config
	rp       *appCallback
	verifier string
	state    string
}

func (s *server) webApp(t *testing.T, id string, scopes ...string) *appFlow {
	t.Helper()
	return s.webAppWith(t, id, false, scopes...)
}

// webAppWith is webApp, first-party (no consent page) when firstParty. Its
// callback is on a port Chromium requests (an httptest server's).
func (s *server) webAppWith(t *testing.T, id string, firstParty bool, scopes ...string) *appFlow {
	t.Helper()
	rp := newAppCallback(t)
	_, secret := s.client(clients.Spec{
		ID: id, RedirectURIs: []string{rp.srv.URL + "/callback"}, Scopes: append([]string{"openid", "profile"}, scopes...), FirstParty: firstParty,
		Display: clients.Display{Name: "Listening Party", LogoURI: pixelPNG, PolicyURI: "https://party.example/privacy"},
	})
	return &appFlow{rp: rp, state: random(t), verifier: oauth2.GenerateVerifier(), conf: oauth2.Config{
		ClientID: id, ClientSecret: secret, RedirectURL: rp.srv.URL + "/callback", Scopes: append([]string{"openid", "profile"}, scopes...),
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + provider.AuthorizePath, TokenURL: s.issuer + provider.TokenPath},
	}}
}

func (a *appFlow) authURL() string {
	return a.conf.AuthCodeURL(a.state, oauth2.S256ChallengeOption(a.verifier))
}

// finish waits for the browser at the app and exchanges the code.
func (a *appFlow) finish(t *testing.T, b *browserTab) *oauth2.Token {
	t.Helper()
	b.run(chromedp.WaitVisible(chromedp.CSS("#rp-done")))
	q := a.rp.callback()
	if q.Get("state") != a.state || q.Get("code") == "" {
		t.Fatalf("the app got %v", q)
	}
	tok, err := a.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	return tok
}

// allow answers the consent page.
func (b *browserTab) allow() {
	b.t.Helper()
	b.run(chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	b.wantText("Allow Listening Party?")
	b.run(chromedp.Click(chromedp.CSS(`button[value=allow]`)))
}

func TestBrowser(t *testing.T) {
	if chromiumPath() == "" && os.Getenv("CI") != "true" {
		t.Skip("chromium is not installed (apt-get install chromium): browser tests skipped")
	}
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		t.Run("SignUpThroughAnApp", func(t *testing.T) { browserSignUp(t, s) })
		t.Run("SignUpThroughAFirstPartyApp", func(t *testing.T) { browserFirstPartySignUp(t, s) })
		t.Run("StandAloneSignInContinuesToAnApp", func(t *testing.T) { browserStandAloneContinue(t, s) })
		t.Run("LinkListenBrainz", func(t *testing.T) { browserListenBrainz(t, s) })
		t.Run("RevokeConnectedApp", func(t *testing.T) { browserRevokeApp(t, s) })
		t.Run("SignOutAnotherSession", func(t *testing.T) { browserOtherSession(t, s) })
		t.Run("AdminDisablesUser", func(t *testing.T) { browserAdminDisables(t, s) })
		t.Run("KeyboardOnlySignIn", func(t *testing.T) { browserKeyboard(t, s) })
		t.Run("SecondFactor", func(t *testing.T) { browserSecondFactor(t, s) })
		t.Run("DeveloperPage", func(t *testing.T) { browserDeveloperPage(t, s) })
		// Last: it adds a connector to the sign-in pages.
		t.Run("ContinueWithMusicBrainz", func(t *testing.T) { browserMusicBrainz(t, s) })
	})
}

// A new person follows an app's sign-in link, creates an account from the
// login page and arrives back at the app, signed in.
func browserSignUp(t *testing.T, s *server) {
	app := s.webApp(t, "party-signup", "email")
	b := newBrowser(t)
	b.open(app.authURL())
	b.wantText("Listening Party")
	if page := b.html(); !strings.Contains(page, `src="`+pixelPNG+`"`) || !strings.Contains(page, "https://party.example/privacy") {
		t.Fatalf("the login page does not show the app's logo and policy link:\n%s", page)
	}
	b.run(chromedp.Click(chromedp.CSS(`a[href*="/signup"]`)), chromedp.WaitVisible(chromedp.CSS("#username")))
	// A bad password first: the message sits next to its field and the
	// typed username stays.
	b.run(fill(map[string]string{"username": "newcomer", "password": "short", "email": "newcomer@example.org"}),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("#password-error")))
	kept := value(b, chromedp.Value(chromedp.CSS("#username")))
	if kept != "newcomer" {
		t.Fatalf("the username field was not kept: %q", kept)
	}
	b.run(fill(map[string]string{"password": "a-long-enough-password"}), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	b.allow()
	tok := app.finish(t, b)
	idToken, _ := tok.Extra("id_token").(string)
	claims := idClaims(t, idToken)
	if claims["preferred_username"] != "newcomer" {
		t.Fatalf("ID token claims = %v, want the new account", claims)
	}
	u, err := s.app.store.GetUserByUsername(context.Background(), "newcomer")
	if err != nil || u.Email != "newcomer@example.org" || u.EmailVerified || u.Role != storage.RoleUser {
		t.Fatalf("stored user = %+v, %v", u, err)
	}
}

// Signing up from a first-party app's login page ends at the app, in
// Chromium: no consent page comes between, so the sign-up form's answer
// redirects (through the authorization endpoint) to the app's redirect
// URI, which a form-action 'self' would stop.
func browserFirstPartySignUp(t *testing.T, s *server) {
	app := s.webAppWith(t, "party-first", true)
	b := newBrowser(t)
	b.open(app.authURL())
	b.run(chromedp.Click(chromedp.CSS(`a[href*="/signup"]`)), chromedp.WaitVisible(chromedp.CSS("#username")))
	b.run(fill(map[string]string{"username": "firstcomer", "password": "a-long-enough-password"}), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	tok := app.finish(t, b)
	if claims := idClaims(t, tok.Extra("id_token").(string)); claims["preferred_username"] != "firstcomer" {
		t.Fatalf("ID token claims = %v, want the new account", claims)
	}
}

// The stand-alone sign-in page with a continue that is an app's
// authorization request (a first-party app) ends at the app too.
func browserStandAloneContinue(t *testing.T, s *server) {
	app := s.webAppWith(t, "party-continue", true)
	s.user("continuer")
	b := newBrowser(t)
	auth, _ := url.Parse(app.authURL())
	b.open(s.issuer + "/login?" + url.Values{"continue": {auth.RequestURI()}}.Encode())
	b.run(chromedp.WaitVisible(chromedp.CSS("#username")),
		fill(map[string]string{"username": "continuer", "password": e2ePassword}), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	tok := app.finish(t, b)
	if claims := idClaims(t, tok.Extra("id_token").(string)); claims["preferred_username"] != "continuer" {
		t.Fatalf("ID token claims = %v", claims)
	}
}

// A person links a ListenBrainz token on the account page (checked live
// against the ListenBrainz stand-in); an app then sees the name.
func browserListenBrainz(t *testing.T, s *server) {
	u := s.user("linker")
	b := newBrowser(t)
	b.signIn(s, u.Username, e2ePassword)
	b.wantText("Your account")
	b.run(fill(map[string]string{"listenbrainz_token": "not-a-real-token"}),
		chromedp.Click(chromedp.CSS(`form[action$="/account/listenbrainz"] button`)), chromedp.WaitVisible(chromedp.CSS("#listenbrainz_token-error")))
	b.wantText("ListenBrainz does not accept this token.")
	b.run(fill(map[string]string{"listenbrainz_token": lbToken}), chromedp.Click(chromedp.CSS(`form[action$="/account/listenbrainz"] button`)))
	b.wantText("Linked to rob_listens")
	if page := b.html(); strings.Contains(page, lbToken) || !strings.Contains(page, "…"+lbToken[len(lbToken)-4:]) {
		t.Fatal("the account page must show only the end of the token")
	}
	app := s.webApp(t, "party-lb", "listenbrainz")
	b.open(app.authURL())
	b.allow()
	tok := app.finish(t, b)
	resp, err := app.conf.Client(context.Background(), tok).Get(s.issuer + provider.UserinfoPath)
	if err != nil {
		t.Fatal(err)
	}
	info := read(t, resp)
	if info.status != http.StatusOK || !strings.Contains(info.body, `"listenbrainz_name":"rob_listens"`) {
		t.Fatalf("userinfo = %d %s", info.status, info.body)
	}
}

// Revoking a connected app on the account page ends its refresh token.
func browserRevokeApp(t *testing.T, s *server) {
	u := s.user("revoker")
	app := s.webApp(t, "party-revoke", "offline_access")
	b := newBrowser(t)
	b.signIn(s, u.Username, e2ePassword)
	b.open(app.authURL())
	b.allow()
	tok := app.finish(t, b)
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	b.open(s.issuer + "/account")
	b.wantText("Connected apps")
	b.wantText("Listening Party")
	b.run(chromedp.Click(chromedp.CSS(`form[action$="/account/apps/revoke"] button`)))
	b.wantText("The app's access is revoked.")
	if strings.Contains(b.body(), "Listening Party") {
		t.Fatal("the revoked app is still listed")
	}
	_, err := app.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh after revoke = %v, want invalid_grant", err)
	}
	ev, err := s.app.store.ListEvents(context.Background(), storage.EventFilter{Type: "consent.revoked", User: u.ID, Limit: 10})
	if err != nil || len(ev) != 1 || ev[0].Client != "party-revoke" {
		t.Fatalf("consent.revoked events = %+v, %v", ev, err)
	}
}

// One browser signs another out from the sessions list.
func browserOtherSession(t *testing.T, s *server) {
	u := s.user("two-browsers")
	laptop, phone := newBrowser(t), newBrowser(t)
	phone.signIn(s, u.Username, e2ePassword)
	laptop.signIn(s, u.Username, e2ePassword)
	laptop.wantText("this browser")
	n := value(laptop, chromedp.Evaluate[int](`document.querySelectorAll('form[action$="/account/sessions/end"]').length`))
	if n != 1 {
		t.Fatalf("%d other sessions listed, want 1", n)
	}
	laptop.run(chromedp.Click(chromedp.CSS(`form[action$="/account/sessions/end"] button`)))
	laptop.wantText("That session is signed out.")
	phone.open(s.issuer + "/account")
	if loc := phone.location(); !strings.Contains(loc, "/login") {
		t.Fatalf("the signed-out browser reached %s", loc)
	}
	laptop.open(s.issuer + "/account")
	laptop.wantText("Your account")
}

// An admin disables a user in the console; the user's next sign-in fails
// with a clear message.
func browserAdminDisables(t *testing.T, s *server) {
	admin, err := s.app.accounts.Create(context.Background(), accounts.NewUser{Username: "console-admin", Password: e2ePassword, Role: storage.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	victim := s.user("to-be-disabled")
	b := newBrowser(t)
	b.signIn(s, admin.Username, e2ePassword)
	b.open(s.issuer + "/admin/users?q=to-be")
	b.run(chromedp.Click(chromedp.CSS(`a[href$="/admin/users/`+victim.ID+`"]`)), chromedp.WaitVisible(chromedp.CSS("#confirm-disable")))
	// Without the confirmation box nothing happens (the browser refuses
	// the required box); with it the account is disabled.
	b.run(chromedp.Click(chromedp.CSS("#confirm-disable")), chromedp.Click(chromedp.CSS(`form[action$="/disable"] button`)))
	b.wantText("The account is disabled")
	// The last admin cannot demote themself: the guard shows as a message.
	b.open(s.issuer + "/admin/users/" + admin.ID)
	b.run(chromedp.SetValue(chromedp.CSS("#role"), "user"), chromedp.Click(chromedp.CSS(`form[action$="/role"] button`)))
	b.wantText("The last active admin cannot be deleted, demoted or disabled.")

	user := newBrowser(t)
	user.signIn(s, victim.Username, e2ePassword)
	user.wantText("This account is disabled.")
	if !strings.Contains(user.location(), "/login") {
		t.Fatalf("a disabled user got to %s", user.location())
	}
}

// Signing in with the keyboard alone: the username field has the focus,
// Tab moves to the password with a visible focus ring, Enter submits.
func browserKeyboard(t *testing.T, s *server) {
	u := s.user("keyboard-only")
	b := newBrowser(t)
	b.open(s.issuer + "/login")
	b.run(chromedp.KeyEvent(u.Username), chromedp.KeyEvent(kb.Tab))
	outline := value(b, chromedp.Evaluate[string](`document.activeElement.id + ":" + getComputedStyle(document.activeElement).outlineStyle`))
	if outline != "password:solid" {
		t.Fatalf("after Tab the focus is %q, want the password field with a visible outline", outline)
	}
	b.run(chromedp.KeyEvent(e2ePassword), chromedp.KeyEvent(kb.Enter))
	b.wantText("Your account")
	b.wantText("Signed in as keyboard-only")
}

// TestPagesAt390px opens every page at 390 px wide: none may scroll
// sideways. With TONEARM_SCREENSHOTS set (make screenshots) it writes a
// PNG of each page, desktop and 390 px, into that folder.
func TestPagesAt390px(t *testing.T) {
	s := startPasskeyServer(t, "sqlite://"+filepath.Join(t.TempDir(), "tonearm.db"))
	if _, err := s.app.accounts.Create(context.Background(), accounts.NewUser{Username: "ada", Password: e2ePassword, Role: storage.RoleAdmin,
		Profile: accounts.ProfileUpdate{Name: accounts.Value("Ada Lovelace"), Email: accounts.Value("ada@example.org")}}); err != nil {
		t.Fatal(err)
	}
	app := s.webApp(t, "listening-party", "email", "offline_access")
	mb := newFakeMusicBrainz(t, s.issuer+"/connectors/musicbrainz/callback")
	if _, err := s.app.connectors.Create(context.Background(), connectors.Spec{ID: "musicbrainz", Kind: storage.ConnectorMusicBrainz,
		Name: "MusicBrainz", ClientID: mb.clientID, ClientSecret: mb.secret, BaseURL: mb.URL}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	b.virtualAuthenticator()
	shots := os.Getenv("TONEARM_SCREENSHOTS")
	check := func(name string) {
		t.Helper()
		for _, width := range []int64{1280, 390} {
			b.run(chromedp.EmulateViewport(width, 844))
			scroll := value(b, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
			inner := value(b, chromedp.Evaluate[int64](`window.innerWidth`))
			if scroll > inner {
				t.Errorf("%s at %d px scrolls sideways (%d px wide)", name, width, scroll)
			}
			if shots != "" {
				png := value(b, chromedp.FullScreenshot(100))
				suffix := "desktop"
				if width == 390 {
					suffix = "390"
				}
				if err := os.WriteFile(filepath.Join(shots, name+"-"+suffix+".png"), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		b.run(chromedp.EmulateViewport(1280, 900))
	}
	if shots != "" {
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b.open(app.authURL())
	check("login")
	b.run(chromedp.Click(chromedp.CSS(`a[href*="/signup"]`)), chromedp.WaitVisible(chromedp.CSS("#username")))
	check("signup")
	b.open(app.authURL())
	b.run(fill(map[string]string{"username": "ada", "password": e2ePassword}), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	check("consent")
	b.run(chromedp.Click(chromedp.CSS(`button[value=allow]`)))
	app.finish(t, b)
	b.open(s.issuer + "/account")
	b.run(chromedp.WaitVisible(chromedp.CSS("#add_passkey")), fill(map[string]string{"passkey_name": "This laptop"}),
		chromedp.Click(chromedp.CSS("#add_passkey")))
	b.wantText("Your passkey is added.")
	check("account")
	for _, p := range []struct{ name, path string }{
		{"admin", "/admin"}, {"admin-users", "/admin/users"}, {"admin-clients", "/admin/clients"}, {"admin-apis", "/admin/apis"},
		{"admin-client", "/admin/clients/listening-party"}, {"admin-keys", "/admin/keys"}, {"admin-connectors", "/admin/connectors"}, {"forgot-password", "/password/forgot"}, {"logout", provider.LogoutPath},
	} {
		b.open(s.issuer + p.path)
		check(p.name)
	}
	// The device page, and its consent step.
	s.client(clients.Spec{ID: "tv", Public: true, RedirectURIs: []string{}, GrantTypes: []string{clients.DeviceCodeGrant},
		Scopes: []string{"openid", "profile"}, Display: clients.Display{Name: "Living-room player"}})
	_, start := s.deviceStart(t, "tv", "openid profile")
	b.open(start["verification_uri_complete"].(string))
	check("device")
	b.run(chromedp.Click(chromedp.CSS(`main form button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	check("device-consent")
	b.open(s.issuer + "/admin/users?q=ada")
	b.run(chromedp.Click(chromedp.CSS(`tbody a`)), chromedp.WaitVisible(chromedp.CSS("#confirm-delete")))
	check("admin-user")
	b.open(s.issuer + provider.AuthorizePath + "?client_id=nobody")
	check("error")
	// The developer page, and the consent page of an app registered openly.
	b.open(s.issuer + "/developer")
	check("developer")
	devApp, err := s.app.clients.RegisterApp(context.Background(), clients.AppSpec{Type: clients.AppWeb, RedirectURIs: []string{"https://scrobbler.example/cb"},
		Display: clients.Display{Name: "Someone's Scrobbler"}}, "", storage.RegisteredOpenly)
	if err != nil {
		t.Fatal(err)
	}
	b.open(s.issuer + provider.AuthorizePath + "?" + url.Values{"client_id": {devApp.Client.ID}, "redirect_uri": {"https://scrobbler.example/cb"},
		"response_type": {"code"}, "scope": {"openid profile"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}.Encode())
	b.run(chromedp.WaitVisible(chromedp.CSS("#unreviewed")))
	check("consent-unreviewed")
	// A first sign-in through MusicBrainz: the account it created, and the
	// username choice when the MetaBrainz name is taken here.
	mb.signIn(mbAccount{ID: 1, Name: "ada"})
	b = newBrowser(t)
	b.open(app.authURL())
	b.run(chromedp.Click(chromedp.CSS(`button[name=connector][value=musicbrainz]`)), chromedp.WaitVisible(chromedp.CSS("#username")))
	check("choose-username")
	b.run(chromedp.SetValue(chromedp.CSS("#username"), "ada_mb"), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#created")))
	check("welcome")
	// The second-factor step of a sign-in.
	tom := s.user("tom")
	e, err := s.app.accounts.NewTOTPEnrolment(tom, "tonearm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.accounts.EnrolTOTP(context.Background(), tom.ID, e.Token, totp.Code(e.Secret, totp.Step(time.Now())), accounts.Reauth{AuthTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	b = newBrowser(t)
	b.open(app.authURL())
	b.run(fill(map[string]string{"username": "tom", "password": e2ePassword}), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#totp_code")))
	check("second-factor")
}
