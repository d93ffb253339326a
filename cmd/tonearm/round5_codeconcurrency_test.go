package main

import (
	"net/http"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider/clients"
)

// Found from outside (operations): one authorization code exchanged by 20
// requests at once. Exactly one gets tokens; every other one is 400
// invalid_grant (RFC 6749 §5.2) — a loser used to get 500 server_error when
// it found the code spent on fosite's second read, inside its transaction.
func TestOneCodeExchangedConcurrently(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("cora")
		_, secret := s.client(clients.Spec{ID: "racer", FirstParty: true})
		r := s.rp("racer", secret)
		browser := s.browser()
		for round := range 3 {
			verifier := oauth2.GenerateVerifier()
			username := "" // signed in already after the first round
			if round == 0 {
				username = "cora"
			}
			code := s.authorize(browser, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(t))), username, false).Query().Get("code")
			var wg sync.WaitGroup
			replies := make([]tokenReply, 20)
			for i := range replies {
				wg.Add(1)
				go func() {
					defer wg.Done()
					replies[i] = s.exchange("racer", secret, code, verifier)
				}()
			}
			wg.Wait()
			won := 0
			for _, got := range replies {
				switch {
				case got.status == http.StatusOK:
					won++
				case got.status != http.StatusBadRequest || got.errorCode() != "invalid_grant":
					t.Fatalf("round %d: a concurrent exchange answered %d %v, want 400 invalid_grant", round, got.status, got.body)
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d exchanges of one code won, want exactly one", round, won)
			}
		}
	})
}
