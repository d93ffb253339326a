package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/totp"
	"github.com/tonearm-idp/tonearm/storage"
)

// Holes an outside tester found in round 3's fixes (issue 31, topic
// followups).

// pushFrom pushes form to /oauth2/par as if from addr (behind the trusted
// proxy), with basic authentication when secret is set.
func (s *server) pushFrom(t *testing.T, addr, clientID, secret string, form url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.issuer+provider.PARPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", addr)
	if secret != "" {
		req.SetBasicAuth(clientID, secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, resp.Header, body
}

func pushedRows(t *testing.T, s *server) int {
	t.Helper()
	db, err := s.app.store.SQLDB()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM oauth2_requests WHERE kind = '" + storage.KindPAR + "'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func pushForm(client, state string) url.Values {
	return url.Values{"client_id": {client}, "response_type": {"code"}, "redirect_uri": {redirectURI}, "scope": {"openid"}, "state": {state},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
}

// The reported burst: 2,400 pushes with a 7.6 KB state through a public
// client from one address all got 201 and grew the database by 21 MB, and
// each row stayed 10 minutes although its request_uri expired in 60 s. Now
// a public client's pushes count in the address's stored sign-ins budget
// (429 temporarily_unavailable with Retry-After past it, nothing stored),
// a confidential client's do not, and an unopened push's row is swept once
// its request_uri has expired while an opened one lasts its sign-in.
func TestPublicPushesAreCountedPerAddress(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		clock := &offsetClock{}
		s := startE2EConfig(t, dbURL, options{now: clock.now}, behindProxy)
		s.client(clients.Spec{ID: "pub", Public: true})
		_, secret := s.client(clients.Spec{ID: "conf"})
		const crowd = "203.0.113.7"

		// One push opened by a browser: it serves that sign-in.
		status, _, body := s.pushFrom(t, crowd, "pub", "", pushForm("pub", "s-opened"))
		if status != http.StatusCreated || body["expires_in"] != float64(60) {
			t.Fatalf("a push: %d %v", status, body)
		}
		opened := s.issuer + provider.AuthorizePath + "?" + url.Values{"client_id": {"pub"}, "request_uri": {body["request_uri"].(string)}}.Encode()
		if p := get(t, s.browserFrom("198.51.100.8"), opened); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("opening the push: %d %v", p.status, p.location)
		}
		for i := 1; i < storedSignInsPerAddr; i++ {
			if status, _, body := s.pushFrom(t, crowd, "pub", "", pushForm("pub", "s-small")); status != http.StatusCreated {
				t.Fatalf("push %d of the budget: %d %v", i+1, status, body)
			}
		}
		if n := pushedRows(t, s); n != storedSignInsPerAddr {
			t.Fatalf("%d pushes stored, want %d", n, storedSignInsPerAddr)
		}

		// Past the budget: 200 more with a 7.6 KB state, 8 at a time: 1.5 MB
		// if they were kept, past the 1 MB the database may grow by (and
		// the row count below catches a single one).
		sizeBefore := databaseBytes(t, s)
		var wrong atomic.Int32
		var firstWrong atomic.Value
		var wg sync.WaitGroup
		jobs := make(chan struct{})
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range jobs {
					status, h, body := s.pushFrom(t, crowd, "pub", "", pushForm("pub", incompressible(7600)))
					if (status != http.StatusTooManyRequests || h.Get("Retry-After") == "" || body["error"] != "temporarily_unavailable" ||
						!strings.Contains(body["error_description"].(string), "sign-ins started from this address")) && wrong.Add(1) == 1 {
						firstWrong.Store(body)
					}
				}
			}()
		}
		for i := 0; i < 200; i++ {
			jobs <- struct{}{}
		}
		close(jobs)
		wg.Wait()
		if n := wrong.Load(); n > 0 {
			t.Errorf("%d pushes past the budget were answered wrong; the first: %v", n, firstWrong.Load())
		}
		if grew := databaseBytes(t, s) - sizeBefore; grew >= 1<<20 {
			t.Errorf("the refused pushes grew the database by %d bytes, want under 1 MB", grew)
		}
		if n := pushedRows(t, s); n != storedSignInsPerAddr {
			t.Errorf("past the budget: %d pushes stored, want still %d", n, storedSignInsPerAddr)
		}

		// A confidential client pushes for all its users from its server:
		// not counted per address.
		for i := 0; i < 5; i++ {
			if status, _, body := s.pushFrom(t, crowd, "conf", secret, pushForm("conf", "s-confidential")); status != http.StatusCreated {
				t.Fatalf("confidential push %d from the spent address: %d %v", i+1, status, body)
			}
		}

		// Unopened pushes expire with their request_uri, and housekeeping
		// drops them; the opened one lasts its sign-in (10 minutes).
		clock.advance(61 * time.Second)
		sweepExpired(context.Background(), s.app.store, clock.now(), 90*24*time.Hour, discardLogger())
		if n := pushedRows(t, s); n != 1 {
			t.Fatalf("61 s later the sweep left %d pushes, want the opened one", n)
		}
		clock.advance(10 * time.Minute)
		sweepExpired(context.Background(), s.app.store, clock.now(), 90*24*time.Hour, discardLogger())
		if n := pushedRows(t, s); n != 0 {
			t.Fatalf("after the sign-in's 10 minutes the sweep left %d pushes", n)
		}
	})
}

// deviceTokens runs a device authorization of client for scope, approved
// on /device in browser, and returns the token answer.
func (s *server) deviceTokens(t *testing.T, browser *http.Client, client, secret, scope string) map[string]any {
	t.Helper()
	auth := func(r *http.Request) { r.SetBasicAuth(client, secret) }
	status, start := s.formPost(t, provider.DeviceAuthorizationPath, url.Values{"scope": {scope}}, auth)
	if status != http.StatusOK {
		t.Fatalf("device authorization: %d %v", status, start)
	}
	if p := s.decideDevice(t, browser, start["verification_uri_complete"].(string), "allow"); p.status != http.StatusOK {
		t.Fatalf("allow: %d\n%s", p.status, p.body)
	}
	status, tok := s.formPost(t, provider.TokenPath, url.Values{"grant_type": {provider.DeviceCodeGrant}, "device_code": {start["device_code"].(string)}}, auth)
	if status != http.StatusOK || tok["access_token"] == nil || tok["id_token"] == nil || tok["refresh_token"] == nil {
		t.Fatalf("device token: %d %v", status, tok)
	}
	return tok
}

// Device-grant tokens carried only auth_time: approved from a two-factor
// session they had no acr or amr, and under TONEARM_ADMIN_MFA=required an
// admin's device token was refused by the admin API. Now the approval
// records the approving session's sign-in (amr, and so acr) and the
// tokens, and their refreshes, say it as the code flow's do.
func TestDeviceTokensSayHowTheApproverSignedIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFrozenClock()
	s := startE2EConfig(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{now: clock.now}, func(c *config.Config) { c.AdminMFA = "required" })
	if _, err := s.app.accounts.Create(ctx, accounts.NewUser{Username: "root", Password: e2ePassword, Role: storage.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	_, tvSecret := s.client(clients.Spec{ID: "console-tv", FirstParty: true, RedirectURIs: []string{},
		GrantTypes: []string{clients.DeviceCodeGrant, "refresh_token"}, Scopes: []string{"openid", "admin", "offline_access"}})

	onePwd := s.browser()
	s.signInPage(t, onePwd, "root")
	secret, _ := enrolTOTP(t, s, onePwd, clock) // the session stays one-factor
	twoFactor := s.browser()
	p := s.signInPage(t, twoFactor, "root")
	clock.advance(totp.Period)
	if p = submit(t, twoFactor, parseForm(t, p.body, p.url), map[string]string{"totp_code": clock.code(secret)}); p.url.Path != "/account" {
		t.Fatalf("the two-factor sign-in: %d %s", p.status, p.url)
	}

	// Approved from the two-factor session: multi-factor tokens.
	tok := s.deviceTokens(t, twoFactor, "console-tv", tvSecret, "openid admin offline_access")
	access, id := jwtClaims(t, tok["access_token"].(string)), idClaims(t, tok["id_token"].(string))
	amr, _ := id["amr"].([]any)
	if access["acr"] != accounts.ACRMultiFactor || id["acr"] != accounts.ACRMultiFactor || !slices.Contains(amr, any("mfa")) || !slices.Contains(amr, any("otp")) {
		t.Fatalf("two-factor approval: access token %v, ID token %v", access, id)
	}
	s.want(s.call(nil, http.MethodGet, "/api/admin/users", tok["access_token"].(string), nil), http.StatusOK)
	status, refreshed := s.formPost(t, provider.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}},
		func(r *http.Request) { r.SetBasicAuth("console-tv", tvSecret) })
	if status != http.StatusOK || jwtClaims(t, refreshed["access_token"].(string))["acr"] != accounts.ACRMultiFactor {
		t.Fatalf("refreshed: %d %v", status, refreshed)
	}
	if amr, _ := idClaims(t, refreshed["id_token"].(string))["amr"].([]any); !slices.Contains(amr, any("mfa")) {
		t.Fatalf("refreshed ID token: %v", idClaims(t, refreshed["id_token"].(string)))
	}
	s.want(s.call(nil, http.MethodGet, "/api/admin/users", refreshed["access_token"].(string), nil), http.StatusOK)

	// Approved from the password-only session: no multi-factor acr, and
	// the admin API refuses the token.
	tok = s.deviceTokens(t, onePwd, "console-tv", tvSecret, "openid admin offline_access")
	access, id = jwtClaims(t, tok["access_token"].(string)), idClaims(t, tok["id_token"].(string))
	if amr, _ := id["amr"].([]any); access["acr"] == accounts.ACRMultiFactor || id["acr"] == accounts.ACRMultiFactor || !slices.Equal(amr, []any{"pwd"}) {
		t.Fatalf("one-factor approval: access token %v, ID token %v", access, id)
	}
	s.want(s.call(nil, http.MethodGet, "/api/admin/users", tok["access_token"].(string), nil), http.StatusForbidden)

	// The User API's refusal of that one-factor session speaks of a
	// sign-in, not of a token (it was a cookie).
	guest := map[string]any{"username": "guest1", "password": e2ePassword, "role": "guest"}
	refused := s.want(s.call(onePwd, http.MethodPost, "/api/User/createUser", "", guest), http.StatusForbidden)
	if msg := refused.errMsg(); !strings.Contains(msg, "this sign-in used one") || strings.Contains(msg, "token's") {
		t.Fatalf("the session's refusal: %q", msg)
	}
}
