package main

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/storage"
)

// travellerBrowser keeps cookies and follows redirects between the
// providers of a test, stopping at the relying party's redirect URI.
func travellerBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	rp, _ := url.Parse(redirectURI)
	return &http.Client{Jar: jar, Timeout: 60 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host == rp.Host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// connectorFlow starts an app's authorization in browser, clicks
// "Continue with …" for connector and returns the page the browser lands
// on (and the authorization's PKCE verifier).
func (s *server) connectorFlow(t *testing.T, browser *http.Client, r *rp, connector string) (page, string) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	login := get(t, browser, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(t))))
	if login.status != http.StatusOK || !strings.Contains(login.body, `name="connector" value="`+connector+`"`) {
		t.Fatalf("login page without the %s button: %d\n%s", connector, login.status, login.body)
	}
	f := parseForm(t, login.body, login.url)
	if f.values.Get("client_id") != "" || f.values.Get("redirect_uri") != "" || f.values.Get("code_challenge") != "" {
		t.Fatalf("the login form carries the authorization request: %v", f.values)
	}
	return submit(t, browser, f, map[string]string{"connector": connector}), verifier
}

// finishAt exchanges the code the browser landed with.
func finishAt(t *testing.T, r *rp, landed page, verifier string) (*oidc.IDToken, map[string]any) {
	t.Helper()
	if landed.location == landed.url || landed.location == nil || !strings.HasPrefix(landed.location.String(), redirectURI) {
		t.Fatalf("did not land at the app: %d %v\n%s", landed.status, landed.location, landed.body)
	}
	tok, err := r.conf.Exchange(r.ctx, landed.location.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	idt, err := r.verifier.Verify(r.ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var claims map[string]any
	_ = idt.Claims(&claims)
	return idt, claims
}

func amrValues(claims map[string]any) []string {
	var out []string
	list, _ := claims["amr"].([]any)
	for _, v := range list {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// welcome answers the page showing the account a connector created.
func welcome(t *testing.T, browser *http.Client, p page, username string) page {
	t.Helper()
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="created"`) || !strings.Contains(p.body, username) {
		t.Fatalf("expected the account-created page for %s: %d\n%s", username, p.status, p.body)
	}
	return submit(t, browser, parseForm(t, p.body, p.url), nil)
}

func TestMusicBrainzConnector(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		s := startE2E(t, dbURL, options{})
		mb := newFakeMusicBrainz(t, s.issuer+"/connectors/musicbrainz/callback")
		if _, err := s.app.connectors.Create(ctx, connectors.Spec{ID: "musicbrainz", Kind: storage.ConnectorMusicBrainz, Name: "MusicBrainz",
			ClientID: mb.clientID, ClientSecret: mb.secret, BaseURL: mb.URL, Scopes: []string{"email"}}); err != nil {
			t.Fatal(err)
		}
		s.client(clients.Spec{ID: "player", Public: true, FirstParty: true, GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "profile", "email", "listenbrainz"}})
		r := s.rp("player", "", "profile", "email", "listenbrainz")

		// A first sign-in creates the account, named after the MetaBrainz
		// username, and shows it; the app gets musicbrainz_name and amr fed.
		mb.signIn(mbAccount{ID: 4242, Name: "rob", Email: "rob@example.org", EmailVerified: true})
		b := travellerBrowser()
		landed, verifier := s.connectorFlow(t, b, r, "musicbrainz")
		idt, claims := finishAt(t, r, welcome(t, b, landed, "rob"), verifier)
		if claims["preferred_username"] != "rob" || claims["musicbrainz_name"] != "rob" || claims["email"] != "rob@example.org" ||
			claims["email_verified"] != true || !slices.Contains(amrValues(claims), "fed") {
			t.Fatalf("claims after a MusicBrainz sign-up: %v", claims)
		}
		rob, err := s.app.store.GetUserByUsername(ctx, "rob")
		if err != nil || idt.Subject != rob.ID || rob.PasswordHash != "" || rob.MusicBrainzName != "rob" {
			t.Fatalf("created account %+v, %v (sub %s)", rob, err, idt.Subject)
		}

		// Signing in again (another browser) reaches the same account, with
		// no welcome and no second account.
		b2 := travellerBrowser()
		landed, verifier = s.connectorFlow(t, b2, r, "musicbrainz")
		if idt, _ := finishAt(t, r, landed, verifier); idt.Subject != rob.ID {
			t.Fatalf("second sign-in: sub %s, want %s", idt.Subject, rob.ID)
		}
		if n := userCount(t, s); n != 1 {
			t.Fatalf("%d users after two sign-ins", n)
		}

		// The person refuses at MusicBrainz: back to the sign-in page.
		mb.mu.Lock()
		mb.deny = true
		mb.mu.Unlock()
		p, _ := s.connectorFlow(t, travellerBrowser(), r, "musicbrainz")
		if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "cancelled at MusicBrainz") || !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("denied: %d\n%s", p.status, p.body)
		}
		// MusicBrainz fails: a page in plain words, never a 500.
		mb.signIn(mbAccount{ID: 4242, Name: "rob"})
		mb.mu.Lock()
		mb.broken = true
		mb.mu.Unlock()
		p, _ = s.connectorFlow(t, travellerBrowser(), r, "musicbrainz")
		if p.status != http.StatusBadGateway || !strings.Contains(p.body, "MusicBrainz could not be used") {
			t.Fatalf("upstream failure: %d\n%s", p.status, p.body)
		}

		// A MetaBrainz account whose email belongs to an account here is
		// never linked by itself: the page asks to sign in to that account
		// first, and only then links it.
		alice := s.user("alice")
		if _, err := s.app.store.UpdateUser(ctx, alice.ID, func(u storage.User) (storage.User, error) {
			u.Email, u.EmailVerified = "alice@example.org", true
			return u, nil
		}); err != nil {
			t.Fatal(err)
		}
		mb.signIn(mbAccount{ID: 7, Name: "alice_mb", Email: "Alice@example.org", EmailVerified: true})
		b3 := travellerBrowser()
		p, verifier = s.connectorFlow(t, b3, r, "musicbrainz")
		if p.status != http.StatusOK || !strings.Contains(p.body, `id="notice"`) || !strings.Contains(p.body, "Sign in to that account to link MusicBrainz") {
			t.Fatalf("email match: %d\n%s", p.status, p.body)
		}
		if _, err := s.app.store.GetUserByUsername(ctx, "alice_mb"); err == nil {
			t.Fatal("an account was created for an identity whose email is taken")
		}
		if links, _ := s.app.store.ListLinkedIdentities(ctx, alice.ID); len(links) != 0 {
			t.Fatalf("linked without signing in: %+v", links)
		}
		landed = submit(t, b3, parseForm(t, p.body, p.url), map[string]string{"username": "alice", "password": e2ePassword})
		if idt, _ := finishAt(t, r, landed, verifier); idt.Subject != alice.ID {
			t.Fatalf("linking sign-in: sub %s", idt.Subject)
		}
		// Now MusicBrainz signs alice in.
		landed, verifier = s.connectorFlow(t, travellerBrowser(), r, "musicbrainz")
		if idt, claims := finishAt(t, r, landed, verifier); idt.Subject != alice.ID || claims["musicbrainz_name"] != "alice_mb" {
			t.Fatalf("after linking: sub %s claims %v", idt.Subject, claims)
		}

		// A taken username: the person chooses another.
		s.user("taken")
		mb.signIn(mbAccount{ID: 8, Name: "taken"})
		b4 := travellerBrowser()
		p, verifier = s.connectorFlow(t, b4, r, "musicbrainz")
		if p.status != http.StatusOK || !strings.Contains(p.body, "Choose a username") {
			t.Fatalf("taken username: %d\n%s", p.status, p.body)
		}
		f := parseForm(t, p.body, p.url)
		if again := submit(t, b4, f, map[string]string{"username": "alice"}); again.status != http.StatusConflict || !strings.Contains(again.body, "already taken") {
			t.Fatalf("choosing a taken name: %d\n%s", again.status, again.body)
		}
		landed = welcome(t, b4, submit(t, b4, f, map[string]string{"username": "taken2"}), "taken2")
		if _, claims := finishAt(t, r, landed, verifier); claims["preferred_username"] != "taken2" || claims["musicbrainz_name"] != "taken" {
			t.Fatalf("chosen username: %v", claims)
		}
	})
}

// The callback accepts one answer per round, from the browser that
// started it.
func TestConnectorCallbackIsSingleUseAndBound(t *testing.T) {
	ctx := context.Background()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	mb := newFakeMusicBrainz(t, s.issuer+"/connectors/mb/callback")
	if _, err := s.app.connectors.Create(ctx, connectors.Spec{ID: "mb", Kind: storage.ConnectorMusicBrainz, Name: "MusicBrainz",
		ClientID: mb.clientID, ClientSecret: mb.secret, BaseURL: mb.URL}); err != nil {
		t.Fatal(err)
	}
	s.client(clients.Spec{ID: "player", Public: true, FirstParty: true, GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "profile"}})
	r := s.rp("player", "", "profile")
	mb.signIn(mbAccount{ID: 1, Name: "replayer"})
	// Record the callback URL on the way.
	var callback *url.URL
	b := travellerBrowser()
	follow := b.CheckRedirect
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.Contains(req.URL.Path, "/connectors/mb/callback") {
			callback = req.URL
		}
		return follow(req, via)
	}
	landed, verifier := s.connectorFlow(t, b, r, "mb")
	finishAt(t, r, welcome(t, b, landed, "replayer"), verifier)
	if callback == nil {
		t.Fatal("no callback seen")
	}
	// Replayed: refused in plain words.
	if p := get(t, b, callback.String()); p.status != http.StatusBadRequest || !strings.Contains(p.body, "already used") && !strings.Contains(p.body, "no longer valid") {
		t.Fatalf("replayed callback: %d\n%s", p.status, p.body)
	}
	// Another browser with a live round's answer: not its interaction.
	b2 := travellerBrowser()
	var live *url.URL
	b2.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.Contains(req.URL.Path, "/connectors/mb/callback") {
			live = req.URL
			return http.ErrUseLastResponse
		}
		return nil
	}
	s.connectorFlow(t, b2, r, "mb")
	if live == nil {
		t.Fatal("no callback seen")
	}
	if p := get(t, travellerBrowser(), live.String()); p.status != http.StatusBadRequest || !strings.Contains(p.body, "started in another browser") {
		t.Fatalf("another browser's callback: %d\n%s", p.status, p.body)
	}
	// A forged state: refused.
	forged := *live
	q := forged.Query()
	q.Set("state", strings.Split(q.Get("state"), ".")[0]+".forged")
	forged.RawQuery = q.Encode()
	if p := get(t, b2, forged.String()); p.status != http.StatusBadRequest {
		t.Fatalf("forged state: %d\n%s", p.status, p.body)
	}
}

// Sign-in through another tonearm (an OpenID provider), and the checks a
// hostile provider's answers fail.
func TestOIDCConnector(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		s := startE2E(t, dbURL, options{})
		up := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "upstream.db"), options{})
		carol := up.user("carol")
		_, secret := up.client(clients.Spec{ID: "downstream", FirstParty: true, RedirectURIs: []string{s.issuer + "/connectors/upstream/callback"},
			GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "profile", "email"}})
		if _, err := s.app.connectors.Create(ctx, connectors.Spec{ID: "upstream", Kind: storage.ConnectorOIDC, Name: "Upstream",
			ClientID: "downstream", ClientSecret: secret, Issuer: up.issuer}); err != nil {
			t.Fatal(err)
		}
		s.client(clients.Spec{ID: "app", Secret: "app-secret-app-secret-app-secret!", GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "profile"}})
		r := s.rp("app", "app-secret-app-secret-app-secret!", "profile")

		b := travellerBrowser()
		upLogin, verifier := s.connectorFlow(t, b, r, "upstream")
		if upLogin.status != http.StatusOK || !strings.HasPrefix(upLogin.url.String(), up.issuer) || !strings.Contains(upLogin.body, `name="password"`) {
			t.Fatalf("expected the upstream's login page: %d %s\n%s", upLogin.status, upLogin.url, upLogin.body)
		}
		created := submit(t, b, parseForm(t, upLogin.body, upLogin.url), map[string]string{"username": "carol", "password": e2ePassword})
		consent := welcome(t, b, created, "carol")
		// A third-party app asks consent after the account is created.
		if !strings.Contains(consent.body, "Allow") {
			t.Fatalf("expected the consent page: %d\n%s", consent.status, consent.body)
		}
		f := parseForm(t, consent.body, consent.url)
		f.values.Set("decision", "allow")
		idt, claims := finishAt(t, r, submit(t, b, f, nil), verifier)
		local, err := s.app.store.GetUserByUsername(ctx, "carol")
		if err != nil || idt.Subject != local.ID || local.ID == carol.ID || !slices.Contains(amrValues(claims), "fed") {
			t.Fatalf("sub %s, local %+v %v, claims %v", idt.Subject, local, err, claims)
		}
		links, _ := s.app.store.ListLinkedIdentities(ctx, local.ID)
		if len(links) != 1 || links[0].Issuer != up.issuer || links[0].Subject != carol.ID {
			t.Fatalf("link keyed on (iss, sub): %+v", links)
		}

		// The upstream is down: the sign-in page says so.
		if _, err := s.app.connectors.Create(ctx, connectors.Spec{ID: "gone", Kind: storage.ConnectorOIDC, Name: "Gone",
			ClientID: "x", ClientSecret: "y", Issuer: "http://127.0.0.1:1"}); err != nil {
			t.Fatal(err)
		}
		if p, _ := s.connectorFlow(t, travellerBrowser(), r, "gone"); p.status != http.StatusBadGateway || !strings.Contains(p.body, "Gone could not be reached") {
			t.Fatalf("upstream down: %d\n%s", p.status, p.body)
		}

		// A hostile provider: every forged answer is refused, and nobody
		// is signed in.
		h := newHostileOIDC(t)
		if _, err := s.app.connectors.Create(ctx, connectors.Spec{ID: "hostile", Kind: storage.ConnectorOIDC, Name: "Hostile",
			ClientID: h.clientID, ClientSecret: h.secret, Issuer: h.URL}); err != nil {
			t.Fatal(err)
		}
		for _, forge := range []string{"signature", "nonce", "audience", "expired"} {
			h.setForge(forge)
			p, _ := s.connectorFlow(t, travellerBrowser(), r, "hostile")
			if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "could not be trusted") {
				t.Fatalf("forged %s: %d\n%s", forge, p.status, p.body)
			}
		}
		if _, err := s.app.store.GetUserByUsername(ctx, "mallory"); err == nil {
			t.Fatal("a forged answer created an account")
		}
		// The honest answer of the same provider works.
		h.setForge("")
		b5 := travellerBrowser()
		landed, verifier := s.connectorFlow(t, b5, r, "hostile")
		consent = welcome(t, b5, landed, "mallory")
		f = parseForm(t, consent.body, consent.url)
		f.values.Set("decision", "allow")
		finishAt(t, r, submit(t, b5, f, nil), verifier)
	})
}

// Linking and unlinking from the account page; the last way to sign in
// stays.
func TestAccountLinksConnectors(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		s := startE2E(t, dbURL, options{})
		mb := newFakeMusicBrainz(t, s.issuer+"/connectors/musicbrainz/callback")
		if _, err := s.app.connectors.Create(ctx, connectors.Spec{ID: "musicbrainz", Kind: storage.ConnectorMusicBrainz, Name: "MusicBrainz",
			ClientID: mb.clientID, ClientSecret: mb.secret, BaseURL: mb.URL}); err != nil {
			t.Fatal(err)
		}
		bob := s.user("bob")
		b := travellerBrowser()
		s.signInPage(t, b, "bob")
		acct := get(t, b, s.issuer+"/account")
		if !strings.Contains(acct.body, "Sign-in methods") || !strings.Contains(acct.body, "Link MusicBrainz") {
			t.Fatalf("account page without sign-in methods:\n%s", acct.body)
		}
		mb.signIn(mbAccount{ID: 99, Name: "bob_mb"})
		f := accountForm(t, acct, "/account/connectors/link")
		linked := submit(t, b, f, map[string]string{"connector": "musicbrainz"})
		if linked.status != http.StatusOK || !strings.Contains(linked.body, "The sign-in method is linked") || !strings.Contains(linked.body, "bob_mb") {
			t.Fatalf("link: %d %s\n%s", linked.status, linked.url, linked.body)
		}
		if u, _ := s.app.store.GetUser(ctx, bob.ID); u.MusicBrainzName != "bob_mb" {
			t.Fatalf("musicbrainz name after linking: %q", u.MusicBrainzName)
		}
		// The same MetaBrainz account cannot be linked to a second account.
		s.user("eve")
		e := travellerBrowser()
		s.signInPage(t, e, "eve")
		p := submit(t, e, accountForm(t, get(t, e, s.issuer+"/account"), "/account/connectors/link"), map[string]string{"connector": "musicbrainz"})
		if p.status != http.StatusConflict || !strings.Contains(p.body, "linked to another account") {
			t.Fatalf("linking a linked identity: %d\n%s", p.status, p.body)
		}
		// Unlink (bob has a password).
		p = submit(t, b, accountForm(t, get(t, b, s.issuer+"/account"), "/account/connectors/unlink"), nil)
		if p.status != http.StatusOK || !strings.Contains(p.body, "unlinked") {
			t.Fatalf("unlink: %d\n%s", p.status, p.body)
		}
		if u, _ := s.app.store.GetUser(ctx, bob.ID); u.MusicBrainzName != "" {
			t.Fatalf("musicbrainz name after unlinking: %q", u.MusicBrainzName)
		}
		// An account created through a connector keeps its only way in.
		mb.signIn(mbAccount{ID: 100, Name: "only"})
		o := travellerBrowser()
		p = submit(t, o, parseForm(t, get(t, o, s.issuer+"/login").body, mustURL(s.issuer+"/login")), map[string]string{"connector": "musicbrainz"})
		welcome(t, o, p, "only")
		p = submit(t, o, accountForm(t, get(t, o, s.issuer+"/account"), "/account/connectors/unlink"), nil)
		if p.status != http.StatusConflict || !strings.Contains(p.body, "only way to sign in") {
			t.Fatalf("unlinking the last way in: %d\n%s", p.status, p.body)
		}
		if _, err := s.app.accounts.Authenticate(ctx, "only", "", nil); err == nil {
			t.Fatal("a connector account signed in with an empty password")
		}
		_ = accounts.AMRFederated
	})
}

func mustURL(raw string) *url.URL {
	u, _ := url.Parse(raw)
	return u
}

// In Chromium: "Continue with MusicBrainz" from an app's authorization
// request goes to MusicBrainz (the stand-in), back, shows the account it
// created, and lands at the app signed in.
func browserMusicBrainz(t *testing.T, s *server) {
	ctx := context.Background()
	mb := newFakeMusicBrainz(t, s.issuer+"/connectors/musicbrainz/callback")
	if _, err := s.app.connectors.Create(ctx, connectors.Spec{ID: "musicbrainz", Kind: storage.ConnectorMusicBrainz, Name: "MusicBrainz",
		ClientID: mb.clientID, ClientSecret: mb.secret, BaseURL: mb.URL}); err != nil {
		t.Fatal(err)
	}
	mb.signIn(mbAccount{ID: 31337, Name: "chromium_mb"})
	app := s.webAppWith(t, "party-mb", true)
	b := newBrowser(t)
	b.open(app.authURL())
	b.wantText("Continue with MusicBrainz")
	b.run(chromedp.Click(chromedp.CSS(`button[name=connector][value=musicbrainz]`)), chromedp.WaitVisible(chromedp.CSS("#created")))
	b.wantText("chromium_mb")
	b.run(chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	tok := app.finish(t, b)
	claims := idClaims(t, tok.Extra("id_token").(string))
	if claims["preferred_username"] != "chromium_mb" || !slices.Contains(amrValues(claims), "fed") {
		t.Fatalf("ID token claims = %v", claims)
	}
}
