package main

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

// Defects found by trying tonearm from outside, each replayed as it was
// found and shown fixed.

// exchange posts a code to the token endpoint as client id (HTTP Basic),
// with verifier unless it is empty.
func (s *server) exchange(id, secret, code, verifier string) tokenReply {
	s.t.Helper()
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	if verifier != "" {
		f.Set("code_verifier", verifier)
	}
	return s.post(provider.TokenPath, id, secret, f)
}

// A code issued with a PKCE challenge is redeemable only with its
// verifier, and a failed exchange spends it: a confidential client that
// failed once cannot try again without a verifier (fosite forgets the
// challenge before it checks the verifier).
func TestPKCECannotBeSkippedOnASecondTry(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("pia")
		_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
		r := s.rp("web", secret)
		browser := s.browser()
		code := func(verifier string) string {
			back := s.authorize(browser, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(t))), "", false)
			return back.Query().Get("code")
		}
		verifier := oauth2.GenerateVerifier()
		first := s.authorize(browser, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(t))), "pia", false).Query().Get("code")
		if got := s.exchange("web", secret, first, oauth2.GenerateVerifier()); got.status != http.StatusBadRequest || got.errorCode() != "invalid_grant" {
			t.Fatalf("wrong verifier = %d %v, want invalid_grant", got.status, got.body)
		}
		if got := s.exchange("web", secret, first, ""); got.status != http.StatusBadRequest || got.errorCode() != "invalid_grant" {
			t.Fatalf("second try without a verifier = %d %v, want invalid_grant", got.status, got.body)
		}
		if got := s.exchange("web", secret, first, verifier); got.status != http.StatusBadRequest {
			t.Fatalf("the right verifier after a failure = %d %v: the code should be spent", got.status, got.body)
		}

		// No verifier at all on a code with a challenge: refused, and spent.
		verifier = oauth2.GenerateVerifier()
		c := code(verifier)
		if got := s.exchange("web", secret, c, ""); got.status != http.StatusBadRequest || got.errorCode() != "invalid_grant" {
			t.Fatalf("no verifier = %d %v, want invalid_grant", got.status, got.body)
		}
		if got := s.exchange("web", secret, c, verifier); got.status != http.StatusBadRequest {
			t.Fatalf("the right verifier after a failure = %d %v: the code should be spent", got.status, got.body)
		}

		// The plain path still works, once.
		verifier = oauth2.GenerateVerifier()
		c = code(verifier)
		if got := s.exchange("web", secret, c, verifier); got.status != http.StatusOK || got.body["id_token"] == nil {
			t.Fatalf("the right verifier = %d %v", got.status, got.body)
		}
		if got := s.exchange("web", secret, c, verifier); got.status != http.StatusBadRequest || got.errorCode() != "invalid_grant" {
			t.Fatalf("a code used twice = %d %v", got.status, got.body)
		}
	})
}
