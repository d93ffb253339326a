package main

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/tonearm-idp/tonearm/provider"
)

// virtualAuthenticator gives the browser Chromium's virtual platform
// authenticator (DevTools WebAuthn domain): resident keys, user
// verification that succeeds, presence without a touch.
func (b *browserTab) virtualAuthenticator() webauthn.AuthenticatorID {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		b.t.Fatalf("WebAuthn.enable: %v", err)
	}
	res, err := chromedp.Call(b.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}})
	if err != nil {
		b.t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return res.AuthenticatorID
}

// A person adds a passkey on /account, signs out, and signs in to an app
// with the passkey alone: no username, no password; the app's ID token
// says amr hwk.
func TestBrowserPasskeys(t *testing.T) {
	if chromiumPath() == "" && os.Getenv("CI") != "true" {
		t.Skip("chromium is not installed (apt-get install chromium): browser tests skipped")
	}
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startPasskeyServer(t, dbURL)
		u := s.user("keyring")
		app := s.webApp(t, "party-passkey")
		b := newBrowser(t)
		authenticator := b.virtualAuthenticator()

		b.signIn(s, u.Username, e2ePassword)
		b.wantText("Your account")
		b.run(chromedp.WaitVisible(chromedp.CSS("#add_passkey")), fill(map[string]string{"passkey_name": "This laptop"}),
			chromedp.Click(chromedp.CSS("#add_passkey")))
		b.wantText("Your passkey is added.")
		b.wantText("This laptop")
		keys, err := s.app.store.ListPasskeys(context.Background(), u.ID)
		if err != nil || len(keys) != 1 || keys[0].Name != "This laptop" {
			t.Fatalf("stored passkeys = %+v, %v", keys, err)
		}
		held, err := chromedp.Call(b.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: authenticator})
		if err != nil || len(held.Credentials) != 1 || !held.Credentials[0].IsResidentCredential || string(held.Credentials[0].UserHandle) != u.ID {
			t.Fatalf("the authenticator holds %+v, %v", held, err)
		}

		// Sign out of tonearm.
		b.open(s.issuer + provider.LogoutPath)
		b.run(chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
		b.wantText("You are signed out")
		b.open(s.issuer + "/account")
		b.run(chromedp.WaitVisible(chromedp.CSS("#passkey_login")))

		// The app's sign-in: the passkey button alone.
		b.open(app.authURL())
		b.wantText("Listening Party")
		b.run(chromedp.WaitVisible(chromedp.CSS("#passkey_login")), chromedp.Click(chromedp.CSS("#passkey_login")))
		b.allow()
		tok := app.finish(t, b)
		claims := idClaims(t, tok.Extra("id_token").(string))
		amr, _ := claims["amr"].([]any)
		if claims["sub"] != u.ID || !slices.Equal(amr, []any{"hwk", "user", "mfa"}) || claims["sid"] == nil {
			t.Fatalf("ID token after a passkey sign-in = %v", claims)
		}
		if keys, _ := s.app.store.ListPasskeys(context.Background(), u.ID); keys[0].LastUsedAt.IsZero() {
			t.Fatal("the passkey's use was not recorded")
		}
	})
}
