package main

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/totp"
)

// Issue 35, items 4 to 6: the pages' language through a sign-in.

// getLang fetches u and returns the page with its Content-Language.
func getLang(t *testing.T, c *http.Client, u string, header ...string) (page, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lang := resp.Header.Get("Content-Language")
	return read(t, resp), lang
}

// wantLang fails unless the page is in tag (Content-Language, and <html
// lang> on the pages converted to the catalogs).
func wantLang(t *testing.T, where string, p page, contentLanguage, tag string) {
	t.Helper()
	if contentLanguage != tag {
		t.Fatalf("%s: Content-Language %q, want %q (status %d)\n%s", where, contentLanguage, tag, p.status, p.body)
	}
	if strings.Contains(p.body, `lang="{{lang}}"`) || (strings.Contains(p.body, `<html lang="`) && !strings.Contains(p.body, `<html lang="`+tag+`"`) && !strings.Contains(p.body, `<html lang="en">`)) {
		t.Fatalf("%s: <html lang> is not %s:\n%s", where, tag, p.body)
	}
}

// Item 4: ui_locales=ja gives Japanese pages through the whole sign-in
// (sign-in, second factor, consent) and back to the app; ui_locales=xx
// de-CH gives German; an unknown one the default. Also in a pushed request.
func TestI35UILocales(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		clock := newFrozenClock()
		s := startI35(t, dbURL, options{now: clock.now}, i35Catalogs)
		s.user("kenji")
		own := s.browser()
		s.signInPage(t, own, "kenji")
		secret, _ := enrolTOTP(t, s, own, clock)
		_, appSecret := s.client(clients.Spec{ID: "jp-app", Scopes: []string{"openid", "profile"}})
		r := s.rp("jp-app", appSecret, "profile")

		b := s.browser()
		verifier := oauth2.GenerateVerifier()
		authURL := r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(t)), oauth2.SetAuthURLParam("ui_locales", "ja"))
		login, lang := getLang(t, b, authURL, "Accept-Language", "de")
		wantLang(t, "sign-in", login, lang, "ja")
		if !strings.Contains(login.body, `<html lang="ja" dir="ltr">`) || !strings.Contains(login.body, "サインイン") {
			t.Fatalf("the sign-in page is not Japanese:\n%s", login.body)
		}
		second, h := submitWithHeader(t, b, parseForm(t, login.body, login.url), map[string]string{"username": "kenji", "password": e2ePassword})
		if !strings.Contains(second.body, `name="totp_code"`) {
			t.Fatalf("expected the second-factor step: %d\n%s", second.status, second.body)
		}
		wantLang(t, "second factor", second, h.Get("Content-Language"), "ja")
		clock.advance(totp.Period) // the enrolment used this step's code
		consent, h := submitWithHeader(t, b, parseForm(t, second.body, second.url), map[string]string{"totp_code": clock.code(secret)})
		if consent.location != nil && consent.status == http.StatusSeeOther {
			consent, lang = getLang(t, b, consent.location.String())
			h = http.Header{"Content-Language": {lang}}
		}
		if !strings.Contains(consent.body, `value="consent"`) {
			t.Fatalf("expected the consent page: %d\n%s", consent.status, consent.body)
		}
		wantLang(t, "consent", consent, h.Get("Content-Language"), "ja")
		back := submit(t, b, parseForm(t, consent.body, consent.url), map[string]string{"decision": "allow"})
		if back.location == nil || back.location.Host != "127.0.0.1:1" || back.location.Query().Get("code") == "" {
			t.Fatalf("no redirect back to the app: %d %v\n%s", back.status, back.location, back.body)
		}
		if _, err := r.conf.Exchange(r.ctx, back.location.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("code exchange: %v", err)
		}

		// The first tag a catalog has; then none known: the default,
		// whatever the browser's Accept-Language says of English.
		for _, c := range []struct{ ui, want string }{{"xx de-CH", "de"}, {"tlh sw", "en"}} {
			p, lang := getLang(t, s.browser(), r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("ui_locales", c.ui)))
			wantLang(t, "ui_locales="+c.ui, p, lang, c.want)
			if !strings.Contains(p.body, `<html lang="`+c.want+`"`) {
				t.Fatalf("ui_locales=%s: <html lang> is not %s", c.ui, c.want)
			}
		}

		// In a pushed authorization request (RFC 9126).
		par := s.post(provider.PARPath, "jp-app", appSecret, url.Values{"response_type": {"code"}, "client_id": {"jp-app"}, "redirect_uri": {redirectURI},
			"scope": {"openid profile"}, "state": {random(t)}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)},
			"code_challenge_method": {"S256"}, "ui_locales": {"de-AT ja"}})
		uri, _ := par.body["request_uri"].(string)
		if par.status != http.StatusCreated || uri == "" {
			t.Fatalf("PAR: %d %v", par.status, par.body)
		}
		p, lang := getLang(t, s.browser(), s.issuer+provider.AuthorizePath+"?"+url.Values{"client_id": {"jp-app"}, "request_uri": {uri}}.Encode())
		wantLang(t, "pushed ui_locales", p, lang, "de")

		// An error page of the authorization endpoint itself.
		p, lang = getLang(t, s.browser(), s.issuer+provider.AuthorizePath+"?"+url.Values{"client_id": {"nobody"}, "ui_locales": {"ja"}}.Encode())
		if p.status < 400 {
			t.Fatalf("an unknown client: %d", p.status)
		}
		wantLang(t, "authorization error page", p, lang, "ja")
	})
}

// Item 5: the picker. Picking de on the sign-in page gives German pages
// after it (a cookie); signed in, it is saved on the account too. An
// unknown tag is 400 and sets nothing; a cross-site POST is 403.
func TestI35LanguagePicker(t *testing.T) {
	s := startI35(t, "sqlite://"+t.TempDir()+"/t.db", options{}, i35Catalogs)
	u := s.user("picky")
	b := s.browser()
	login, lang := getLang(t, b, s.issuer+"/login")
	wantLang(t, "sign-in before", login, lang, "en")
	pick := func(c *http.Client, tag, referer string, header ...string) (page, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.issuer+"/language", strings.NewReader(url.Values{"lang": {tag}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if referer != "" {
			req.Header.Set("Referer", referer)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return read(t, resp), resp.Header
	}
	// A cross-site page, an unknown tag: refused, nothing set.
	if p, h := pick(b, "de", s.issuer+"/login", "Origin", "https://evil.example"); p.status != http.StatusForbidden || h.Get("Set-Cookie") != "" {
		t.Fatalf("cross-site pick: %d, Set-Cookie %q", p.status, h.Get("Set-Cookie"))
	}
	if p, h := pick(b, "de", s.issuer+"/login", "Sec-Fetch-Site", "cross-site"); p.status != http.StatusForbidden || h.Get("Set-Cookie") != "" {
		t.Fatalf("cross-site pick (Sec-Fetch-Site): %d, Set-Cookie %q", p.status, h.Get("Set-Cookie"))
	}
	for _, bad := range []string{"xx", "", "de, ja", strings.Repeat("d", 100)} {
		if p, h := pick(b, bad, s.issuer+"/login", "Origin", s.issuer); p.status != http.StatusBadRequest || h.Get("Set-Cookie") != "" {
			t.Fatalf("pick %q: %d, Set-Cookie %q", bad, p.status, h.Get("Set-Cookie"))
		}
	}
	if _, lang := getLang(t, b, s.issuer+"/login"); lang != "en" {
		t.Fatalf("a refused pick changed the language: %s", lang)
	}
	// Picked on the sign-in page: back to it (303), in German from then on.
	noFollow := &http.Client{Jar: b.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	p, h := pick(noFollow, "de-CH", s.issuer+"/login?continue=%2Faccount", "Origin", s.issuer)
	if p.status != http.StatusSeeOther || p.location == nil || p.location.String() != s.issuer+"/login?continue=%2Faccount" || !strings.Contains(h.Get("Set-Cookie"), "tonearm_lang=de.") {
		t.Fatalf("pick de-CH: %d %v, Set-Cookie %q", p.status, p.location, h.Get("Set-Cookie"))
	}
	login, lang = getLang(t, b, s.issuer+"/login", "Accept-Language", "ja")
	wantLang(t, "sign-in after picking de", login, lang, "de")
	if !strings.Contains(login.body, "Anmelden") {
		t.Fatalf("the sign-in page is not German:\n%s", login.body)
	}
	// Another site's page as the Referer: not followed.
	for _, ref := range []string{"https://evil.example/login", "", s.issuer + "//evil.example/x"} {
		if p, _ := pick(noFollow, "de", ref, "Origin", s.issuer); p.location == nil || p.location.String() != s.issuer+"/account" {
			t.Fatalf("Referer %q: redirected to %v, want the account page", ref, p.location)
		}
	}
	if got, _ := s.app.store.GetUser(context.Background(), u.ID); got.Language != "" {
		t.Fatalf("a pick while signed out saved %q on an account", got.Language)
	}

	// Signed in: the pick is saved on the account as well.
	s.signInPage(t, b, "picky")
	if p, _ := pick(noFollow, "ja", s.issuer+"/account", "Origin", s.issuer); p.status != http.StatusSeeOther {
		t.Fatalf("pick ja signed in: %d", p.status)
	}
	if got, _ := s.app.store.GetUser(context.Background(), u.ID); got.Language != "ja" {
		t.Fatalf("the pick was not saved on the account: %q", got.Language)
	}
	acct, lang := getLang(t, b, s.issuer+"/account", "Accept-Language", "de")
	wantLang(t, "account after picking ja", acct, lang, "ja")
}

// Item 6: a signed-in person's saved language wins over Accept-Language:
// after signing in (the session sets the picker's cookie from it), and on
// the pages that know the account (the account page, the steps of an
// app's sign-in).
func TestI35AccountLanguageWins(t *testing.T) {
	s := startI35(t, "sqlite://"+t.TempDir()+"/t.db", options{}, i35Catalogs)
	u := s.user("hanna")
	if _, err := s.app.accounts.UpdateProfile(context.Background(), u.ID, accountsLanguage("de")); err != nil {
		t.Fatal(err)
	}
	_, appSecret := s.client(clients.Spec{ID: "fr-app", Scopes: []string{"openid", "profile"}})
	r := s.rp("fr-app", appSecret, "profile")
	b := s.browser()
	login, lang := getLang(t, b, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "Accept-Language", "fr")
	wantLang(t, "sign-in before", login, lang, "fr") // not signed in yet: the browser's language
	consent, h := submitWithHeader(t, b, parseForm(t, login.body, login.url), map[string]string{"username": "hanna", "password": e2ePassword})
	if consent.status == http.StatusSeeOther && consent.location != nil {
		consent, lang = getLang(t, b, consent.location.String(), "Accept-Language", "fr")
		h = http.Header{"Content-Language": {lang}}
	}
	if !strings.Contains(consent.body, `value="consent"`) {
		t.Fatalf("expected the consent page: %d\n%s", consent.status, consent.body)
	}
	wantLang(t, "consent", consent, h.Get("Content-Language"), "de")
	for _, path := range []string{"/login", "/account"} {
		p, lang := getLang(t, b, s.issuer+path, "Accept-Language", "fr, ja;q=0.9")
		wantLang(t, path+" after sign-in", p, lang, "de")
	}
	// The same account, a browser that signs in with the User API: the
	// account page still knows the account.
	api := s.loginBrowser("hanna")
	if p, lang := getLang(t, api, s.issuer+"/account", "Accept-Language", "ja"); lang != "de" {
		t.Fatalf("/account with Accept-Language ja: %s (%d)", lang, p.status)
	}
}

// Item 4: the sign-up page an app's sign-in links to speaks the app's
// ui_locales too, and the new account keeps that language.
func TestI35UILocalesSignUp(t *testing.T) {
	s := startI35(t, "sqlite://"+t.TempDir()+"/t.db", options{}, i35Catalogs)
	_, appSecret := s.client(clients.Spec{ID: "jp-app", Scopes: []string{"openid", "profile"}})
	r := s.rp("jp-app", appSecret, "profile")
	b := s.browser()
	login, lang := getLang(t, b, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("ui_locales", "ja")), "Accept-Language", "de")
	wantLang(t, "sign-in", login, lang, "ja")
	m := regexp.MustCompile(`href="([^"]*/signup[^"]*)"`).FindStringSubmatch(login.body)
	if m == nil {
		t.Fatalf("no sign-up link on the sign-in page:\n%s", login.body)
	}
	link, _ := login.url.Parse(html.UnescapeString(m[1]))
	signup, lang := getLang(t, b, link.String(), "Accept-Language", "de")
	wantLang(t, "sign-up", signup, lang, "ja")
	f := parseForm(t, signup.body, signup.url)
	f.values.Set("username", "hikari")
	f.values.Set("password", e2ePassword)
	submit(t, b, f, nil)
	if u, err := s.app.store.GetUserByUsername(context.Background(), "hikari"); err != nil || u.Language != "ja" {
		t.Fatalf("signed up from a ui_locales=ja sign-in: language %q, %v", u.Language, err)
	}
}
