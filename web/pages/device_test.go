package pages

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/device"
	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/sqlitetest"
	"github.com/tonearm-idp/tonearm/web"
)

// The device page (RFC 8628 §3.3) with httptest on the SQLite store: the
// real accounts, clients, device codes and attempt counter, the real
// templates and CSRF check; only the page's own dependencies are built.

const pagesIssuer = "http://id.example"

type noValidator struct{}

func (noValidator) ValidateToken(context.Context, string) (string, bool, error) {
	return "", false, nil
}

// plainScopes describes scopes by their names (the consent words are the
// provider's; the page only lists what it is given).
type plainScopes struct{}

func (plainScopes) DescribeScopes(_ context.Context, scopes []string) []string { return scopes }

type deviceRig struct {
	pages   *Pages
	store   *sqlstore.Store
	codes   *device.Codes
	session *http.Cookie
	userID  string
}

func newDeviceRig(t *testing.T) *deviceRig {
	t.Helper()
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
	if _, _, err := registry.Create(ctx, clients.Spec{ID: "tv", Public: true, Display: clients.Display{Name: "Living-room TV"},
		GrantTypes: []string{provider.DeviceCodeGrant}, Scopes: []string{"openid", "profile", "offline_access"}}); err != nil {
		t.Fatal(err)
	}
	codes, err := device.New(store, bytes.Repeat([]byte("k"), 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	limiter, err := web.NewLoginLimiter(store, web.NewDeviceCookies(bytes.Repeat([]byte("d"), 32), pagesIssuer, nil), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	site, err := web.NewSite(web.SiteConfig{Issuer: pagesIssuer, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	u, err := acc.CreateUser(ctx, "couch", "correct-horse-42", storage.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := acc.NewSession(ctx, u.ID, "pwd", accounts.Origin{})
	if err != nil {
		t.Fatal(err)
	}
	p := &Pages{c: Config{Accounts: acc, Clients: registry, Devices: codes, Limiter: limiter, Scopes: plainScopes{}},
		site: site, csrf: web.NewCSRF(bytes.Repeat([]byte("c"), 32), pagesIssuer), cookies: web.NewCookies(pagesIssuer),
		base: web.IssuerPath(pagesIssuer), log: log}
	return &deviceRig{pages: p, store: store, codes: codes, userID: u.ID, session: &http.Cookie{Name: "tonearm_session", Value: token}}
}

type pageReply struct {
	status   int
	body     string
	location string
	csrf     *http.Cookie
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// serve runs the device page; form nil is a GET.
func (d *deviceRig) serve(signedIn bool, query string, form url.Values, csrf *http.Cookie) pageReply {
	req := httptest.NewRequest(http.MethodGet, provider.DevicePath+query, nil)
	if form != nil {
		req = httptest.NewRequest(http.MethodPost, provider.DevicePath, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.RemoteAddr = "192.0.2.20:4000"
	if signedIn {
		req.AddCookie(d.session)
	}
	if csrf != nil {
		req.AddCookie(csrf)
	}
	rec := httptest.NewRecorder()
	d.pages.form(d.pages.device)(rec, req)
	out := pageReply{status: rec.Code, body: rec.Body.String(), location: rec.Header().Get("Location")}
	for _, c := range rec.Result().Cookies() {
		if strings.Contains(c.Name, "csrf") {
			out.csrf = c
		}
	}
	return out
}

// form returns the page's form for a POST: its CSRF token and values.
func (p pageReply) form(t *testing.T, values map[string]string) url.Values {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token on the page (%d):\n%s", p.status, p.body)
	}
	f := url.Values{"csrf_token": {m[1]}}
	for k, v := range values {
		f.Set(k, v)
	}
	return f
}

// TestDevicePageSignInFirst: a person not signed in is sent to sign in
// and back to the page with the code the device showed.
func TestDevicePageSignInFirst(t *testing.T) {
	t.Parallel()
	d := newDeviceRig(t)
	got := d.serve(false, "?user_code=BCDF-GHJK", nil, nil)
	want := "/login?" + url.Values{web.ContinueParam: {"/device?user_code=BCDF-GHJK"}}.Encode()
	if got.status != http.StatusSeeOther || got.location != want {
		t.Fatalf("not signed in: %d %q, want a redirect to %q", got.status, got.location, want)
	}
}

// TestDevicePageAllow: the code typed as a person types it, confirmed with
// the app's name and scopes, then allowed: the device's poll finds it
// approved for this person, without offline_access for an app that has no
// refresh grant; the code cannot be used twice.
func TestDevicePageAllow(t *testing.T) {
	t.Parallel()
	d := newDeviceRig(t)
	ctx := context.Background()
	auth, err := d.codes.Start(ctx, "tv", []string{"openid", "profile", "offline_access"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	page := d.serve(true, "?user_code="+strings.ToLower(auth.UserCode), nil, nil)
	if page.status != http.StatusOK || !strings.Contains(page.body, `value="`+auth.UserCode+`"`) || page.csrf == nil {
		t.Fatalf("the page: %d\n%s", page.status, page.body)
	}
	// Without the CSRF token nothing is looked up.
	if got := d.serve(true, "", url.Values{"user_code": {auth.UserCode}}, page.csrf); got.status != http.StatusForbidden {
		t.Fatalf("a POST without the CSRF token: %d", got.status)
	}
	typed := strings.ReplaceAll(strings.ToLower(auth.UserCode), "-", " ")
	confirm := d.serve(true, "", page.form(t, map[string]string{"user_code": typed}), page.csrf)
	if confirm.status != http.StatusOK || !strings.Contains(confirm.body, "Living-room TV") || !strings.Contains(confirm.body, `value="allow"`) {
		t.Fatalf("the confirmation: %d\n%s", confirm.status, confirm.body)
	}
	done := d.serve(true, "", confirm.form(t, map[string]string{"user_code": auth.UserCode, "decision": "allow"}), page.csrf)
	if done.status != http.StatusOK || !strings.Contains(done.body, "is signed in as you") {
		t.Fatalf("allowing: %d\n%s", done.status, done.body)
	}
	polled, _, err := d.codes.Poll(ctx, auth.DeviceCode)
	if err != nil || polled.Status != storage.DeviceApproved || polled.UserID != d.userID || strings.Join(polled.GrantedScopes, " ") != "openid profile" ||
		strings.Join(polled.AMR, " ") != "pwd" {
		t.Fatalf("the device's authorization: %+v %v", polled, err)
	}
	if c, err := d.store.GetConsent(ctx, d.userID, "tv"); err != nil || strings.Join(c.Scopes, " ") != "openid profile" {
		t.Fatalf("the device is not a connected app: %+v %v", c, err)
	}
	again := d.serve(true, "", page.form(t, map[string]string{"user_code": auth.UserCode, "decision": "deny"}), page.csrf)
	if again.status != http.StatusBadRequest || !strings.Contains(again.body, "already used or expired") {
		t.Fatalf("a decided code again: %d\n%s", again.status, again.body)
	}
}

// TestDevicePageDenyAndGuessLimit: a denial leaves the device nothing;
// every code looked up counts, and past 30 per person the page answers
// 429 before looking.
func TestDevicePageDenyAndGuessLimit(t *testing.T) {
	t.Parallel()
	d := newDeviceRig(t)
	ctx := context.Background()
	auth, err := d.codes.Start(ctx, "tv", []string{"openid"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	page := d.serve(true, "", nil, nil)
	denied := d.serve(true, "", page.form(t, map[string]string{"user_code": auth.UserCode, "decision": "deny"}), page.csrf)
	if denied.status != http.StatusOK || !strings.Contains(denied.body, "Denied") {
		t.Fatalf("denying: %d\n%s", denied.status, denied.body)
	}
	if polled, _, err := d.codes.Poll(ctx, auth.DeviceCode); err != nil || polled.Status != storage.DeviceDenied {
		t.Fatalf("after the denial: %+v %v", polled, err)
	}
	for i := 1; i < web.LimitDevicePerson.Max; i++ { // the denial was the first lookup
		if got := d.serve(true, "", page.form(t, map[string]string{"user_code": "BCDF-GHJK"}), page.csrf); got.status != http.StatusBadRequest {
			t.Fatalf("wrong code %d: %d", i, got.status)
		}
	}
	fresh, _ := d.codes.Start(ctx, "tv", []string{"openid"}, nil)
	got := d.serve(true, "", page.form(t, map[string]string{"user_code": fresh.UserCode}), page.csrf)
	if got.status != http.StatusTooManyRequests || !strings.Contains(got.body, "device codes tried") {
		t.Fatalf("past the limit, a right code: %d\n%s", got.status, got.body)
	}
}
