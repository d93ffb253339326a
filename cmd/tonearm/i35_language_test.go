package main

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/mail/mailtest"
)

// Issue 35: choosing the language, the saved language, mails in it.

// i35Theme is a theme folder whose locales/ adds languages (the shipped
// catalogs other than English arrive later from the translators): each
// catalog maps English message IDs to its words; a message it lacks stays
// English.
func i35Theme(t *testing.T, catalogs map[string]map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "locales"), 0o755); err != nil {
		t.Fatal(err)
	}
	for tag, msgs := range catalogs {
		b, _ := json.Marshal(msgs)
		if err := os.WriteFile(filepath.Join(dir, "locales", tag+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// i35Catalogs are German and Japanese words for the sign-in page and the
// mails, and a site name of the operator's.
var i35Catalogs = map[string]map[string]string{
	"de": {"Sign in": "Anmelden", "Password": "Passwort", "Reset your tonearm password": "Setze dein tonearm-Passwort zurück"},
	"ja": {"Sign in": "サインイン", "Password": "パスワード", "Reset your tonearm password": "tonearm のパスワードの再設定",
		"Hello {{.Username}},": "{{.Username}} さん、", "Verify your tonearm email address": "tonearm のメールアドレスの確認"},
}

// startI35 is a server whose theme folder adds the catalogs.
func startI35(t *testing.T, dbURL string, opt options, catalogs map[string]map[string]string) *server {
	t.Helper()
	theme := i35Theme(t, catalogs)
	return startE2EConfig(t, dbURL, opt, func(c *config.Config) { c.ThemeDir = theme })
}

// Item 2: the saved language is shown and set by the admin API, the
// account API and the CLI's users update; a tag no catalog matches is a
// 400 that changes nothing; de-CH is saved as de.
func TestI35SavedLanguageAPIs(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startI35(t, dbURL, options{}, i35Catalogs)
		s.admin("root")
		adminTok := s.userToken("root", "admin")
		u := s.user("polyglot")
		path := "/api/admin/users/" + u.ID

		got := s.want(s.call(nil, http.MethodPatch, path, adminTok, map[string]any{"language": "de-CH"}), http.StatusOK)
		if got.body["language"] != "de" {
			t.Fatalf("admin PATCH language de-CH = %s, want it saved as de", got.raw)
		}
		for _, bad := range []any{"xx", "tlh", "de;q=1", "de, ja", strings.Repeat("a", 80), 42} {
			r := s.want(s.call(nil, http.MethodPatch, path, adminTok, map[string]any{"language": bad, "name": "Changed Name"}), http.StatusBadRequest)
			if _, isString := bad.(string); isString && !strings.Contains(r.errMsg(), "Language") {
				t.Errorf("language %v: error %q does not say what is wrong", bad, r.errMsg())
			}
		}
		if got := s.want(s.call(nil, http.MethodGet, path, adminTok, nil), http.StatusOK); got.body["language"] != "de" || got.body["name"] != nil {
			t.Fatalf("a refused PATCH changed the user: %s", got.raw)
		}

		// The person's own API.
		browser := s.loginBrowser("polyglot")
		if me := s.want(s.call(browser, http.MethodGet, "/api/me", "", nil), http.StatusOK); me.body["language"] != "de" {
			t.Fatalf("GET /api/me = %s", me.raw)
		}
		if me := s.want(s.call(browser, http.MethodPatch, "/api/me", "", map[string]any{"language": "ja-JP"}), http.StatusOK); me.body["language"] != "ja" {
			t.Fatalf("PATCH /api/me language ja-JP = %s", me.raw)
		}
		s.want(s.call(browser, http.MethodPatch, "/api/me", "", map[string]any{"language": "sw"}), http.StatusBadRequest)
		if me := s.want(s.call(browser, http.MethodPatch, "/api/me", "", map[string]any{"language": nil}), http.StatusOK); me.body["language"] != nil {
			t.Fatalf("null did not clear the language: %s", me.raw)
		}
		s.want(s.call(browser, http.MethodPatch, "/api/me", "", map[string]any{"language": "ja"}), http.StatusOK)
		if me := s.want(s.call(browser, http.MethodPatch, "/api/me", "", map[string]any{"language": ""}), http.StatusOK); me.body["language"] != nil {
			t.Fatalf(`"" did not clear the language: %s`, me.raw)
		}
	})
}

// Item 2: tonearm users update --language and users show.
func TestI35UsersUpdateLanguage(t *testing.T) {
	env := migratedEnv(t)
	theme := i35Theme(t, i35Catalogs)
	withTheme := func(k string) string {
		if k == "TONEARM_THEME_DIR" {
			return theme
		}
		return env(k)
	}
	if err := run(context.Background(), []string{"users", "create", "--password-stdin", "--username", "ren"}, withTheme, strings.NewReader("ren-password-12\n"), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if out, _, _, err := cliRun(t, withTheme, "users", "update", "ren", "--language", "de-AT", "--json"); err != nil || !strings.Contains(out, `"language":"de"`) {
		t.Fatalf("users update --language de-AT: %q, %v", out, err)
	}
	if _, _, code, err := cliRun(t, withTheme, "users", "update", "ren", "--language", "xx"); err == nil || code != 1 || !strings.Contains(err.Error(), "Language") {
		t.Fatalf("users update --language xx: %v (exit %d)", err, code)
	}
	if out, _, _, err := cliRun(t, withTheme, "users", "show", "ren"); err != nil || !strings.Contains(out, "language") || !strings.Contains(out, " de\n") {
		t.Fatalf("users show: %q, %v", out, err)
	}
	if out, _, _, err := cliRun(t, withTheme, "users", "update", "ren", "--language", "", "--json"); err != nil || strings.Contains(out, `"language"`) {
		t.Fatalf(`users update --language "": %q, %v`, out, err)
	}
}

// Item 3 (and 8): the profile scope releases locale in the ID token and
// userinfo; the claims parameter may name it; discovery lists the
// languages, a theme's included, and the locale claim.
func TestI35LocaleClaimAndDiscovery(t *testing.T) {
	s := startI35(t, "sqlite://"+t.TempDir()+"/t.db", options{}, i35Catalogs)
	u := s.user("lingua")
	if _, err := s.app.accounts.UpdateProfile(context.Background(), u.ID, accountsLanguage("ja")); err != nil {
		t.Fatal(err)
	}
	_, secret := s.client(clients.Spec{ID: "web", FirstParty: true, Scopes: []string{"openid", "profile", "email"}})
	r := s.rp("web", secret, "profile")
	tok := s.codeFlow(r, s.browser(), "lingua")
	idt, err := r.verifier.Verify(r.ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	idt.Claims(&c)
	if c["locale"] != "ja" {
		t.Fatalf("ID token locale = %v, want ja (claims %v)", c["locale"], c)
	}
	info, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	var ic map[string]any
	info.Claims(&ic)
	if ic["locale"] != "ja" {
		t.Fatalf("userinfo locale = %v", ic["locale"])
	}
	// Without profile, no locale; asked by name with the claims parameter, it comes.
	r2 := s.rp("web", secret, "email")
	tok2 := s.codeFlow(r2, s.browser(), "lingua")
	idt2, _ := r2.verifier.Verify(r2.ctx, tok2.Extra("id_token").(string))
	var c2 map[string]any
	idt2.Claims(&c2)
	if _, has := c2["locale"]; has {
		t.Fatalf("locale released without the profile scope: %v", c2)
	}
	tok3 := s.codeFlow(r2, s.browser(), "lingua", oauth2.SetAuthURLParam("claims", `{"id_token":{"locale":null}}`))
	idt3, _ := r2.verifier.Verify(r2.ctx, tok3.Extra("id_token").(string))
	var c3 map[string]any
	idt3.Claims(&c3)
	if c3["locale"] != "ja" {
		t.Fatalf("claims parameter naming locale: ID token %v", c3)
	}

	var disco struct {
		UILocales []string `json:"ui_locales_supported"`
		Claims    []string `json:"claims_supported"`
	}
	resp, err := http.Get(s.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&disco); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(disco.UILocales, " "); got != "en ar de es fr ja nl pt-BR" {
		t.Fatalf("ui_locales_supported = %v, want en (the default) first, then every shipped language", disco.UILocales)
	}
	if !strings.Contains(" "+strings.Join(disco.Claims, " ")+" ", " locale ") {
		t.Fatalf("claims_supported = %v lacks locale", disco.Claims)
	}
}

// accountsLanguage is a profile change that saves a language.
func accountsLanguage(tag string) accounts.ProfileUpdate {
	return accounts.ProfileUpdate{Language: accounts.Value(tag)}
}

// mailSubject waits for the stand-in's next mail and returns its decoded
// Subject and the mail.
func mailSubject(t *testing.T, smtp *mailtest.Server) (string, string) {
	t.Helper()
	var msg string
	select {
	case msg = <-smtp.Received:
	case <-time.After(15 * time.Second):
		t.Fatal("the SMTP stand-in received no mail")
	}
	m, err := mail.ReadMessage(strings.NewReader(msg))
	if err != nil {
		t.Fatalf("mail %q: %v", msg, err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return subject, msg
}

// Items 7 and 8: mails in the person's language, from a catalog the
// operator dropped into TONEARM_THEME_DIR/locales (the Japanese one is not
// shipped yet): the account's saved language, else the language of the
// page that asked for the mail; at sign-up the page's language is saved.
func TestI35MailsInThePersonsLanguage(t *testing.T) {
	smtp := mailtest.Start(t, nil)
	theme := i35Theme(t, i35Catalogs)
	s := startE2EConfig(t, "sqlite://"+t.TempDir()+"/t.db", options{}, func(c *config.Config) {
		c.ThemeDir = theme
		c.SMTPURL = "smtp://" + smtp.Addr() + "?from=tonearm@example.org&tls=none"
	})
	ctx := context.Background()
	yuki := s.user("yuki")
	if _, err := s.app.accounts.AdminUpdate(ctx, yuki.ID, accounts.AdminChange{Profile: accounts.ProfileUpdate{
		Email: accounts.Value("yuki@example.org"), Language: accounts.Value("ja")}, EmailVerified: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	forgot := func(email string, header ...string) {
		t.Helper()
		b := s.browser()
		p := get(t, b, s.issuer+"/password/forgot")
		f := parseForm(t, p.body, p.url)
		f.values.Set("email", email)
		req, _ := http.NewRequest(http.MethodPost, f.action, strings.NewReader(f.values.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Body.Close(); resp.StatusCode != http.StatusOK {
			t.Fatalf("forgot: %d", resp.StatusCode)
		}
	}
	// The saved language wins over the page's (German here).
	forgot("yuki@example.org", "Accept-Language", "de")
	if subject, msg := mailSubject(t, smtp); subject != "tonearm のパスワードの再設定" || !strings.Contains(msg, "/password/reset?token=") {
		t.Fatalf("reset mail to a person whose language is ja: subject %q\n%s", subject, msg)
	}
	// No saved language: the page's.
	ken := s.user("ken")
	if _, err := s.app.accounts.AdminUpdate(ctx, ken.ID, accounts.AdminChange{Profile: accounts.ProfileUpdate{Email: accounts.Value("ken@example.org")}, EmailVerified: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	forgot("ken@example.org", "Accept-Language", "de-DE, en;q=0.5")
	if subject, _ := mailSubject(t, smtp); subject != "Setze dein tonearm-Passwort zurück" {
		t.Fatalf("reset mail from a German page: subject %q", subject)
	}
	// A Japanese page: the operator's words where its catalog has them,
	// the shipped Japanese elsewhere.
	forgot("ken@example.org", "Accept-Language", "ja")
	if subject, msg := mailSubject(t, smtp); subject != "tonearm のパスワードの再設定" || !strings.Contains(msg, "ken さん、") || !strings.Contains(msg, "パスワードは変更されません") {
		t.Fatalf("reset mail from a Japanese page: subject %q\n%s", subject, msg)
	}
	// Neither: the default, English.
	forgot("ken@example.org")
	if subject, _ := mailSubject(t, smtp); subject != "Reset your tonearm password" {
		t.Fatalf("reset mail, no language anywhere: subject %q", subject)
	}

	// Sign-up on a Japanese page: the account keeps ja, the verification mail is Japanese.
	b := s.browser()
	p, _ := getLang(t, b, s.issuer+"/signup", "Accept-Language", "ja")
	f := parseForm(t, p.body, p.url)
	f.values.Set("username", "sakura")
	f.values.Set("password", e2ePassword)
	f.values.Set("email", "sakura@example.org")
	req, _ := http.NewRequest(http.MethodPost, f.action, strings.NewReader(f.values.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept-Language", "ja")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	u, err := s.app.store.GetUserByUsername(ctx, "sakura")
	if err != nil || u.Language != "ja" {
		t.Fatalf("signed up on a Japanese page: language %q, %v", u.Language, err)
	}
	if subject, _ := mailSubject(t, smtp); subject != "tonearm のメールアドレスの確認" {
		t.Fatalf("verification mail after a Japanese sign-up: subject %q", subject)
	}
}

// Item 8: an operator's catalog in TONEARM_THEME_DIR/locales adds a
// language (listed in the picker and discovery) or overrides single
// messages of a shipped one, the site name included; a message it lacks is
// English, never its key.
func TestI35OperatorCatalogs(t *testing.T) {
	s := startI35(t, "sqlite://"+t.TempDir()+"/t.db", options{}, map[string]map[string]string{
		"en": {"Sign in": "Log in to the archive", "tonearm": "The Archive"},
		"de": {"Sign in": "Einloggen", "tonearm": "Das Archiv"},
		"eo": {"Sign in": "Ensaluti", "tonearm": "La Arkivo"},
	})
	en, lang := getLang(t, s.browser(), s.issuer+"/login")
	wantLang(t, "English", en, lang, "en")
	if !strings.Contains(en.body, "<h1>Log in to the archive</h1>") || !strings.Contains(en.body, "<span>The Archive</span>") {
		t.Fatalf("the English overrides are not shown:\n%s", en.body)
	}
	if !strings.Contains(en.body, `<option value="eo" lang="eo"`) || !strings.Contains(en.body, `<option value="de" lang="de"`) {
		t.Fatalf("the picker does not list the theme's language:\n%s", en.body)
	}
	// A shipped language: the operator's words where it has them, the
	// shipped catalog's elsewhere.
	de, lang := getLang(t, s.browser(), s.issuer+"/login", "Accept-Language", "de-AT")
	wantLang(t, "German", de, lang, "de")
	if !strings.Contains(de.body, "<h1>Einloggen</h1>") || !strings.Contains(de.body, "<span>Das Archiv</span>") || !strings.Contains(de.body, ">Passwort<") {
		t.Fatalf("the German override is not used over the shipped catalog:\n%s", de.body)
	}
	// An added language: its words, and English for the messages it lacks,
	// never an ID or an error.
	eo, lang := getLang(t, s.browser(), s.issuer+"/login", "Accept-Language", "eo")
	wantLang(t, "Esperanto", eo, lang, "eo")
	if !strings.Contains(eo.body, "<h1>Ensaluti</h1>") || !strings.Contains(eo.body, "<span>La Arkivo</span>") ||
		!strings.Contains(eo.body, ">Password<") || !strings.Contains(eo.body, "</html>") {
		t.Fatalf("the added language is not used, or a message it lacks is not English:\n%s", eo.body)
	}
}
