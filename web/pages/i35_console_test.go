package pages

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/sqlitetest"
	"github.com/tonearm-idp/tonearm/web"
)

// Issue 35: the account page and the admin console in the language of the
// person reading them. A German catalog (an operator's, in the theme's
// locales folder, as translators will deliver it) words a few of the
// pages' messages (the others as in English); the pages asked for in German print them, their dates
// the German way, their notices and errors too, and say lang="de".

// consoleGerman is the operator's catalog of the test: a few messages of
// each kind the pages print (template text, an aria-label, a label handed
// to the "field" define, a flash notice from Go, a page error from Go, an
// activity word, a date's month and format).
var consoleGerman = map[string]any{
	"Your account":           "Dein Konto",
	"Recent activity":        "Letzte Aktivität",
	"Wrong password entered": "Falsches Passwort eingegeben",
	"Display name":           "Anzeigename",
	"Your profile is saved.": "Dein Profil ist gespeichert.",
	"December":               "Dezember",
	"{{.Day}} {{.Month}} {{.Year}}, {{.Time}} UTC": "{{.Day}}. {{.Month}} {{.Year}}, {{.Time}} UTC",
	"Users":                    "Benutzer",
	"Console":                  "Konsole",
	"The role is changed.":     "Die Rolle ist geändert.",
	"Tick the box to confirm.": "Setze das Häkchen zur Bestätigung.",
	"Enter your password and tick the box to delete your account.": "Gib dein Passwort ein und setze das Häkchen, um dein Konto zu löschen.",
	"Sign out {{.Browser}} ({{.When}})":                            "{{.Browser}} ({{.When}}) abmelden",
	"Unknown browser":                                              "Unbekannter Browser",
}

type consoleRig struct {
	pages          *Pages
	mux            *http.ServeMux
	user, admin    *http.Cookie
	userID, target string
}

func newConsoleRig(t *testing.T) *consoleRig {
	t.Helper()
	dir := t.TempDir()
	// A complete catalog, as translators deliver one: every English
	// message, a few of them in German.
	en, err := locale.ShippedFile("en")
	if err != nil {
		t.Fatal(err)
	}
	de := map[string]any{}
	if err := json.Unmarshal(en, &de); err != nil {
		t.Fatal(err)
	}
	for id, text := range consoleGerman {
		if _, ok := de[id]; !ok {
			t.Fatalf("%q is no message of the English catalog", id)
		}
		de[id] = text
	}
	buf, err := json.Marshal(de)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "de.json"), buf, 0o600); err != nil {
		t.Fatal(err)
	}
	cats, err := locale.Load("en", dir)
	if err != nil {
		t.Fatal(err)
	}
	store := sqlitetest.Open(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	box, err := seal.New(bytes.Repeat([]byte("b"), 32))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := accounts.New(accounts.Config{Store: store, Hasher: accounts.NewHasher(accounts.HashParams{Memory: 64, Time: 1, Threads: 1}, 0, 10),
		Validator: noValidator{}, Box: box, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	hasher, _ := clients.NewSecretHasher(bytes.Repeat([]byte("h"), 32))
	registry, err := clients.NewRegistry(store, hasher)
	if err != nil {
		t.Fatal(err)
	}
	conns, err := connectors.New(store, box, pagesIssuer, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	limiter, err := web.NewLoginLimiter(store, web.NewDeviceCookies(bytes.Repeat([]byte("d"), 32), pagesIssuer, nil), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	site, err := web.NewSite(web.SiteConfig{Issuer: pagesIssuer, Logger: log, Catalogs: cats})
	if err != nil {
		t.Fatal(err)
	}
	rig := &consoleRig{}
	session := func(name, role string) (*http.Cookie, string) {
		u, err := acc.CreateUser(ctx, name, "correct-horse-42", role)
		if err != nil {
			t.Fatal(err)
		}
		token, _, err := acc.NewSession(ctx, u.ID, "pwd", accounts.Origin{})
		if err != nil {
			t.Fatal(err)
		}
		return &http.Cookie{Name: "tonearm_session", Value: token}, u.ID
	}
	rig.user, rig.userID = session("listener", storage.RoleUser)
	// The listener is signed in on another device too.
	if _, _, err := acc.NewSession(ctx, rig.userID, "pwd", accounts.Origin{}); err != nil {
		t.Fatal(err)
	}
	rig.admin, _ = session("boss", storage.RoleAdmin)
	_, rig.target = session("someone", storage.RoleUser)
	// A guess at the listener's password, on a December morning.
	guessed := time.Date(2026, time.December, 7, 10, 30, 0, 0, time.UTC)
	if err := audit.Record(ctx, store, guessed, audit.SignInFailed, rig.userID, "", nil); err != nil {
		t.Fatal(err)
	}
	rig.pages = &Pages{c: Config{Accounts: acc, Clients: registry, Connectors: conns, Events: store, Limiter: limiter, Scopes: plainScopes{}},
		site: site, csrf: web.NewCSRF(bytes.Repeat([]byte("c"), 32), pagesIssuer), cookies: web.NewCookies(pagesIssuer),
		base: web.IssuerPath(pagesIssuer), log: log, now: time.Now}
	rig.mux = http.NewServeMux()
	rig.mux.HandleFunc("GET "+AccountPath, rig.pages.account)
	rig.mux.HandleFunc("POST "+AccountPath+"/delete", rig.pages.post(rig.pages.signedIn(rig.pages.deleteAccount)))
	rig.mux.HandleFunc("GET "+AdminPath+"/users", rig.pages.admin(rig.pages.usersPage))
	rig.mux.HandleFunc("POST "+AdminPath+"/users/{id}/{action}", rig.pages.post(rig.pages.admin(rig.pages.userAction)))
	return rig
}

// serve answers one request in German; form nil is a GET.
func (c *consoleRig) serve(t *testing.T, who *http.Cookie, method, target string, form url.Values, csrf *http.Cookie) (*httptest.ResponseRecorder, *http.Cookie) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if form != nil {
		req = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept-Language", "de-CH, en;q=0.5")
	req.Header.Set("User-Agent", "")
	req.AddCookie(who)
	if csrf != nil {
		req.AddCookie(csrf)
	}
	rec := httptest.NewRecorder()
	c.mux.ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		if strings.Contains(ck.Name, "csrf") {
			csrf = ck
		}
	}
	return rec, csrf
}

func wantWords(t *testing.T, what, body string, want, notWant []string) {
	t.Helper()
	for _, s := range want {
		if !strings.Contains(body, s) {
			t.Errorf("%s: %q missing", what, s)
		}
	}
	for _, s := range notWant {
		if strings.Contains(body, s) {
			t.Errorf("%s: still %q", what, s)
		}
	}
	if t.Failed() {
		t.Fatalf("%s:\n%s", what, body)
	}
}

func TestI35AccountPageInGerman(t *testing.T) {
	t.Parallel()
	c := newConsoleRig(t)
	rec, csrf := c.serve(t, c.user, http.MethodGet, AccountPath+"?done=profile", nil, nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Language") != "de" {
		t.Fatalf("the account page: %d %q\n%s", rec.Code, rec.Header().Get("Content-Language"), rec.Body)
	}
	wantWords(t, "the account page", rec.Body.String(),
		[]string{`<html lang="de" dir="ltr">`, "<title>Dein Konto", "<h1>Dein Konto</h1>", ">Letzte Aktivität<", "<td>Falsches Passwort eingegeben</td>",
			"<td>7. Dezember 2026, 10:30 UTC</td>", ">Anzeigename</label>", `role="status">Dein Profil ist gespeichert.</p>`,
			"<strong>Unbekannter Browser</strong>", `aria-label="Unbekannter Browser (`},
		[]string{"Your account", "Recent activity", "Wrong password entered", "2026-12-07", "Display name", "Your profile is saved."})
	// An error from Go: deleting without the box ticked.
	m := csrfField.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatal("no CSRF token on the account page")
	}
	rec, _ = c.serve(t, c.user, http.MethodPost, AccountPath+"/delete", url.Values{"csrf_token": {m[1]}, "delete_password": {"correct-horse-42"}}, csrf)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("deleting without the box: %d\n%s", rec.Code, rec.Body)
	}
	wantWords(t, "the refused deletion", rec.Body.String(), []string{"Gib dein Passwort ein und setze das Häkchen, um dein Konto zu löschen."},
		[]string{"Enter your password and tick the box to delete your account."})
}

func TestI35ConsoleInGerman(t *testing.T) {
	t.Parallel()
	c := newConsoleRig(t)
	rec, csrf := c.serve(t, c.admin, http.MethodGet, AdminPath+"/users?done=role", nil, nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Language") != "de" {
		t.Fatalf("the users page: %d %q\n%s", rec.Code, rec.Header().Get("Content-Language"), rec.Body)
	}
	wantWords(t, "the users page", rec.Body.String(),
		[]string{`<html lang="de" dir="ltr">`, "<title>Benutzer", "<h1>Benutzer</h1>", `<nav aria-label="Konsole">`, `role="status">Die Rolle ist geändert.</p>`,
			// The console's header offers the language picker.
			`id="language-picker"`, `<option value="de" lang="de" selected>Deutsch</option>`},
		[]string{"<h1>Users</h1>", `aria-label="Console"`, "The role is changed."})
	m := csrfField.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatal("no CSRF token on the users page")
	}
	// An error the console's Go code words: a disable not confirmed.
	rec, _ = c.serve(t, c.admin, http.MethodPost, AdminPath+"/users/"+c.target+"/disable", url.Values{"csrf_token": {m[1]}}, csrf)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("an unconfirmed disable: %d\n%s", rec.Code, rec.Body)
	}
	wantWords(t, "the unconfirmed disable", rec.Body.String(), []string{`role="alert">Setze das Häkchen zur Bestätigung.</p>`},
		[]string{"Tick the box to confirm."})
}
