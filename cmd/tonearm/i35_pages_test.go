package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/totp"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// Issue 35: the pages in German, Japanese and Arabic, in Chromium, at
// desktop width and at 390 px, checked by axe-core (testdata/axe-core,
// installed with `npm ci` like the openid-client harness, injected into each
// page) and, in Arabic, laid out right to left.

var axeHarnessDir = filepath.Join("testdata", "axe-core")

var axeScript struct {
	once sync.Once
	src  string
	err  error
}

// axeSource is axe-core's script, installed on first use.
func axeSource(t *testing.T) string {
	t.Helper()
	dir := npmPackages(t, axeHarnessDir, "axe-core")
	axeScript.once.Do(func() {
		b, err := os.ReadFile(filepath.Join(dir, "node_modules", "axe-core", "axe.min.js"))
		axeScript.src, axeScript.err = string(b), err
	})
	if axeScript.err != nil {
		t.Fatalf("reading axe-core: %v", axeScript.err)
	}
	return axeScript.src
}

// axeViolation is one rule axe-core found broken, with the elements that
// break it.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		HTML           string `json:"html"`
		FailureSummary string `json:"failureSummary"`
	} `json:"nodes"`
}

// axe runs axe-core on the page (DevTools' evaluation is not bound by the
// page's Content-Security-Policy, which allows no script) and returns
// the violations of impact serious or critical: the ones that keep a person
// from using the page (axe-core's impact levels).
func (b *browserTab) axe(src string) []axeViolation {
	b.t.Helper()
	if !value(b, chromedp.Evaluate[bool](`typeof axe === "object"`)) {
		value(b, chromedp.Evaluate[bool](src+"\n;true"))
	}
	all := value(b, chromedp.Evaluate[[]axeViolation](`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations)`, chromedp.EvalAwaitPromise))
	var bad []axeViolation
	for _, v := range all {
		if v.Impact == "serious" || v.Impact == "critical" {
			bad = append(bad, v)
		}
	}
	return bad
}

func (v axeViolation) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "%s (%s): %s", v.ID, v.Impact, v.Help)
	for _, n := range v.Nodes {
		fmt.Fprintf(&s, "\n    %s\n    %s", n.HTML, strings.ReplaceAll(n.FailureSummary, "\n", "\n    "))
	}
	return s.String()
}

// pageLayout is where a page's parts sit, in CSS pixels.
type pageLayout struct {
	Lang, Dir, Heading    string
	MainL, MainR          float64 // main's content box
	HeadingL, HeadingR    float64 // the heading's text
	HeaderL, HeaderR      float64 // the header's content box
	PickerL, PickerR      float64 // the language picker (0, 0 when absent)
	PickerLabelW          float64
	PickerLabelShown      bool    // rendered (in the accessibility tree), if tiny
	LabelL, LabelR        float64 // the first form label's text (0, 0 when none)
	CellL, CellR          float64 // the first table header cell's content box
	CellTextL, CellTextR  float64 // and its text
	ScrollWidth, ViewPort float64
}

const layoutScript = `(() => {
  const box = el => {
    const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    return [r.left + parseFloat(cs.paddingLeft) + parseFloat(cs.borderLeftWidth), r.right - parseFloat(cs.paddingRight) - parseFloat(cs.borderRightWidth)];
  };
  const text = el => { const r = document.createRange(); r.selectNodeContents(el); const b = r.getBoundingClientRect(); return [b.left, b.right]; };
  const h1 = document.querySelector("main h1"), main = document.querySelector("main"), header = document.querySelector("header.site");
  const out = {Lang: document.documentElement.lang, Dir: document.documentElement.dir, Heading: h1.textContent.trim(),
    ScrollWidth: document.documentElement.scrollWidth, ViewPort: window.innerWidth};
  [out.MainL, out.MainR] = box(main);
  [out.HeadingL, out.HeadingR] = text(h1);
  if (header) [out.HeaderL, out.HeaderR] = box(header);
  const picker = document.querySelector("header.site form.languages");
  if (picker) {
    const r = picker.getBoundingClientRect(), label = picker.querySelector("label");
    [out.PickerL, out.PickerR] = [r.left, r.right];
    out.PickerLabelW = label.getBoundingClientRect().width;
    out.PickerLabelShown = getComputedStyle(label).display !== "none" && getComputedStyle(label).visibility !== "hidden" && label.control === picker.querySelector("select");
  }
  const label = document.querySelector("main form label:not(.inline)");
  if (label) [out.LabelL, out.LabelR] = text(label);
  const th = document.querySelector("main th");
  if (th) { [out.CellL, out.CellR] = box(th); [out.CellTextL, out.CellTextR] = text(th); }
  return out;
})()`

// i35Page is a page the test visits and its heading: the English text
// and the catalog message that translates it.
type i35Page struct {
	name    string
	english string
	id      *regexp.Regexp
}

var (
	i35Login        = i35Page{"login", "Sign in", regexp.MustCompile(`^Sign in$`)}
	i35Signup       = i35Page{"signup", "Create an account", regexp.MustCompile(`^Create an account$`)}
	i35Consent      = i35Page{"consent", "Allow Listening Party?", regexp.MustCompile(`^Allow \{\{\.\w+\}\}\?$`)}
	i35Account      = i35Page{"account", "Your account", regexp.MustCompile(`^Your account$`)}
	i35Error        = i35Page{"error", "This sign-in request is invalid", regexp.MustCompile(`^This sign-in request is invalid$`)}
	i35SecondFactor = i35Page{"second-factor", "Enter a code", regexp.MustCompile(`^Enter a code$`)}
)

// shippedHas tells whether tonearm ships a catalog for tag that
// translates a message matching id: until the translators deliver it, a
// page shows the English fallback, which is right.
func shippedHas(t *testing.T, tag string, id *regexp.Regexp) bool {
	t.Helper()
	b, err := locale.ShippedFile(tag)
	if err != nil {
		return false
	}
	entries, err := locale.ReadFile(b)
	if err != nil {
		t.Fatalf("catalogs/%s.json: %v", tag, err)
	}
	for k, e := range entries {
		if id.MatchString(k) && e.Other != "" {
			return true
		}
	}
	return false
}

// i35Language is a language the pages are checked in, and how the browser
// asks for it.
type i35Language struct {
	tag, dir string
	accept   string // Accept-Language; "" to pick the language by the picker's cookie
}

var i35Languages = []i35Language{
	{tag: "de", dir: "ltr"},
	{tag: "ja", dir: "ltr", accept: "ja-JP,ja;q=0.9,en;q=0.3"},
	{tag: "ar", dir: "rtl"},
}

// startI35Server is a server that knows the languages of the test: the
// shipped catalogs, and for a language not shipped yet an empty operator
// catalog (TONEARM_THEME_DIR/locales), so that the pages carry its lang and
// dir while their words fall back to English.
func startI35Server(t *testing.T) *server {
	t.Helper()
	theme := t.TempDir()
	if err := os.Mkdir(filepath.Join(theme, "locales"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range i35Languages {
		if _, err := locale.ShippedFile(l.tag); err != nil {
			if err := os.WriteFile(filepath.Join(theme, "locales", l.tag+".json"), []byte("{}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return startE2EConfig(t, sqliteURL(t), options{}, func(c *config.Config) { c.ThemeDir = theme })
}

// speak makes the browser ask for the language: the picker's cookie, or
// its Accept-Language header.
func (b *browserTab) speak(s *server, l i35Language) {
	b.t.Helper()
	if l.accept != "" {
		if _, err := chromedp.Call(b.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": l.accept}}); err != nil {
			b.t.Fatalf("Network.setExtraHTTPHeaders: %v", err)
		}
		return
	}
	if _, err := chromedp.Call(b.ctx, network.SetCookie, network.SetCookieParams{Name: web.LangCookie,
		Value: l.tag + "." + strconv.FormatInt(time.Now().Unix(), 10), URL: s.issuer + "/"}); err != nil {
		b.t.Fatalf("Network.setCookie: %v", err)
	}
}

// TestI35PagesInLanguages drives sign-in, sign-up, consent, the account,
// an error page and the second factor in German (the picker's cookie),
// Japanese (Accept-Language) and Arabic (the cookie), desktop and 390 px:
// each page says its language and direction, is translated where the
// shipped catalog translates its heading, has no serious or critical
// axe-core finding, does not scroll sideways, and in Arabic reads right to
// left. With TONEARM_SCREENSHOTS set (make screenshots) it writes each as
// <page>-<lang>.png and <page>-<lang>-390.png into that folder.
func TestI35PagesInLanguages(t *testing.T) {
	if chromiumPath() == "" && os.Getenv("CI") != "true" {
		t.Skip("chromium is not installed (apt-get install chromium): browser tests skipped")
	}
	axeJS := axeSource(t)
	s := startI35Server(t)
	shots := os.Getenv("TONEARM_SCREENSHOTS")
	if shots != "" {
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range i35Languages {
		t.Run(l.tag, func(t *testing.T) {
			ada := s.user("ada_" + l.tag)
			tom := s.user("tom_" + l.tag)
			giveTOTP(t, s, tom)
			app := s.webApp(t, "party-"+l.tag, "email")
			b := newBrowser(t)
			b.speak(s, l)
			check := func(p i35Page) {
				t.Helper()
				translated := shippedHas(t, l.tag, p.id)
				for _, width := range []int64{1280, 390} {
					b.run(chromedp.EmulateViewport(width, 844))
					where := fmt.Sprintf("%s in %s at %d px", p.name, l.tag, width)
					got := value(b, chromedp.Evaluate[pageLayout](layoutScript))
					checkLayout(t, where, l, p, translated, got)
					for _, v := range b.axe(axeJS) {
						t.Errorf("%s: axe-core: %s", where, v)
					}
					if shots != "" {
						name := p.name + "-" + l.tag
						if width == 390 {
							name += "-390"
						}
						if err := os.WriteFile(filepath.Join(shots, name+".png"), b.wholePage(width), 0o644); err != nil {
							t.Fatal(err)
						}
					}
				}
				b.run(chromedp.EmulateViewport(1280, 900))
			}
			b.open(app.authURL())
			check(i35Login)
			b.run(chromedp.Click(chromedp.CSS(`a[href*="/signup"]`)), chromedp.WaitVisible(chromedp.CSS("#username")))
			check(i35Signup)
			b.open(app.authURL())
			b.run(fill(map[string]string{"username": ada.Username, "password": e2ePassword}), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
				chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
			check(i35Consent)
			b.run(chromedp.Click(chromedp.CSS(`button[value=allow]`)))
			app.finish(t, b)
			b.open(s.issuer + "/account")
			check(i35Account)
			b.open(s.issuer + provider.AuthorizePath + "?" + url.Values{"client_id": {"nobody"}}.Encode())
			check(i35Error)
			// The second factor, in a new session of the same browser.
			if _, err := chromedp.Call(b.ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
				t.Fatalf("Network.clearBrowserCookies: %v", err)
			}
			b.speak(s, l)
			b.open(app.authURL())
			b.run(fill(map[string]string{"username": tom.Username, "password": e2ePassword}), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
				chromedp.WaitVisible(chromedp.CSS("#totp_code")))
			check(i35SecondFactor)
		})
	}
}

// wholePage is a PNG of the whole page at width: the viewport grown to
// the page's height, since Chromium's capture beyond the viewport shifts
// a right-to-left page sideways.
func (b *browserTab) wholePage(width int64) []byte {
	b.t.Helper()
	height := max(value(b, chromedp.Evaluate[int64](`document.documentElement.scrollHeight`)), 844)
	b.run(chromedp.EmulateViewport(width, height))
	png := value(b, chromedp.CaptureScreenshot())
	b.run(chromedp.EmulateViewport(width, 844))
	return png
}

// giveTOTP gives u an authenticator app, so that signing in asks for a
// code; it returns the app's key.
func giveTOTP(t *testing.T, s *server, u storage.User) []byte {
	t.Helper()
	e, err := s.app.accounts.NewTOTPEnrolment(u, "tonearm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.accounts.EnrolTOTP(context.Background(), u.ID, e.Token, totp.Code(e.Secret, totp.Step(time.Now())), accounts.Reauth{AuthTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return e.Secret
}

// near is a layout tolerance: sub-pixel rounding, not a misplaced box.
func near(a, b float64) bool { return a-b < 2 && b-a < 2 }

// checkLayout asserts a page's language, heading and direction.
func checkLayout(t *testing.T, where string, l i35Language, p i35Page, translated bool, got pageLayout) {
	t.Helper()
	if got.Lang != l.tag || got.Dir != l.dir {
		t.Errorf("%s: <html lang=%q dir=%q>, want lang=%q dir=%q", where, got.Lang, got.Dir, l.tag, l.dir)
	}
	if translated && got.Heading == p.english {
		t.Errorf("%s: the heading is the English %q, though catalogs/%s.json translates it", where, got.Heading, l.tag)
	}
	if !translated && got.Heading != p.english {
		t.Errorf("%s: the heading is %q, want the English fallback %q (no translation shipped)", where, got.Heading, p.english)
	}
	if got.ScrollWidth > got.ViewPort {
		t.Errorf("%s scrolls sideways (%v px wide)", where, got.ScrollWidth)
	}
	rtl := l.dir == "rtl"
	// The heading starts at main's start edge: the right one in Arabic.
	if rtl && !near(got.HeadingR, got.MainR) || !rtl && !near(got.HeadingL, got.MainL) {
		t.Errorf("%s: the heading's text spans %.0f–%.0f px, main's content %.0f–%.0f px: not at the %s start", where, got.HeadingL, got.HeadingR, got.MainL, got.MainR, l.dir)
	}
	// So does a form's first label.
	if got.LabelR != 0 && (rtl && !near(got.LabelR, got.MainR) || !rtl && !near(got.LabelL, got.MainL)) {
		t.Errorf("%s: the first label's text spans %.0f–%.0f px, main's content %.0f–%.0f px: not at the %s start", where, got.LabelL, got.LabelR, got.MainL, got.MainR, l.dir)
	}
	// The language picker sits at the header's end (the left in Arabic),
	// its label hidden from sight but not from screen readers.
	if got.PickerR == 0 {
		t.Errorf("%s: no language picker in the header", where)
	} else {
		if rtl && !near(got.PickerL, got.HeaderL) || !rtl && !near(got.PickerR, got.HeaderR) {
			t.Errorf("%s: the language picker spans %.0f–%.0f px, the header %.0f–%.0f px: not at the %s end", where, got.PickerL, got.PickerR, got.HeaderL, got.HeaderR, l.dir)
		}
		if got.PickerLabelW > 1 || !got.PickerLabelShown {
			t.Errorf("%s: the picker's label is %.0f px wide, rendered %v: want visually hidden (1 px) and still read out", where, got.PickerLabelW, got.PickerLabelShown)
		}
	}
	// A table's header cells start at their start edge too.
	if got.CellR != 0 && (rtl && !near(got.CellTextR, got.CellR) || !rtl && !near(got.CellTextL, got.CellL)) {
		t.Errorf("%s: a table header's text spans %.0f–%.0f px in a cell of %.0f–%.0f px: not at the %s start", where, got.CellTextL, got.CellTextR, got.CellL, got.CellR, l.dir)
	}
}

// TestI35UILocalesInABrowser: an app asks for Japanese (ui_locales=ja,
// OpenID Connect Core §3.1.2.1) of a browser whose Accept-Language is
// English; sign-in, the second factor and consent are Japanese pages, and
// the browser arrives back at the app with a code that works.
func TestI35UILocalesInABrowser(t *testing.T) {
	if chromiumPath() == "" && os.Getenv("CI") != "true" {
		t.Skip("chromium is not installed (apt-get install chromium): browser tests skipped")
	}
	s := startI35Server(t)
	u := s.user("kenji")
	secret := giveTOTP(t, s, u)
	app := s.webApp(t, "party-ja", "email")
	b := newBrowser(t)
	b.speak(s, i35Language{tag: "en", accept: "en-US,en;q=0.9"})
	ja := i35Language{tag: "ja", dir: "ltr"}
	// Only what says the language: the layout is TestI35PagesInLanguages's.
	want := func(p i35Page) {
		t.Helper()
		got := value(b, chromedp.Evaluate[pageLayout](layoutScript))
		where := p.name + " asked for in ja by ui_locales"
		if got.Lang != "ja" || got.Dir != "ltr" {
			t.Errorf("%s: <html lang=%q dir=%q>, want lang=\"ja\" dir=\"ltr\"", where, got.Lang, got.Dir)
		}
		if shippedHas(t, ja.tag, p.id) && got.Heading == p.english {
			t.Errorf("%s: the heading is the English %q, though catalogs/ja.json translates it", where, got.Heading)
		}
	}
	b.open(app.authURL() + "&" + url.Values{"ui_locales": {"ja"}}.Encode())
	want(i35Login)
	b.run(fill(map[string]string{"username": u.Username, "password": e2ePassword}), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#totp_code")))
	want(i35SecondFactor)
	// The next step's code: giving the app spent this one's.
	b.run(chromedp.SetValue(chromedp.CSS("#totp_code"), totp.Code(secret, totp.Step(time.Now())+1)),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	want(i35Consent)
	b.run(chromedp.Click(chromedp.CSS(`button[value=allow]`)))
	if tok := app.finish(t, b); tok.AccessToken == "" {
		t.Fatal("no access token for the app")
	}
}

// TestI35OtherPagesInLanguages: the console, /developer, the password and
// sign-out pages and the device page, in each language at both widths, say
// their language and direction, fit the screen and have no serious or
// critical axe-core finding.
func TestI35OtherPagesInLanguages(t *testing.T) {
	if chromiumPath() == "" && os.Getenv("CI") != "true" {
		t.Skip("chromium is not installed (apt-get install chromium): browser tests skipped")
	}
	axeJS := axeSource(t)
	s := startI35Server(t)
	if _, err := s.app.accounts.Create(context.Background(), accounts.NewUser{Username: "ada", Password: e2ePassword, Role: storage.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	s.webApp(t, "listening-party", "email")
	s.client(clients.Spec{ID: "tv", Public: true, RedirectURIs: []string{}, GrantTypes: []string{clients.DeviceCodeGrant},
		Scopes: []string{"openid", "profile"}, Display: clients.Display{Name: "Living-room player"}})
	for _, l := range i35Languages {
		t.Run(l.tag, func(t *testing.T) {
			b := newBrowser(t)
			b.speak(s, l)
			b.signIn(s, "ada", e2ePassword)
			_, device := s.deviceStart(t, "tv", "openid profile")
			for _, page := range []string{"/admin", "/admin/users", "/admin/clients", "/admin/clients/listening-party", "/admin/apis", "/admin/keys",
				"/admin/connectors", "/developer", "/password/forgot", provider.LogoutPath, strings.TrimPrefix(device["verification_uri_complete"].(string), s.issuer)} {
				b.open(s.issuer + page)
				for _, width := range []int64{1280, 390} {
					b.run(chromedp.EmulateViewport(width, 844))
					got := value(b, chromedp.Evaluate[pageLayout](layoutScript))
					if got.Lang != l.tag || got.Dir != l.dir {
						t.Errorf("%s at %d px: <html lang=%q dir=%q>, want lang=%q dir=%q", page, width, got.Lang, got.Dir, l.tag, l.dir)
					}
					if got.ScrollWidth > got.ViewPort {
						t.Errorf("%s at %d px scrolls sideways (%v px wide)", page, width, got.ScrollWidth)
					}
					for _, v := range b.axe(axeJS) {
						t.Errorf("%s at %d px: axe-core: %s", page, width, v)
					}
				}
			}
		})
	}
}
