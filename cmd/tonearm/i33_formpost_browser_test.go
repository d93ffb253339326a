package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/tonearm-idp/tonearm/provider/clients"
)

// openidClientApp registers a confidential client for an openid-client
// run on a free loopback port, and starts that run with args.
func (s *server) openidClientApp(t *testing.T, id string, args ...string) *openidClientRP {
	t.Helper()
	openidClient(t) // skip (or fail under CI) before registering anything
	port := freeLoopbackPort(t)
	_, secret := s.client(clients.Spec{ID: id, RedirectURIs: []string{"http://127.0.0.1:" + strconv.Itoa(port) + "/callback"}, Scopes: []string{"openid", "profile"}})
	return startOpenIDClient(t, s.issuer, port, append([]string{"--client-id", id, "--secret", secret}, args...)...)
}

// checkSignedIn checks an openid-client outcome of a form_post sign-in
// of user.
func checkSignedIn(t *testing.T, s *server, o openidClientOutcome, userID, username string) {
	t.Helper()
	if !o.OK || o.Method != "POST" || !o.IDToken || !o.AccessToken || o.Claims["sub"] != userID || o.Claims["iss"] != s.issuer ||
		o.Userinfo["preferred_username"] != username {
		t.Fatalf("openid-client outcome: %+v", o)
	}
}

// An unmodified openid-client relying party asks for form_post; Chromium
// signs in, and the authorization response reaches the RP's callback as a
// POST: submitted by tonearm's script, and with JavaScript off by the
// visible button. openid-client then redeems the code and verifies the
// ID token (its signature too) and userinfo.
func TestI33FormPostThroughOpenIDClientInABrowser(t *testing.T) {
	if chromiumPath() == "" && os.Getenv("CI") != "true" {
		t.Skip("chromium is not installed (apt-get install chromium): browser tests skipped")
	}
	t.Parallel()
	s := startE2E(t, sqliteURL(t), options{})
	u := s.user("node-person")
	signIn := func(b *browserTab, authURL string) {
		b.open(authURL)
		b.run(fill(map[string]string{"username": "node-person", "password": e2ePassword}), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
		b.run(chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)), chromedp.Click(chromedp.CSS(`button[value=allow]`)))
	}

	t.Run("ScriptSubmits", func(t *testing.T) {
		rp := s.openidClientApp(t, "node-form-post", "--response-mode", "form_post")
		b := newBrowser(t)
		signIn(b, rp.AuthURL)
		b.wantText("rp: signed in")
		if loc := b.location(); !strings.HasPrefix(loc, rp.RedirectURI) {
			t.Fatalf("the browser is at %s, not the RP's callback", loc)
		}
		checkSignedIn(t, s, rp.Outcome(), u.ID, "node-person")
	})

	t.Run("JavaScriptOff", func(t *testing.T) {
		rp := s.openidClientApp(t, "node-form-post-nojs", "--response-mode", "form_post")
		b := newBrowser(t)
		b.run(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}))
		signIn(b, rp.AuthURL)
		// The page waits for the person: still at tonearm, with its button.
		b.run(chromedp.WaitVisible(chromedp.CSS(`#form-post button[type=submit]`)))
		if loc := b.location(); !strings.HasPrefix(loc, s.issuer) {
			t.Fatalf("without JavaScript the browser left tonearm for %s", loc)
		}
		b.run(chromedp.Click(chromedp.CSS(`#form-post button[type=submit]`)))
		b.wantText("rp: signed in")
		checkSignedIn(t, s, rp.Outcome(), u.ID, "node-person")
	})
}

// The same relying party over HTTP, without a browser: the harness that
// other tests drive with other client authentication and request modes.
func TestI33OpenIDClientHTTP(t *testing.T) {
	t.Parallel()
	s := startE2E(t, sqliteURL(t), options{})
	u := s.user("node-http")
	for _, mode := range []string{"query", "form_post"} {
		rp := s.openidClientApp(t, "node-http-"+strings.ReplaceAll(mode, "_", "-"), "--response-mode", mode, "--request", "par", "--auth", "client_secret_post")
		o := s.signInThroughOpenIDClient(t, rp, "node-http", true)
		if !o.OK || !o.IDToken || o.Claims["sub"] != u.ID || o.Userinfo["preferred_username"] != "node-http" {
			t.Fatalf("%s: %+v", mode, o)
		}
		if want := map[string]string{"query": "GET", "form_post": "POST"}[mode]; o.Method != want {
			t.Fatalf("%s: the callback got a %s", mode, o.Method)
		}
	}
}
