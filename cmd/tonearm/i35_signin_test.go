package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/web"
)

// Issue 35: every word of the sign-in path is the catalog's. The test
// speaks a pseudo-language ("eo", written "⟦English⟧": every message of
// the English catalog wrapped in brackets, placeholders kept) and walks the
// pages a person meets from an app's sign-in to signing out; whatever a
// page prints outside brackets, but for the values it names (the site,
// the person, the app, codes), is a string the catalogs never see, which a
// German or Japanese visitor would read in English.

// pseudoCatalogs are the shipped catalogs and "eo", each English message
// wrapped in ⟦…⟧.
func pseudoCatalogs(t *testing.T) *locale.Catalogs {
	t.Helper()
	b, err := locale.ShippedFile("en")
	if err != nil {
		t.Fatal(err)
	}
	var en map[string]json.RawMessage
	if err := json.Unmarshal(b, &en); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for id, raw := range en {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out[id] = "⟦" + s + "⟧"
			continue
		}
		var forms map[string]string
		if err := json.Unmarshal(raw, &forms); err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		for k, v := range forms {
			forms[k] = "⟦" + v + "⟧"
		}
		out[id] = forms
	}
	buf, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "eo.json"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
	cats, err := locale.Load("en", dir)
	if err != nil {
		t.Fatal(err)
	}
	return cats
}

// speaking is a browser whose every request asks for lang.
type speaking struct {
	lang string
	next http.RoundTripper
}

func (s speaking) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept-Language", s.lang)
	return s.next.RoundTrip(r)
}

var (
	bracketed = regexp.MustCompile(`⟦[^⟦⟧]*⟧`)
	anyLetter = regexp.MustCompile(`\pL`)
)

// untranslated lists what a page prints outside the catalog: its text and
// its alt, aria-label, title and placeholder attributes, less the
// bracketed messages and the values named (the language picker names each
// language in its own words, and <code> is for developers).
func untranslated(t *testing.T, body string, values ...string) []string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	check := func(s string) {
		for {
			next := bracketed.ReplaceAllString(s, " ")
			if next == s {
				break
			}
			s = next
		}
		for _, v := range values {
			s = strings.ReplaceAll(s, v, " ")
		}
		if anyLetter.MatchString(s) {
			bad = append(bad, strings.Join(strings.Fields(s), " "))
		}
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "style", "select", "code":
				return
			}
			for _, a := range n.Attr {
				switch a.Key {
				case "alt", "aria-label", "title", "placeholder":
					check(a.Val)
				}
			}
		}
		if n.Type == html.TextNode {
			check(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return bad
}

// pageChecker is a check of a page in the pseudo-language: its status, a
// marker that it is the page meant, <html lang dir>, and nothing printed
// outside the catalog but values. seen collects the pages checked.
func pageChecker(t *testing.T, seen map[string]bool, values ...string) func(what string, p page, status int, marker string) page {
	return func(what string, p page, status int, marker string) page {
		t.Helper()
		if p.status != status || !strings.Contains(p.body, marker) {
			t.Fatalf("%s: %d %v, want %d and %q:\n%s", what, p.status, p.location, status, marker, p.body)
		}
		if !strings.Contains(p.body, `<html lang="eo" dir="ltr">`) {
			t.Errorf("%s: not in the language asked for:\n%s", what, p.body)
		}
		if bad := untranslated(t, p.body, values...); len(bad) > 0 {
			t.Errorf("%s prints outside the catalog: %q", what, bad)
		}
		seen[what] = true
		return p
	}
}

func TestSignInPathSpeaksTheCatalogLanguage(t *testing.T) {
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "tonearm.db"), options{catalogs: pseudoCatalogs(t)})
	s.user("ines")
	const app = "Listening Party"
	_, secret := s.client(clients.Spec{ID: "party", Scopes: []string{"openid", "profile", "email"},
		Display: clients.Display{Name: app, LogoURI: pixelPNG, ClientURI: "https://party.example", PolicyURI: "https://party.example/privacy",
			TosURI: "https://party.example/terms"}})
	b := s.browser()
	b.Transport = speaking{lang: "eo", next: http.DefaultTransport}
	seen := map[string]bool{}
	look := pageChecker(t, seen, "tonearm", "ines", app, "party")
	conf := oauth2.Config{ClientID: "party", ClientSecret: secret, RedirectURL: redirectURI, Scopes: []string{"openid", "profile", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + provider.AuthorizePath, TokenURL: s.issuer + provider.TokenPath}}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("claims", `{"userinfo":{"name":null,"email_verified":null}}`))

	login := look("the sign-in page", get(t, b, authURL), http.StatusOK, `name="password"`)
	wrong := look("a refused password", submit(t, b, parseForm(t, login.body, login.url), map[string]string{"username": "ines", "password": "not-it"}),
		http.StatusUnauthorized, `id="form-error"`)
	consent := look("the consent page", submit(t, b, parseForm(t, wrong.body, wrong.url), map[string]string{"username": "ines", "password": e2ePassword}),
		http.StatusOK, `value="consent"`)
	for _, words := range []string{"⟦See your email address⟧", "⟦your display name⟧", "⟦Allow {{.App}}?⟧"} {
		if !strings.Contains(consent.body, html.EscapeString(strings.ReplaceAll(words, "{{.App}}", app))) {
			t.Errorf("the consent page lacks %q:\n%s", words, consent.body)
		}
	}
	back := submit(t, b, parseForm(t, consent.body, consent.url), map[string]string{"decision": "allow"})
	if back.location == nil || back.location.Query().Get("code") == "" {
		t.Fatalf("after consent: %d %v", back.status, back.location)
	}
	// The same app asks again, answered in a form the browser posts.
	look("the form_post page", get(t, b, conf.AuthCodeURL("st2", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("response_mode", "form_post"))),
		http.StatusOK, `id="form-post"`)

	look("an unknown app's error page", get(t, b, s.issuer+provider.AuthorizePath+"?"+url.Values{"client_id": {"nobody"}, "response_type": {"code"}}.Encode()),
		http.StatusBadRequest, `role="alert"`)
	look("an expired sign-in", get(t, b, s.issuer+"/interaction/gone"), http.StatusBadRequest, `role="alert"`)
	req, _ := http.NewRequest(http.MethodPut, s.issuer+web.ForgotPath, nil)
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	look("a method not allowed", read(t, resp), http.StatusMethodNotAllowed, `role="alert"`)

	anon := s.browser()
	anon.Transport = b.Transport
	signup := look("the sign-up page", get(t, anon, s.issuer+web.SignupPath), http.StatusOK, `name="email"`)
	look("a refused sign-up", submit(t, anon, parseForm(t, signup.body, signup.url), map[string]string{"username": "ines", "password": "short", "email": "nope"}),
		http.StatusBadRequest, `class="field-error"`)
	forgot := look("the forgotten password page", get(t, anon, s.issuer+web.ForgotPath), http.StatusOK, `name="email"`)
	look("a reset asked for", submit(t, anon, parseForm(t, forgot.body, forgot.url), map[string]string{"email": "ines@example.com"}), http.StatusOK, "<p>")
	reset := look("the reset page", get(t, anon, s.issuer+web.ResetPath+"?token=made-up"), http.StatusOK, `name="password"`)
	look("a made-up reset link", submit(t, anon, parseForm(t, reset.body, reset.url), map[string]string{"password": "a-new-password-1"}),
		http.StatusBadRequest, `role="alert"`)
	look("a verification link without its token", get(t, anon, s.issuer+web.VerifyEmailPath), http.StatusBadRequest, `role="alert"`)

	out := look("the sign-out page", get(t, b, s.issuer+provider.LogoutPath), http.StatusOK, `value="logout"`)
	look("the signed-out page", submit(t, b, parseForm(t, out.body, out.url), nil), http.StatusOK, "<h1>")
	if len(seen) != 16 {
		t.Fatalf("saw %d pages", len(seen))
	}
}

// The second factor and the device page, in the pseudo-language.
func TestSecondFactorAndDevicePagesSpeakTheCatalogLanguage(t *testing.T) {
	clock := newFrozenClock()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "tonearm.db"), options{catalogs: pseudoCatalogs(t), now: clock.now})
	s.user("ines")
	const device = "Scrobbler 3000"
	s.client(clients.Spec{ID: "scrobbler", Public: true, RedirectURIs: []string{}, GrantTypes: []string{clients.DeviceCodeGrant},
		Scopes: []string{"openid", "profile"}, Display: clients.Display{Name: device}})
	_, secret := s.client(clients.Spec{ID: "party", Scopes: []string{"openid"}, FirstParty: true})
	seen := map[string]bool{}
	look := pageChecker(t, seen, "tonearm", "ines", device, "party", "XXXX-XXXX")

	b := s.browser()
	b.Transport = speaking{lang: "eo", next: http.DefaultTransport}
	if p := s.signInPage(t, b, "ines"); p.url.Path != "/account" {
		t.Fatalf("sign-in: %d %v", p.status, p.url)
	}
	enrolTOTP(t, s, b, clock)

	_, start := s.postForm(t, provider.DeviceAuthorizationPath, url.Values{"client_id": {"scrobbler"}, "scope": {"openid profile"}})
	code, _ := start["user_code"].(string)
	if code == "" {
		t.Fatalf("device authorization: %v", start)
	}
	entry := look("the device page", get(t, b, s.issuer+provider.DevicePath), http.StatusOK, `name="user_code"`)
	wrong := look("a wrong device code", submit(t, b, parseForm(t, entry.body, entry.url), map[string]string{"user_code": "BCDF-GHJK"}),
		http.StatusBadRequest, `id="user_code-error"`)
	confirm := look("the device's consent", submit(t, b, parseForm(t, wrong.body, wrong.url), map[string]string{"user_code": code}), http.StatusOK, `value="allow"`)
	look("the device allowed", submit(t, b, parseForm(t, confirm.body, confirm.url), map[string]string{"decision": "allow"}), http.StatusOK, `role="status"`)

	other := s.browser()
	other.Transport = b.Transport
	factor, _ := toSecondFactor(t, other, s.rp("party", secret), "ines")
	look("the second factor", factor, http.StatusOK, `name="totp_code"`)
	look("a wrong code", submit(t, other, parseForm(t, factor.body, factor.url), map[string]string{"totp_code": "000000"}), http.StatusUnauthorized, `id="form-error"`)
	if len(seen) != 6 {
		t.Fatalf("saw %d pages", len(seen))
	}
}
