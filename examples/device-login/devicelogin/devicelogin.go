// Package devicelogin signs a device in with the OAuth 2.0 Device
// Authorization Grant (RFC 8628): it asks tonearm for a user code, shows
// it, and polls the token endpoint until the person has allowed (or
// denied) the device on tonearm's /device page. Standard library only.
package devicelogin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config says which provider and client to use.
type Config struct {
	Issuer       string
	ClientID     string
	ClientSecret string // empty for a public client
	Scopes       []string
	HTTP         *http.Client                               // nil: a client with a 15 s timeout
	Sleep        func(context.Context, time.Duration) error // nil: waits
}

// Prompt is what the person must see: where to go and what to type.
type Prompt struct {
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
}

// Token is the token endpoint's answer.
type Token struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// Error is an OAuth error answer.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// Login runs the grant: show is called once with the prompt.
func Login(ctx context.Context, c Config, show func(Prompt)) (Token, error) {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	sleep := c.Sleep
	if sleep == nil {
		sleep = func(ctx context.Context, d time.Duration) error {
			select {
			case <-time.After(d):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	var meta struct {
		Device string `json:"device_authorization_endpoint"`
		Token  string `json:"token_endpoint"`
	}
	if err := getJSON(ctx, hc, strings.TrimRight(c.Issuer, "/")+"/.well-known/openid-configuration", &meta); err != nil {
		return Token{}, fmt.Errorf("discovery: %w", err)
	}
	if meta.Device == "" {
		return Token{}, errors.New("the provider offers no device authorization endpoint")
	}
	var start struct {
		Prompt
		DeviceCode string `json:"device_code"`
		Interval   int    `json:"interval"`
	}
	if err := post(ctx, hc, c, meta.Device, url.Values{"scope": {strings.Join(c.Scopes, " ")}}, &start); err != nil {
		return Token{}, err
	}
	show(start.Prompt)
	interval := time.Duration(start.Interval) * time.Second
	if interval <= 0 {
		interval = 5 * time.Second
	}
	for {
		if err := sleep(ctx, interval); err != nil {
			return Token{}, err
		}
		var tok Token
		err := post(ctx, hc, c, meta.Token, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {start.DeviceCode}}, &tok)
		var oe *Error
		switch {
		case err == nil:
			return tok, nil
		case errors.As(err, &oe) && oe.Code == "authorization_pending":
		case errors.As(err, &oe) && oe.Code == "slow_down":
			interval += 5 * time.Second
		default:
			return Token{}, err // access_denied, expired_token, …
		}
	}
}

func getJSON(ctx context.Context, hc *http.Client, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", u, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func post(ctx context.Context, hc *http.Client, c Config, endpoint string, form url.Values, out any) error {
	if c.ClientSecret == "" {
		form.Set("client_id", c.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var oe Error
		if json.NewDecoder(resp.Body).Decode(&oe) == nil && oe.Code != "" {
			return &oe
		}
		return fmt.Errorf("%s: HTTP %d", endpoint, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
