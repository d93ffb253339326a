package main

import (
	"testing"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider/clients"
)

// OpenID Connect Core §3.1.2.1: prompt=none with any other value is an
// error (invalid_request at the client's redirect URI), not prompt=none's
// answer for a request that also asked a sign-in or a consent page; found
// from outside ("prompt=none login" was answered login_required although
// the browser was signed in).
func TestPromptNoneWithOtherValuesIsInvalid(t *testing.T) {
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.user("gina")
	_, secret := s.client(clients.Spec{ID: "third"})
	r := s.rp("third", secret, "profile")
	browser := s.browser()
	authURL := func(prompt string) string {
		return r.conf.AuthCodeURL(random(t), oauth2.SetAuthURLParam("prompt", prompt), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	}
	s.authorize(browser, authURL("login"), "gina", true) // signed in, consent given
	for _, prompt := range []string{"none login", "consent none", "none select_account"} {
		p := get(t, browser, authURL(prompt))
		if p.location == nil || p.location.Query().Get("error") != "invalid_request" || p.location.Query().Get("code") != "" {
			t.Fatalf("prompt=%q = %d %v, want invalid_request at the redirect URI", prompt, p.status, p.location)
		}
	}
	// Found from outside: the same parameter twice (RFC 6749 §3.1) is
	// refused too, in either order.
	for _, extra := range []string{"&prompt=none", "&prompt=login", "&max_age=0&max_age=3600"} {
		p := get(t, browser, authURL("login")+extra)
		if p.location == nil || p.location.Query().Get("error") != "invalid_request" || p.location.Query().Get("code") != "" {
			t.Fatalf("prompt=login%s = %d %v, want invalid_request at the redirect URI", extra, p.status, p.location)
		}
	}
	// prompt=none alone still answers with a code.
	if p := get(t, browser, authURL("none")); p.location == nil || p.location.Query().Get("code") == "" {
		t.Fatalf("prompt=none = %d %v, want a code", p.status, p.location)
	}
}
