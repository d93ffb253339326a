package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/examples/device-login/devicelogin"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

// deviceStart asks for a device authorization as a public client.
func (s *server) deviceStart(t *testing.T, clientID, scope string) (int, map[string]any) {
	t.Helper()
	return s.postForm(t, provider.DeviceAuthorizationPath, url.Values{"client_id": {clientID}, "scope": {scope}})
}

// devicePoll polls the token endpoint with a device code.
func (s *server) devicePoll(t *testing.T, clientID, code string) (int, map[string]any) {
	t.Helper()
	return s.postForm(t, provider.TokenPath, url.Values{"client_id": {clientID}, "grant_type": {provider.DeviceCodeGrant}, "device_code": {code}})
}

func (s *server) postForm(t *testing.T, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	return s.formPost(t, path, form, nil)
}

// formPost posts form to path (set may add credentials) and decodes the
// JSON answer.
func (s *server) formPost(t *testing.T, path string, form url.Values, set func(*http.Request)) (int, map[string]any) {
	t.Helper()
	status, body, _ := s.formPostHeader(t, path, form, set)
	return status, body
}

// formPostHeader is formPost with the answer's header.
func (s *server) formPostHeader(t *testing.T, path string, form url.Values, set func(*http.Request)) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if set != nil {
		set(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, resp.Header
}

// decideDevice is the person on /device: signed in in browser, types code
// and answers.
func (s *server) decideDevice(t *testing.T, browser *http.Client, verification, decision string) page {
	t.Helper()
	p := get(t, browser, verification)
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="user_code"`) {
		t.Fatalf("device page: %d\n%s", p.status, p.body)
	}
	p = submit(t, browser, parseForm(t, p.body, p.url), nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Only continue if you started this on your device") {
		t.Fatalf("device consent page: %d\n%s", p.status, p.body)
	}
	return submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"decision": decision})
}

// The Device Authorization Grant (RFC 8628) end to end: the example device
// client against tonearm, a person allowing it on /device, and every error
// of §3.5.
func TestDeviceAuthorizationGrant(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		clock := &offsetClock{}
		s := startE2E(t, dbURL, options{now: clock.now})
		s.client(clients.Spec{ID: "scrobbler", Public: true, RedirectURIs: []string{}, GrantTypes: []string{clients.DeviceCodeGrant, "refresh_token"},
			Scopes: []string{"openid", "profile", "listenbrainz", "offline_access"}, Display: clients.Display{Name: "Scrobbler 3000"}})
		s.client(clients.Spec{ID: "web-only", Public: true})
		u := s.user("couch-listener")
		browser := s.browser()
		if p := s.signInPage(t, browser, u.Username); p.url.Path != "/account" {
			t.Fatalf("sign-in: %v", p.url)
		}

		if p := get(t, http.DefaultClient, s.issuer+provider.DiscoveryPath); !strings.Contains(p.body, `"device_authorization_endpoint":"`+s.issuer+provider.DeviceAuthorizationPath+`"`) ||
			!strings.Contains(p.body, provider.DeviceCodeGrant) {
			t.Fatalf("discovery: %s", p.body)
		}

		// The example client, unmodified, with a person allowing it.
		prompts := make(chan devicelogin.Prompt, 1)
		done := make(chan struct{})
		var tok devicelogin.Token
		var loginErr error
		go func() {
			defer close(done)
			tok, loginErr = devicelogin.Login(context.Background(), devicelogin.Config{
				Issuer: s.issuer, ClientID: "scrobbler", Scopes: []string{"openid", "profile", "offline_access"},
				// The device waits the interval on tonearm's clock.
				Sleep: func(ctx context.Context, d time.Duration) error {
					clock.advance(d)
					time.Sleep(20 * time.Millisecond)
					return nil
				},
			}, func(p devicelogin.Prompt) { prompts <- p })
		}()
		prompt := <-prompts
		if len(prompt.UserCode) != 9 || prompt.UserCode[4] != '-' || strings.Trim(prompt.UserCode, "BCDFGHJKLMNPQRSTVWXZ-") != "" ||
			prompt.VerificationURI != s.issuer+provider.DevicePath || prompt.ExpiresIn != 600 {
			t.Fatalf("prompt = %+v", prompt)
		}
		time.Sleep(100 * time.Millisecond) // a few pending polls
		if p := s.decideDevice(t, browser, prompt.VerificationURIComplete, "allow"); p.status != http.StatusOK || !strings.Contains(p.body, "Scrobbler 3000 is signed in as you") {
			t.Fatalf("allow: %d\n%s", p.status, p.body)
		}
		<-done
		if loginErr != nil || tok.AccessToken == "" || tok.RefreshToken == "" || tok.IDToken == "" {
			t.Fatalf("device login = %+v, %v", tok, loginErr)
		}
		if c := idClaims(t, tok.IDToken); c["preferred_username"] != "couch-listener" || c["aud"] == nil {
			t.Fatalf("ID token claims = %v", c)
		}
		req, _ := http.NewRequest(http.MethodGet, s.issuer+provider.UserinfoPath, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if p := read(t, resp); p.status != http.StatusOK || !strings.Contains(p.body, `"sub":"`+u.ID+`"`) {
			t.Fatalf("userinfo: %d %s", p.status, p.body)
		}
		if status, body := s.postForm(t, provider.TokenPath, url.Values{"client_id": {"scrobbler"}, "grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}); status != http.StatusOK || body["access_token"] == nil {
			t.Fatalf("refresh: %d %v", status, body)
		}

		// §3.5, one by one.
		status, start := s.deviceStart(t, "scrobbler", "openid")
		code, _ := start["device_code"].(string)
		if status != http.StatusOK || code == "" || start["interval"] != float64(5) {
			t.Fatalf("device authorization: %d %v", status, start)
		}
		if status, body := s.devicePoll(t, "scrobbler", code); status != http.StatusBadRequest || body["error"] != "authorization_pending" {
			t.Fatalf("first poll: %d %v", status, body)
		}
		if status, body := s.devicePoll(t, "scrobbler", code); status != http.StatusBadRequest || body["error"] != "slow_down" {
			t.Fatalf("a poll too soon: %d %v", status, body)
		}
		clock.advance(10 * time.Second) // the interval is 10 s now
		if status, body := s.devicePoll(t, "web-only", code); status != http.StatusBadRequest || body["error"] != "unauthorized_client" {
			t.Fatalf("a client without the grant: %d %v", status, body)
		}
		if p := s.decideDevice(t, browser, s.issuer+provider.DevicePath+"?user_code="+url.QueryEscape(start["user_code"].(string)), "deny"); !strings.Contains(p.body, "Denied") {
			t.Fatalf("deny: %d\n%s", p.status, p.body)
		}
		if status, body := s.devicePoll(t, "scrobbler", code); status != http.StatusBadRequest || body["error"] != "access_denied" {
			t.Fatalf("poll after denial: %d %v", status, body)
		}

		// A device code yields tokens once.
		_, again := s.deviceStart(t, "scrobbler", "openid profile")
		s.decideDevice(t, browser, s.issuer+provider.DevicePath+"?user_code="+url.QueryEscape(again["user_code"].(string)), "allow")
		if status, body := s.devicePoll(t, "scrobbler", again["device_code"].(string)); status != http.StatusOK || body["access_token"] == nil || body["refresh_token"] != nil {
			t.Fatalf("poll after approval: %d %v", status, body)
		}
		clock.advance(6 * time.Second)
		if status, body := s.devicePoll(t, "scrobbler", again["device_code"].(string)); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("second use: %d %v", status, body)
		}
		if status, body := s.devicePoll(t, "scrobbler", "not-a-device-code"); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("unknown device code: %d %v", status, body)
		}
		if status, body := s.deviceStart(t, "web-only", "openid"); status != http.StatusBadRequest || body["error"] != "unauthorized_client" {
			t.Fatalf("device authorization for a client without the grant: %d %v", status, body)
		}
		if status, body := s.deviceStart(t, "scrobbler", "openid admin"); status != http.StatusBadRequest || body["error"] != "invalid_scope" {
			t.Fatalf("a scope the client lacks: %d %v", status, body)
		}

		// Expired: the device hears expired_token, the page refuses the code.
		_, late := s.deviceStart(t, "scrobbler", "openid")
		clock.advance(11 * time.Minute)
		if status, body := s.devicePoll(t, "scrobbler", late["device_code"].(string)); status != http.StatusBadRequest || body["error"] != "expired_token" {
			t.Fatalf("poll after expiry: %d %v", status, body)
		}
		p := get(t, browser, s.issuer+provider.DevicePath+"?user_code="+url.QueryEscape(late["user_code"].(string)))
		if p = submit(t, browser, parseForm(t, p.body, p.url), nil); p.status != http.StatusBadRequest || !strings.Contains(p.body, "wrong, already used or expired") {
			t.Fatalf("an expired user code on the page: %d\n%s", p.status, p.body)
		}

		// Guessing user codes: 30 tries per person per 15 minutes.
		for i := 0; ; i++ {
			p = submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"user_code": "BCDF-GHJK"})
			if p.status == http.StatusTooManyRequests {
				break
			}
			if i > 30 {
				t.Fatal("user code lookups are not limited")
			}
		}
	})
}
