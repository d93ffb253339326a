package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

// pickFrom posts the header's language picker as a browser on referer does.
func pickFrom(t *testing.T, c *http.Client, s *server, tag, referer string) page {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.issuer+"/language", strings.NewReader(url.Values{"lang": {tag}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", s.issuer)
	req.Header.Set("Referer", referer)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

// Found from outside (issue 35): a language picked on the first sign-in
// page (answered by the authorization endpoint itself) wins over the
// app's ui_locales, though the pick sends the browser through the
// authorization request again.
func TestI35PickOnTheFirstSignInPage(t *testing.T) {
	s := startI35(t, "sqlite://"+t.TempDir()+"/t.db", options{}, nil)
	s.user("kenji")
	_, secret := s.client(clients.Spec{ID: "ja-app", Scopes: []string{"openid", "profile"}})
	r := s.rp("ja-app", secret, "profile")
	b := s.browser()
	authorize := r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("ui_locales", "ja"))
	login, lang := getLang(t, b, authorize)
	wantLang(t, "sign-in asked in ja", login, lang, "ja")
	back := pickFrom(t, b, s, "de", login.url.String())
	if back.status != http.StatusOK || !strings.Contains(back.body, `lang="de"`) {
		t.Fatalf("after picking de on the first sign-in page: %d\n%s", back.status, back.body)
	}
	consent, h := submitWithHeader(t, b, parseForm(t, back.body, back.url), map[string]string{"username": "kenji", "password": e2ePassword})
	if !strings.Contains(consent.body, `value="consent"`) || h.Get("Content-Language") != "de" {
		t.Fatalf("consent after picking de: %d %q\n%s", consent.status, h.Get("Content-Language"), consent.body)
	}
}

// Found from outside: the pages whose handler does not load the account
// (sign-in, sign-out, password) speak the saved language too, though this
// browser's cookie still holds the language of its sign-in; a forged pick
// time in the future does not beat ui_locales; one unknown tag does not
// throw away Accept-Language.
func TestI35SavedLanguageOnEveryPage(t *testing.T) {
	s := startI35(t, "sqlite://"+t.TempDir()+"/t.db", options{}, nil)
	u := s.user("aiko")
	if _, err := s.app.accounts.UpdateProfile(context.Background(), u.ID, accountsLanguage("ja")); err != nil {
		t.Fatal(err)
	}
	b := s.browser()
	s.signInPage(t, b, "aiko")
	if _, err := s.app.accounts.UpdateProfile(context.Background(), u.ID, accountsLanguage("fr")); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/login", "/oauth2/logout", "/password/forgot", "/account"} {
		p, lang := getLang(t, b, s.issuer+path, "Accept-Language", "de")
		wantLang(t, path+" after the saved language changed elsewhere", p, lang, "fr")
	}

	_, secret := s.client(clients.Spec{ID: "de-app", Scopes: []string{"openid", "profile"}})
	r := s.rp("de-app", secret, "profile")
	forged := s.browser()
	u2, _ := url.Parse(s.issuer)
	forged.Jar.SetCookies(u2, []*http.Cookie{{Name: "tonearm_lang", Value: "ja.99999999999", Path: "/"}})
	p, lang := getLang(t, forged, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("ui_locales", "de")))
	wantLang(t, "ui_locales de with a pick dated in the future", p, lang, "de")

	p, lang = getLang(t, s.browser(), s.issuer+"/login", "Accept-Language", "xx, ar")
	wantLang(t, "Accept-Language xx, ar", p, lang, "ar")
}

// Found from outside: an error on /account in Japanese ends with the
// language's own full stop, not an ASCII one.
func TestI35AccountErrorEndsInTheLanguagesFullStop(t *testing.T) {
	s := startI35(t, "sqlite://"+t.TempDir()+"/t.db", options{}, nil)
	u := s.user("haru")
	if _, err := s.app.accounts.UpdateProfile(context.Background(), u.ID, accountsLanguage("ja")); err != nil {
		t.Fatal(err)
	}
	b := s.browser()
	s.signInPage(t, b, "haru")
	account, _ := getLang(t, b, s.issuer+"/account")
	got := submit(t, b, parseForm(t, account.body, account.url), map[string]string{"pronouns": strings.Repeat("x", accounts.MaxPronounsLen+1)})
	want := fmt.Sprintf("%d", accounts.MaxPronounsLen)
	i := strings.Index(got.body, want)
	if i < 0 {
		t.Fatalf("no error naming %s:\n%s", want, got.body)
	}
	end := strings.Index(got.body[i:], "<")
	if line := got.body[i : i+end]; !strings.HasSuffix(line, "。") {
		t.Fatalf("the Japanese error ends %q, want 。", line)
	}
}
