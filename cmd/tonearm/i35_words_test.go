package main

import (
	"context"
	"fmt"
	"html"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// Issue 35, found from outside: words a tester still saw in English on
// translated pages: the accounts' validation messages (some naming
// limits), the QR code's label, the client kinds and the built-in API's
// descriptions.

// wantWords fails unless the page shows every one of want and none of
// english.
func wantWords(t *testing.T, where string, p page, want, english []string) {
	t.Helper()
	body := html.UnescapeString(p.body)
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s: no %q on the page (status %d)\n%s", where, w, p.status, p.body)
		}
	}
	for _, e := range english {
		if strings.Contains(body, e) {
			t.Errorf("%s: %q still in English", where, e)
		}
	}
}

func TestI35WordsSignUpInJapanese(t *testing.T) {
	s := startI35(t, "sqlite://"+t.TempDir()+"/t.db", options{}, nil)
	b := s.browser()
	// The picker (a cookie): the form's answer is in Japanese too.
	signup := pickFrom(t, b, s, "ja", s.issuer+"/signup")
	if !strings.Contains(signup.body, `<html lang="ja"`) || signup.url.Path != "/signup" {
		t.Fatalf("sign-up after picking ja: %d %s\n%s", signup.status, signup.url, signup.body)
	}
	got := submit(t, b, parseForm(t, signup.body, signup.url), map[string]string{"username": "ab", "password": "short"})
	wantWords(t, "sign-up with a short username and password", got,
		[]string{
			fmt.Sprintf("ユーザー名は %d 文字以上 %d 文字以内にしてください", accounts.MinUsernameLen, accounts.MaxUsernameLen),
			fmt.Sprintf("パスワードは %d 文字以上 %d 文字以内にしてください", accounts.MinPasswordLen, accounts.MaxPasswordLen),
		},
		[]string{"Username cannot be less than", "Password cannot be less than"})
	got = submit(t, b, parseForm(t, got.body, got.url), map[string]string{"username": "has space", "password": e2ePassword})
	wantWords(t, "sign-up with a space in the username", got, []string{"ユーザー名に空白は使えません"}, []string{"Username cannot contain white space"})
	if n := userCount(t, s); n != 0 {
		t.Fatalf("refused sign-ups made %d accounts", n)
	}
}

func TestI35WordsAccountInGerman(t *testing.T) {
	s := startI35(t, "sqlite://"+t.TempDir()+"/t.db", options{}, nil)
	u := s.user("greta")
	if _, err := s.app.accounts.UpdateProfile(context.Background(), u.ID, accountsLanguage("de")); err != nil {
		t.Fatal(err)
	}
	b := s.browser()
	s.signInPage(t, b, "greta")
	account, lang := getLang(t, b, s.issuer+"/account")
	wantLang(t, "account", account, lang, "de")
	wantWords(t, "account", account, []string{`aria-label="QR-Code des Schlüssels"`}, []string{"QR code of the key"})
	got := submit(t, b, parseForm(t, account.body, account.url), map[string]string{"pronouns": strings.Repeat("x", accounts.MaxPronounsLen+1)})
	wantWords(t, "profile with long pronouns", got,
		[]string{fmt.Sprintf("Die Pronomen dürfen höchstens %d Zeichen lang sein", accounts.MaxPronounsLen)},
		[]string{"Pronouns cannot be over"})
	got = submit(t, b, parseForm(t, got.body, got.url), map[string]string{"pronouns": "", "website": "ftp://greta.example"})
	wantWords(t, "profile with a bad website", got,
		[]string{fmt.Sprintf("Die Website muss eine http(s)-URL mit höchstens %d Zeichen sein", accounts.MaxWebsiteLen)},
		[]string{"Website must be an http(s) URL"})
	if after, err := s.app.store.GetUser(context.Background(), u.ID); err != nil || after.Website != "" || after.Pronouns != "" {
		t.Fatalf("a refused profile changed the account: %+v %v", after, err)
	}
}

func TestI35WordsConsoleInJapanese(t *testing.T) {
	s := startI35(t, "sqlite://"+t.TempDir()+"/t.db", options{}, nil)
	ada := s.admin("ada")
	if _, err := s.app.accounts.UpdateProfile(context.Background(), ada.ID, accountsLanguage("ja")); err != nil {
		t.Fatal(err)
	}
	s.client(clients.Spec{ID: "tv", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}, Scopes: []string{"openid"}})
	s.client(clients.Spec{ID: "shop", FirstParty: true, RedirectURIs: []string{"https://shop.example/cb"}, Scopes: []string{"openid"}})
	b := s.browser()
	s.signInPage(t, b, "ada")
	list := get(t, b, s.issuer+"/admin/clients")
	wantWords(t, "/admin/clients", list, []string{"<td>パブリック</td>", "<td>コンフィデンシャル、ファーストパーティ</td>"},
		[]string{"<td>public</td>", "<td>confidential, first-party</td>"})
	one := get(t, b, s.issuer+"/admin/clients/tv")
	wantWords(t, "/admin/clients/tv", one, []string{"· パブリック ·"}, []string{"· public ·"})
	// An admin-typed description stays as typed, even one that reads as
	// tonearm's own words.
	if _, err := s.app.apis.Create(context.Background(), apis.Spec{ID: "https://typed.example",
		Scopes: []storage.APIScope{{Name: "typed:admin", Description: "Administer tonearm"}}}); err != nil {
		t.Fatal(err)
	}
	list = get(t, b, s.issuer+"/admin/apis")
	wantWords(t, "/admin/apis", list, []string{"tonearm を管理する", "tonearm アカウントを管理する", "<code>typed:admin</code>: Administer tonearm"},
		[]string{"Manage your tonearm account"})

	// An app's type on /developer.
	app, err := s.app.clients.RegisterApp(context.Background(), clients.AppSpec{Type: clients.AppNative, RedirectURIs: []string{"http://127.0.0.1/cb"},
		Display: clients.Display{Name: "Ada's player"}}, ada.ID, storage.RegisteredByDeveloper)
	if err != nil {
		t.Fatal(err)
	}
	dev := get(t, b, s.issuer+"/developer")
	wantWords(t, "/developer", dev, []string{"<code>" + app.Client.ID + "</code> · ネイティブ ·"}, []string{" · native · "})
}

// The consent page words tonearm's own API scopes (account, admin) in the
// page's language.
func TestI35WordsConsentInJapanese(t *testing.T) {
	s := startI35(t, "sqlite://"+t.TempDir()+"/t.db", options{}, nil)
	s.user("kenji")
	_, secret := s.client(clients.Spec{ID: "ja-app", Scopes: []string{"openid", "account"}})
	r := s.rp("ja-app", secret, "account")
	b := s.browser()
	login, lang := getLang(t, b, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("ui_locales", "ja")))
	wantLang(t, "sign-in asked in ja", login, lang, "ja")
	consent := submit(t, b, parseForm(t, login.body, login.url), map[string]string{"username": "kenji", "password": e2ePassword})
	wantWords(t, "consent for the account scope", consent,
		[]string{"tonearm アカウントを管理する：メールアドレス、パスワード、ListenBrainz との連携を変更する", `value="consent"`},
		[]string{"Manage your tonearm account"})
}
