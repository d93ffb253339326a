package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
)

// BenchmarkCodeExchange measures the token endpoint's authorization-code
// exchange over HTTP: client authentication, PKCE, code invalidation, ID
// token (RS256) and access token (ES256) signing, and the database writes.
// Getting each code (the browser part) is not timed.
func BenchmarkCodeExchange(b *testing.B) {
	for name, newURL := range map[string]func(t testing.TB) string{
		"sqlite":   func(t testing.TB) string { return "sqlite://" + t.TempDir() + "/bench.db" },
		"postgres": func(t testing.TB) string { return pgtest.URL(t) },
	} {
		b.Run(name, func(b *testing.B) {
			s := startE2E(b, newURL(b), options{})
			s.user("bench")
			_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
			r := s.rp("web", secret, "profile", "offline_access")
			browser := s.browser()
			verifier := oauth2.GenerateVerifier()
			authURL := r.conf.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(verifier))
			s.authorize(browser, authURL, "bench", false) // sign in once
			client := &http.Client{}
			form := url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				code := s.authorize(browser, authURL, "", false).Query().Get("code")
				form.Set("code", code)
				req, _ := http.NewRequest(http.MethodPost, s.issuer+provider.TokenPath, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("web", secret)
				b.StartTimer()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("token endpoint: %d", resp.StatusCode)
				}
			}
		})
	}
}

// BenchmarkJWKS measures serving the JWKS over HTTP with keep-alive, in
// parallel: the document comes from memory.
func BenchmarkJWKS(b *testing.B) {
	s := startE2E(b, "sqlite://"+b.TempDir()+"/bench.db", options{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(s.issuer + provider.JWKSPath)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkCodeFlow measures a signed-in browser's whole sign-in to an
// app: authorize (session → code) and the code exchange (RS256 ID token),
// serially, on SQLite. Profile it with -cpuprofile to see where a sign-in
// spends its time.
func BenchmarkCodeFlow(b *testing.B) {
	s := startE2E(b, "sqlite://"+b.TempDir()+"/bench.db", options{})
	s.user("bench")
	_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
	r := s.rp("web", secret, "profile", "offline_access")
	browser := s.browser()
	verifier := oauth2.GenerateVerifier()
	authURL := r.conf.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(verifier))
	s.authorize(browser, authURL, "bench", false)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		code := s.authorize(browser, authURL, "", false).Query().Get("code")
		if _, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(verifier)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefresh measures refresh-token rotation over HTTP on SQLite.
func BenchmarkRefresh(b *testing.B) {
	s := startE2E(b, "sqlite://"+b.TempDir()+"/bench.db", options{})
	s.user("bench")
	_, secret := s.client(clients.Spec{ID: "web", FirstParty: true, IDTokenAlg: "ES256"})
	r := s.rp("web", secret, "profile", "offline_access")
	tok := s.codeFlow(r, s.browser(), "bench")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tok.Expiry = time.Now().Add(-time.Minute) // make the source refresh
		next, err := r.conf.TokenSource(r.ctx, tok).Token()
		if err != nil {
			b.Fatal(err)
		}
		tok = next
	}
}
