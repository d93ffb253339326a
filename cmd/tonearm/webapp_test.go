package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tonearm-idp/tonearm/examples/web-app/webapp"
)

// The README's quick start, in Chromium: the example web app registered
// with the README's command, signing a person in (login, consent), showing
// their name, refreshing, signing out through tonearm, and losing its
// session when tonearm ends the person's sessions (back-channel logout).
func TestExampleWebAppInABrowser(t *testing.T) {
	if chromiumPath() == "" && os.Getenv("CI") != "true" {
		t.Skip("chromium is not installed (apt-get install chromium): browser tests skipped")
	}
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("listener")
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + ln.Addr().String()
		// The README's registration command, with this test's port.
		env := envFunc(map[string]string{"TONEARM_DATABASE_URL": dbURL, "TONEARM_SECRET": string(s.cfg.Secret)})
		var out bytes.Buffer
		if err := run(context.Background(), []string{"clients", "create", "--id", "web-app", "--name", "Example web app",
			"--redirect-uri", base + "/callback", "--post-logout-redirect-uri", base + "/",
			"--backchannel-logout-uri", base + "/backchannel-logout",
			"--scope", "openid profile listenbrainz offline_access", "--json"}, env, nil, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		var reg map[string]any
		if err := json.Unmarshal(out.Bytes(), &reg); err != nil {
			t.Fatal(err)
		}
		app, err := webapp.New(context.Background(), webapp.Config{Issuer: s.issuer, ClientID: "web-app", ClientSecret: reg["client_secret"].(string),
			BaseURL: base, Logger: discardLogger()})
		if err != nil {
			t.Fatal(err)
		}
		srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: app.Handler()}}
		srv.Start()
		t.Cleanup(srv.Close)

		b := newBrowser(t)
		signIn := func(consent bool) {
			t.Helper()
			b.open(base + "/")
			b.run(chromedp.Click(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS("#username")),
				fill(map[string]string{"username": "listener", "password": e2ePassword}), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
			if consent { // the first time only: the grant is remembered
				b.run(chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
				b.wantText("Example web app")
				b.run(chromedp.Click(chromedp.CSS(`button[value=allow]`)))
			}
			b.run(chromedp.WaitVisible(chromedp.CSS("#who")))
		}
		signIn(true)
		if got := value(b, chromedp.Text(chromedp.CSS("#username"))); got != "listener" {
			t.Fatalf("the app shows %q", got)
		}
		b.run(chromedp.Click(chromedp.CSS("#refresh")), chromedp.WaitVisible(chromedp.CSS("#refreshed")))
		if got := value(b, chromedp.Text(chromedp.CSS("#refreshed"))); got != "1" {
			t.Fatalf("refreshed %q times", got)
		}
		// Sign out: through tonearm and back to the app, signed out.
		b.run(chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#signed-out")))
		if loc := b.location(); !strings.HasPrefix(loc, base) {
			t.Fatalf("after sign-out the browser is at %s", loc)
		}
		// Signed out at tonearm too: the next sign-in asks for the password.
		b.open(base + "/login")
		b.run(chromedp.WaitVisible(chromedp.CSS("#username")))

		// Back-channel logout: tonearm ends every session of the person
		// (endSession from another device); the app hears it.
		signIn(false)
		other := s.loginBrowser("listener")
		s.want(s.call(other, http.MethodPost, "/api/User/endSession", "", map[string]any{}), http.StatusOK)
		deadline := time.Now().Add(15 * time.Second)
		for {
			b.open(base + "/")
			if strings.Contains(b.body(), "You are not signed in.") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the app never heard the back-channel logout")
			}
			time.Sleep(300 * time.Millisecond)
		}
	})
}
