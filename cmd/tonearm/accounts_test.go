package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

type apiReply struct {
	status int
	body   map[string]any
	raw    string
}

func (r apiReply) errMsg() string { s, _ := r.body["error"].(string); return s }

// call sends a JSON request; bearer (if set) goes in the Authorization
// header; c (if set) carries cookies.
func (s *server) call(c *http.Client, method, path, bearer string, body any) apiReply {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.issuer+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := apiReply{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func (s *server) want(r apiReply, status int) apiReply {
	s.t.Helper()
	if r.status != status {
		s.t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if status >= 400 && r.errMsg() == "" {
		s.t.Fatalf("error without {\"error\": …}: %s", r.raw)
	}
	return r
}

// userToken signs a user in through the code flow of a fresh first-party
// client registered with every scope, asks for scopes (besides openid) and
// returns the user's access token.
func (s *server) userToken(username string, scopes ...string) string {
	s.t.Helper()
	c, secret, err := s.app.clients.Create(context.Background(), clients.Spec{ID: "tok-" + random(s.t)[:8], RedirectURIs: []string{redirectURI},
		FirstParty: true, Scopes: []string{"openid", "profile", "email", "roles", "listenbrainz", "offline_access", "account", "admin"}})
	if err != nil {
		s.t.Fatal(err)
	}
	return s.codeFlow(s.rp(c.ID, secret, scopes...), s.browser(), username).AccessToken
}

func (s *server) clientToken(id, secret, scope string) string {
	s.t.Helper()
	got := s.post(provider.TokenPath, id, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
	if got.status != http.StatusOK {
		s.t.Fatalf("client credentials: %d %v", got.status, got.body)
	}
	return got.body["access_token"].(string)
}

func (s *server) admin(name string) storage.User {
	s.t.Helper()
	u, err := s.app.accounts.CreateUser(context.Background(), name, e2ePassword, storage.RoleAdmin)
	if err != nil {
		s.t.Fatal(err)
	}
	return u
}

func (s *server) loginBrowser(username string) *http.Client {
	s.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	s.want(s.call(c, http.MethodPost, "/api/User/startSession", "", map[string]string{"username": username, "password": e2ePassword}), http.StatusOK)
	return c
}

func TestBootstrapSecurityCode(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		code := s.app.securityCode
		if !regexp.MustCompile(`^[0-9]{6}$`).MatchString(code) {
			t.Fatalf("security code %q, want six digits", code)
		}
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		body := map[string]any{"username": "first", "password": e2ePassword, "role": "admin"}
		// No code and no credentials: 401; a plain user's session: 403.
		if r := s.want(s.call(nil, http.MethodPost, "/api/User/createUser", "", body), http.StatusUnauthorized); !strings.Contains(r.errMsg(), "securityCode") {
			t.Fatalf("no code and no credentials: %q does not say how to create the first admin", r.errMsg())
		}
		s.user("plain")
		s.want(s.call(s.loginBrowser("plain"), http.MethodPost, "/api/User/createUser", "", body), http.StatusForbidden)
		body["securityCode"] = wrong
		s.want(s.call(nil, http.MethodPost, "/api/User/createUser", "", body), http.StatusForbidden)
		// The seed sends the code as a number (leading zeros and all).
		n, _ := strconv.Atoi(code) // decimal: Sscan would read a leading 0 as octal
		body["securityCode"] = n
		created := s.want(s.call(nil, http.MethodPost, "/api/User/createUser", "", body), http.StatusOK)
		u, err := s.app.store.GetUser(context.Background(), created.body["user"].(string))
		if err != nil || u.Role != storage.RoleAdmin {
			t.Fatalf("first admin = %+v, %v", u, err)
		}
		// The code dies once used, and then says an admin exists.
		body["username"], body["securityCode"] = "second", code
		if r := s.want(s.call(nil, http.MethodPost, "/api/User/createUser", "", body), http.StatusConflict); !strings.Contains(r.errMsg(), "An admin already exists") {
			t.Fatalf("the used code: %q", r.errMsg())
		}
		// A restart with an admin present prints no code.
		if again := s.second(); again.app.securityCode != "" {
			t.Fatal("a server with an admin made a security code")
		}
	})
}

func TestSecurityCodeRateLimit(t *testing.T) {
	bothDatabases(t, testSecurityCodeRateLimit)
}

func testSecurityCodeRateLimit(t *testing.T, dbURL string) {
	s := startE2E(t, dbURL, options{})
	code := s.app.securityCode
	body := map[string]any{"username": "first", "password": e2ePassword, "role": "admin"}
	for i := 0; i < 5; i++ {
		guess := fmt.Sprintf("%06d", (i+1)*111111%1000000)
		if guess == code {
			guess = "abcdef"
		}
		body["securityCode"] = guess
		s.want(s.call(nil, http.MethodPost, "/api/User/createUser", "", body), http.StatusForbidden)
	}
	body["securityCode"] = code
	s.want(s.call(nil, http.MethodPost, "/api/User/createUser", "", body), http.StatusTooManyRequests)
	if _, err := s.app.store.GetUserByUsername(context.Background(), "first"); err == nil {
		t.Fatal("a rate-limited request created the admin")
	}
}

func TestAdminAPI(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		ctx := context.Background()
		root := s.admin("root")
		adminTok := s.userToken("root", "admin")
		_, opsSecret := s.client(clients.Spec{ID: "ops", GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}})
		opsTok := s.clientToken("ops", opsSecret, "admin")
		for i := 0; i < 5; i++ {
			u := s.user(fmt.Sprintf("member%d", i))
			if _, err := s.app.accounts.UpdateProfile(ctx, u.ID, accounts.ProfileUpdate{Email: accounts.Value(fmt.Sprintf("m%d@example.org", i))}); err != nil {
				t.Fatal(err)
			}
		}
		memberTok := s.userToken("member0", "admin") // asks for admin, but is no admin

		// Who may call.
		s.want(s.call(nil, http.MethodGet, "/api/admin/users", "", nil), http.StatusUnauthorized)
		s.want(s.call(nil, http.MethodGet, "/api/admin/users", memberTok, nil), http.StatusForbidden)
		s.want(s.call(s.loginBrowser("root"), http.MethodGet, "/api/admin/users", "", nil), http.StatusUnauthorized)
		for _, tok := range []string{adminTok, opsTok} {
			s.want(s.call(nil, http.MethodGet, "/api/admin/users", tok, nil), http.StatusOK)
		}

		// Listing: filters and pages.
		page := s.want(s.call(nil, http.MethodGet, "/api/admin/users?username=MEMBER&limit=2", opsTok, nil), http.StatusOK)
		if users := page.body["users"].([]any); len(users) != 2 || page.body["next"] != "member1" {
			t.Fatalf("first page = %s", page.raw)
		}
		page = s.want(s.call(nil, http.MethodGet, "/api/admin/users?username=member&limit=2&after=member1", opsTok, nil), http.StatusOK)
		if u := page.body["users"].([]any); len(u) != 2 || u[0].(map[string]any)["username"] != "member2" {
			t.Fatalf("second page = %s", page.raw)
		}
		byEmail := s.want(s.call(nil, http.MethodGet, "/api/admin/users?email=m3%40", adminTok, nil), http.StatusOK)
		if u := byEmail.body["users"].([]any); len(u) != 1 || u[0].(map[string]any)["email"] != "m3@example.org" {
			t.Fatalf("email filter = %s", byEmail.raw)
		}
		admins := s.want(s.call(nil, http.MethodGet, "/api/admin/users?role=admin", adminTok, nil), http.StatusOK)
		if u := admins.body["users"].([]any); len(u) != 1 {
			t.Fatalf("role filter = %s", admins.raw)
		}
		s.want(s.call(nil, http.MethodGet, "/api/admin/users?limit=0", adminTok, nil), http.StatusBadRequest)
		s.want(s.call(nil, http.MethodGet, "/api/admin/users?role=king", adminTok, nil), http.StatusBadRequest)
		if strings.Contains(page.raw, "argon2") || strings.Contains(page.raw, "password") {
			t.Fatal("user listing exposes password material")
		}

		m1, _ := s.app.store.GetUserByUsername(ctx, "member1")
		path := "/api/admin/users/" + m1.ID
		got := s.want(s.call(nil, http.MethodGet, path, adminTok, nil), http.StatusOK)
		if got.body["username"] != "member1" || got.body["email"] != "m1@example.org" {
			t.Fatalf("get user = %s", got.raw)
		}
		s.want(s.call(nil, http.MethodGet, "/api/admin/users/nope", adminTok, nil), http.StatusNotFound)

		// Edits, with the profile limits.
		for _, bad := range []map[string]any{
			{"name": "ab"}, {"bio": strings.Repeat("b", 201)}, {"website": "ftp://x.example"}, {"email": "not an email"},
			{"role": "king"}, {"pronouns": strings.Repeat("p", 41)}, {"name": ""}, {"disabled": "yes"},
		} {
			s.want(s.call(nil, http.MethodPatch, path, adminTok, bad), http.StatusBadRequest)
		}
		s.want(s.call(nil, http.MethodPatch, path, adminTok, map[string]any{"email": "M2@example.org"}), http.StatusConflict)
		edited := s.want(s.call(nil, http.MethodPatch, path, adminTok, map[string]any{"role": "guest", "name": "Member One", "emailVerified": true}), http.StatusOK)
		if edited.body["role"] != "guest" || edited.body["name"] != "Member One" || edited.body["emailVerified"] != true {
			t.Fatalf("edited user = %s", edited.raw)
		}

		// Disabling ends sessions, revokes tokens, refuses sign-in.
		m2tok := s.userToken("member2", "account")
		m2, _ := s.app.store.GetUserByUsername(ctx, "member2")
		m2browser := s.loginBrowser("member2")
		s.want(s.call(nil, http.MethodPatch, "/api/admin/users/"+m2.ID, opsTok, map[string]any{"disabled": true}), http.StatusOK)
		s.want(s.call(m2browser, http.MethodGet, "/api/me", "", nil), http.StatusUnauthorized)
		s.want(s.call(nil, http.MethodGet, "/api/me", m2tok, nil), http.StatusUnauthorized)
		s.want(s.call(nil, http.MethodPost, "/api/User/startSession", "", map[string]string{"username": "member2", "password": e2ePassword}), http.StatusForbidden)

		// The last admin cannot be demoted, disabled or deleted.
		rootPath := "/api/admin/users/" + root.ID
		s.want(s.call(nil, http.MethodPatch, rootPath, opsTok, map[string]any{"role": "user"}), http.StatusConflict)
		s.want(s.call(nil, http.MethodPatch, rootPath, opsTok, map[string]any{"disabled": true}), http.StatusConflict)
		s.want(s.call(nil, http.MethodDelete, rootPath, opsTok, nil), http.StatusConflict)

		// Password reset by an admin: the old password and sessions die.
		m3, _ := s.app.store.GetUserByUsername(ctx, "member3")
		m3browser := s.loginBrowser("member3")
		s.want(s.call(nil, http.MethodPost, "/api/admin/users/"+m3.ID+"/password", adminTok, map[string]string{"password": "short"}), http.StatusBadRequest)
		s.want(s.call(nil, http.MethodPost, "/api/admin/users/"+m3.ID+"/password", adminTok, map[string]string{"password": "brand-new-pass-1"}), http.StatusOK)
		s.want(s.call(m3browser, http.MethodGet, "/api/me", "", nil), http.StatusUnauthorized)
		s.want(s.call(nil, http.MethodPost, "/api/User/startSession", "", map[string]string{"username": "member3", "password": e2ePassword}), http.StatusUnauthorized)
		s.want(s.call(nil, http.MethodPost, "/api/User/startSession", "", map[string]string{"username": "member3", "password": "brand-new-pass-1"}), http.StatusOK)

		// Deleting a user leaves no session, token or consent.
		m4tok := s.userToken("member4")
		m4, _ := s.app.store.GetUserByUsername(ctx, "member4")
		s.want(s.call(nil, http.MethodDelete, "/api/admin/users/"+m4.ID, adminTok, nil), http.StatusOK)
		s.want(s.call(nil, http.MethodGet, "/api/admin/users/"+m4.ID, adminTok, nil), http.StatusNotFound)
		s.want(s.call(nil, http.MethodDelete, "/api/admin/users/"+m4.ID, adminTok, nil), http.StatusNotFound)
		if s.active("ops", opsSecret, m4tok) {
			t.Fatal("a deleted user's access token is still active")
		}
		if n, _ := s.app.store.DeleteOAuthRequestsBySubject(ctx, m4.ID); n != 0 {
			t.Fatalf("%d protocol rows of the deleted user remained", n)
		}

		// Clients.
		s.want(s.call(nil, http.MethodPost, "/api/admin/clients", memberTok, map[string]any{"clientId": "x"}), http.StatusForbidden)
		s.want(s.call(nil, http.MethodPost, "/api/admin/clients", adminTok, map[string]any{"clientId": "bad", "redirectUris": []string{"http://evil.example/cb"}}), http.StatusBadRequest)
		newC := s.want(s.call(nil, http.MethodPost, "/api/admin/clients", adminTok, map[string]any{
			"clientId": "partner", "redirectUris": []string{"https://partner.example/cb"}, "scope": "openid profile",
		}), http.StatusOK)
		secret, _ := newC.body["clientSecret"].(string)
		if len(secret) < 43 {
			t.Fatalf("created client = %s, want a generated secret", newC.raw)
		}
		s.want(s.call(nil, http.MethodPost, "/api/admin/clients", adminTok, map[string]any{"clientId": "partner", "redirectUris": []string{"https://partner.example/cb"}}), http.StatusConflict)
		list := s.want(s.call(nil, http.MethodGet, "/api/admin/clients", opsTok, nil), http.StatusOK)
		if strings.Contains(list.raw, secret) || !strings.Contains(list.raw, "partner") {
			t.Fatalf("client listing = %s", list.raw)
		}
		s.want(s.call(nil, http.MethodGet, "/api/admin/clients/partner", adminTok, nil), http.StatusOK)
		s.want(s.call(nil, http.MethodDelete, "/api/admin/clients/partner", adminTok, nil), http.StatusOK)
		s.want(s.call(nil, http.MethodGet, "/api/admin/clients/partner", adminTok, nil), http.StatusNotFound)
		// The deleted client's credentials stop working at once here.
		if got := s.post(provider.TokenPath, "partner", secret, url.Values{"grant_type": {"client_credentials"}}); got.status != http.StatusUnauthorized {
			t.Fatalf("deleted client authenticated: %d %v", got.status, got.body)
		}
	})
}

func TestSelfService(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		ctx := context.Background()
		u := s.user("selfie")
		n := s.user("neighbour")
		if _, err := s.app.accounts.UpdateProfile(ctx, u.ID, accounts.ProfileUpdate{Email: accounts.Value("selfie@example.org")}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.app.accounts.UpdateProfile(ctx, n.ID, accounts.ProfileUpdate{Email: accounts.Value("neighbour@example.org")}); err != nil {
			t.Fatal(err)
		}
		browser := s.loginBrowser("selfie")
		me := s.want(s.call(browser, http.MethodGet, "/api/me", "", nil), http.StatusOK)
		if me.body["id"] != u.ID || me.body["username"] != "selfie" || strings.Contains(me.raw, "argon2") {
			t.Fatalf("GET /api/me = %s", me.raw)
		}
		s.want(s.call(nil, http.MethodGet, "/api/me", "", nil), http.StatusUnauthorized)

		// Login by email.
		s.want(s.call(nil, http.MethodPost, "/api/User/startSession", "", map[string]string{"username": "SELFIE@example.org", "password": e2ePassword}), http.StatusOK)

		// Profile edits with the seed's limits.
		for _, c := range []struct {
			body map[string]any
			msg  string
		}{
			{map[string]any{"name": "ab"}, "Name cannot be less than 3 or over 150 characters"},
			{map[string]any{"name": strings.Repeat("n", 151)}, "Name cannot be less than 3 or over 150 characters"},
			{map[string]any{"bio": strings.Repeat("b", 201)}, "Bio cannot be over 200 characters"},
			{map[string]any{"email": "nope"}, "Invalid email"},
			{map[string]any{"email": "Someone <a@b.example>"}, "Invalid email"},
			{map[string]any{"website": "javascript:alert(1)"}, ""},
			{map[string]any{"website": ""}, "Website cannot be empty"},
			{map[string]any{"role": "admin"}, ""}, // not a self-service field
		} {
			r := s.want(s.call(browser, http.MethodPatch, "/api/me", "", c.body), http.StatusBadRequest)
			if c.msg != "" && r.errMsg() != c.msg {
				t.Errorf("%v: error %q, want %q", c.body, r.errMsg(), c.msg)
			}
		}
		s.want(s.call(browser, http.MethodPatch, "/api/me", "", map[string]any{"email": "NEIGHBOUR@example.org"}), http.StatusConflict)
		ok := s.want(s.call(browser, http.MethodPatch, "/api/me", "", map[string]any{
			"name": "Selfie Person", "bio": "hi", "pronouns": "she/her", "website": "https://selfie.example",
		}), http.StatusOK)
		if ok.body["name"] != "Selfie Person" || ok.body["website"] != "https://selfie.example" {
			t.Fatalf("PATCH /api/me = %s", ok.raw)
		}
		cleared := s.want(s.call(browser, http.MethodPatch, "/api/me", "", map[string]any{"website": nil}), http.StatusOK)
		if _, has := cleared.body["website"]; has {
			t.Fatalf("null did not clear the website: %s", cleared.raw)
		}
		// A cross-site page cannot ride the cookie.
		req, _ := http.NewRequest(http.MethodPatch, s.issuer+"/api/me", strings.NewReader(`{"bio":"pwned"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", "https://evil.example")
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-site PATCH = %d", resp.StatusCode)
		}

		// Change password: the current one is required; other sessions end,
		// this browser keeps going.
		other := s.loginBrowser("selfie")
		tok := s.userToken("selfie", "account")
		s.want(s.call(browser, http.MethodPost, "/api/me/password", "", map[string]string{"currentPassword": "wrong-password", "newPassword": "another-pass-99"}), http.StatusForbidden)
		s.want(s.call(browser, http.MethodPost, "/api/me/password", "", map[string]string{"currentPassword": e2ePassword, "newPassword": "short"}), http.StatusBadRequest)
		s.want(s.call(browser, http.MethodPost, "/api/me/password", "", map[string]string{"currentPassword": e2ePassword, "newPassword": "another-pass-99"}), http.StatusOK)
		s.want(s.call(other, http.MethodGet, "/api/me", "", nil), http.StatusUnauthorized)
		s.want(s.call(browser, http.MethodGet, "/api/me", "", nil), http.StatusOK)
		s.want(s.call(nil, http.MethodPost, "/api/User/startSession", "", map[string]string{"username": "selfie", "password": e2ePassword}), http.StatusUnauthorized)
		// Every app's tokens ended with the old password.
		s.want(s.call(nil, http.MethodGet, "/api/me", tok, nil), http.StatusUnauthorized)

		// Delete my account: password required; afterwards nothing works.
		s.want(s.call(browser, http.MethodDelete, "/api/me", "", map[string]string{"password": e2ePassword}), http.StatusForbidden)
		s.want(s.call(browser, http.MethodDelete, "/api/me", "", map[string]string{"password": "another-pass-99"}), http.StatusOK)
		s.want(s.call(browser, http.MethodGet, "/api/me", "", nil), http.StatusUnauthorized)
		if _, err := s.app.store.GetUser(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatal("the account survived its deletion")
		}
	})
}

// captureMailer records reset and verification tokens instead of sending
// them.
type captureMailer struct {
	mu       sync.Mutex
	sent     map[string]string // email → reset token
	count    int
	ch       chan struct{}
	verifies chan verifyMail
}

type verifyMail struct{ to, token string }

func newCaptureMailer() *captureMailer {
	return &captureMailer{sent: map[string]string{}, ch: make(chan struct{}, 100), verifies: make(chan verifyMail, 100)}
}

func (m *captureMailer) SendEmailVerification(_ context.Context, to, _, token string) error {
	m.verifies <- verifyMail{to, token}
	return nil
}

// verification waits for the next verification mail.
func (m *captureMailer) verification(t *testing.T) verifyMail {
	t.Helper()
	select {
	case v := <-m.verifies:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("no verification mail was sent")
	}
	return verifyMail{}
}

func (m *captureMailer) SendPasswordReset(_ context.Context, to, _, token string) error {
	m.mu.Lock()
	m.sent[to] = token
	m.count++
	m.mu.Unlock()
	m.ch <- struct{}{}
	return nil
}

func (m *captureMailer) wait(t *testing.T) {
	t.Helper()
	select {
	case <-m.ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no reset mail was sent")
	}
}

func TestPasswordReset(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		mailer := newCaptureMailer()
		var mu sync.Mutex
		now := time.Now()
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		s := startE2E(t, dbURL, options{mailer: mailer, now: clock})
		u := s.user("forgetful")
		if _, err := s.app.accounts.UpdateProfile(context.Background(), u.ID, accounts.ProfileUpdate{Email: accounts.Value("forgetful@example.org")}); err != nil {
			t.Fatal(err)
		}
		browser := s.loginBrowser("forgetful")
		unknown := s.want(s.call(nil, http.MethodPost, "/api/password-reset/request", "", map[string]string{"email": "nobody@example.org"}), http.StatusOK)
		known := s.want(s.call(nil, http.MethodPost, "/api/password-reset/request", "", map[string]string{"email": "Forgetful@example.org"}), http.StatusOK)
		if unknown.raw != known.raw {
			t.Fatalf("answers differ: %q vs %q", unknown.raw, known.raw)
		}
		mailer.wait(t)
		time.Sleep(300 * time.Millisecond) // room for a wrong second mail to show up
		mailer.mu.Lock()
		token, count := mailer.sent["forgetful@example.org"], mailer.count
		mailer.mu.Unlock()
		if token == "" || count != 1 {
			t.Fatalf("mails sent: %d (token %q); want exactly one, to the account", count, token)
		}
		s.want(s.call(nil, http.MethodPost, "/api/password-reset/request", "", map[string]string{"email": "not-an-email"}), http.StatusBadRequest)
		s.want(s.call(nil, http.MethodPost, "/api/password-reset/confirm", "", map[string]string{"token": token, "newPassword": "short"}), http.StatusBadRequest)
		s.want(s.call(nil, http.MethodPost, "/api/password-reset/confirm", "", map[string]string{"token": "made-up-token", "newPassword": "recovered-pass-1"}), http.StatusBadRequest)
		s.want(s.call(nil, http.MethodPost, "/api/password-reset/confirm", "", map[string]string{"token": token, "newPassword": "recovered-pass-1"}), http.StatusOK)
		if ev, _ := s.app.store.ListEvents(context.Background(), storage.EventFilter{Type: "password.reset", User: u.ID, Limit: 5}); len(ev) != 1 {
			t.Fatalf("password.reset events: %d", len(ev))
		}
		s.want(s.call(nil, http.MethodPost, "/api/password-reset/confirm", "", map[string]string{"token": token, "newPassword": "recovered-pass-2"}), http.StatusBadRequest)
		// Every session ended; the new password works.
		s.want(s.call(browser, http.MethodGet, "/api/me", "", nil), http.StatusUnauthorized)
		s.want(s.call(nil, http.MethodPost, "/api/User/startSession", "", map[string]string{"username": "forgetful", "password": "recovered-pass-1"}), http.StatusOK)

		// A token expires after 30 minutes.
		s.want(s.call(nil, http.MethodPost, "/api/password-reset/request", "", map[string]string{"email": "forgetful@example.org"}), http.StatusOK)
		mailer.wait(t)
		mailer.mu.Lock()
		late := mailer.sent["forgetful@example.org"]
		mailer.mu.Unlock()
		mu.Lock()
		now = now.Add(31 * time.Minute)
		mu.Unlock()
		s.want(s.call(nil, http.MethodPost, "/api/password-reset/confirm", "", map[string]string{"token": late, "newPassword": "recovered-pass-3"}), http.StatusBadRequest)

		// Requests for one email are limited.
		for i := 0; i < 3; i++ {
			s.call(nil, http.MethodPost, "/api/password-reset/request", "", map[string]string{"email": "victim@example.org"})
		}
		s.want(s.call(nil, http.MethodPost, "/api/password-reset/request", "", map[string]string{"email": "victim@example.org"}), http.StatusTooManyRequests)
	})
}

func TestPublicProfile(t *testing.T) {
	bothDatabases(t, testPublicProfile)
}

func testPublicProfile(t *testing.T, dbURL string) {
	s := startE2E(t, dbURL, options{})
	u := s.user("Famous")
	if _, err := s.app.accounts.UpdateProfile(context.Background(), u.ID, accounts.ProfileUpdate{
		Email: accounts.Value("famous@example.org"), Name: accounts.Value("Famous Person"), Bio: accounts.Value("I listen"),
		Pronouns: accounts.Value("he/him"), Website: accounts.Value("https://famous.example"),
	}); err != nil {
		t.Fatal(err)
	}
	r := s.want(s.call(nil, http.MethodGet, "/api/users/famous", "", nil), http.StatusOK)
	want := map[string]any{"username": "Famous", "name": "Famous Person", "bio": "I listen", "pronouns": "he/him", "website": "https://famous.example"}
	if len(r.body) != len(want) {
		t.Fatalf("public profile = %s, want only %v", r.raw, want)
	}
	for k, v := range want {
		if r.body[k] != v {
			t.Fatalf("public profile %s = %v, want %v", k, r.body[k], v)
		}
	}
	s.want(s.call(nil, http.MethodGet, "/api/users/nobody", "", nil), http.StatusNotFound)
	if _, err := s.app.store.UpdateUser(context.Background(), u.ID, func(x storage.User) (storage.User, error) { x.Disabled = true; return x, nil }); err != nil {
		t.Fatal(err)
	}
	s.want(s.call(nil, http.MethodGet, "/api/users/famous", "", nil), http.StatusNotFound)
}

func TestProfileClaims(t *testing.T) {
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	u := s.user("claimant")
	if _, err := s.app.accounts.AdminUpdate(context.Background(), u.ID, accounts.AdminChange{
		Profile:       accounts.ProfileUpdate{Email: accounts.Value("claimant@example.org"), Name: accounts.Value("Claire Mant"), Website: accounts.Value("https://claire.example")},
		EmailVerified: ptr(true),
	}); err != nil {
		t.Fatal(err)
	}
	_, secret := s.client(clients.Spec{ID: "web", FirstParty: true, Scopes: []string{"openid", "profile", "email", "roles"}})
	r := s.rp("web", secret, "profile", "email", "roles")
	tok := s.codeFlow(r, s.browser(), "claimant")
	idt, err := r.verifier.Verify(r.ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	idt.Claims(&c)
	for k, v := range map[string]any{"name": "Claire Mant", "email": "claimant@example.org", "email_verified": true, "website": "https://claire.example", "role": "user", "preferred_username": "claimant"} {
		if c[k] != v {
			t.Errorf("ID token %s = %v, want %v", k, c[k], v)
		}
	}
	info, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	var ic map[string]any
	info.Claims(&ic)
	if ic["role"] != "user" || ic["email"] != "claimant@example.org" {
		t.Fatalf("userinfo = %v", ic)
	}
}

func ptr[T any](v T) *T { return &v }

// TestOpenAPIDocument holds /api/openapi.json to the routes: every route is
// documented, every documented operation is routed, and every operation
// documents its success and its {"error"} answers.
func TestOpenAPIDocument(t *testing.T) {
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	r := s.want(s.call(nil, http.MethodGet, "/api/openapi.json", "", nil), http.StatusOK)
	if v, _ := r.body["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("not an OpenAPI 3 document: %v", r.body["openapi"])
	}
	paths := r.body["paths"].(map[string]any)
	documented := map[string]bool{}
	for path, item := range paths {
		for method, op := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			resps := op.(map[string]any)["responses"].(map[string]any)
			if _, ok := resps["200"]; !ok {
				t.Errorf("%s documents no 200", key)
			}
			for code, resp := range resps {
				if code == "200" {
					continue
				}
				schema := resp.(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
				if schema["$ref"] != "#/components/schemas/Error" {
					t.Errorf("%s %s is not the Error schema", key, code)
				}
			}
		}
	}
	routed := map[string]bool{}
	for _, e := range s.app.endpoints {
		key := e.Method + " " + e.Path
		routed[key] = true
		if !documented[key] {
			t.Errorf("route %s is not in the OpenAPI document", key)
		}
	}
	if len(routed) < 15 {
		t.Fatalf("only %d routes known: the route list is broken", len(routed))
	}
	for key := range documented {
		if !routed[key] {
			t.Errorf("the OpenAPI document lists %s, which is not routed", key)
		}
		// And the server really answers it (not the catch-all 404, not 405).
		method, path, _ := strings.Cut(key, " ")
		path = strings.NewReplacer("{id}", "x", "{username}", "x").Replace(path)
		req, _ := http.NewRequest(method, s.issuer+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusMethodNotAllowed || strings.Contains(string(body), "no such endpoint") {
			t.Errorf("%s is documented but the server does not serve it (%d %s)", key, resp.StatusCode, body)
		}
	}
}

// The same reset through the pages a browser sees: the login page links to
// the forgot page, the mailed link opens the reset page.
func TestPasswordResetPages(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		mailer := newCaptureMailer()
		s := startE2E(t, dbURL, options{mailer: mailer})
		u := s.user("pagey")
		if _, err := s.app.accounts.UpdateProfile(context.Background(), u.ID, accounts.ProfileUpdate{Email: accounts.Value("pagey@example.org")}); err != nil {
			t.Fatal(err)
		}
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
		r := s.rp("web", secret)
		browser := s.browser()
		login := get(t, browser, r.conf.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		m := regexp.MustCompile(`href="([^"]*password/forgot)"`).FindStringSubmatch(login.body)
		if m == nil {
			t.Fatal("the login page has no forgot-password link")
		}
		forgot := get(t, browser, s.issuer+m[1])
		f := parseForm(t, forgot.body, forgot.url)
		if forged := submit(t, browser, f, map[string]string{"email": "pagey@example.org", "csrf_token": "forged"}); forged.status != http.StatusForbidden {
			t.Fatalf("forged CSRF token = %d", forged.status)
		}
		sent := submit(t, browser, f, map[string]string{"email": "pagey@example.org"})
		if sent.status != http.StatusOK || !strings.Contains(sent.body, "on its way") {
			t.Fatalf("forgot page answer = %d", sent.status)
		}
		mailer.wait(t)
		mailer.mu.Lock()
		token := mailer.sent["pagey@example.org"]
		mailer.mu.Unlock()
		page := get(t, browser, s.issuer+"/password/reset?token="+url.QueryEscape(token))
		rf := parseForm(t, page.body, page.url)
		if rf.values.Get("token") != token {
			t.Fatal("the reset form does not carry the token")
		}
		if short := submit(t, browser, rf, map[string]string{"password": "short"}); short.status != http.StatusBadRequest || !strings.Contains(short.body, "Password cannot be less than 8") {
			t.Fatalf("short password = %d", short.status)
		}
		rf = parseForm(t, page.body, page.url)
		done := submit(t, browser, rf, map[string]string{"password": "paged-new-pass-1"})
		if done.status != http.StatusOK || !strings.Contains(done.body, "Your password is changed") {
			t.Fatalf("reset page answer = %d: %s", done.status, done.body)
		}
		s.want(s.call(nil, http.MethodPost, "/api/User/startSession", "", map[string]string{"username": "pagey", "password": "paged-new-pass-1"}), http.StatusOK)
		again := submit(t, browser, rf, map[string]string{"password": "paged-new-pass-2"})
		if again.status != http.StatusBadRequest || !strings.Contains(again.body, "invalid or has expired") {
			t.Fatalf("reused reset link = %d", again.status)
		}
	})
}
