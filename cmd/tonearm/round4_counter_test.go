package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
	"github.com/tonearm-idp/tonearm/web"
)

// The first-admin security code's limit (README: five wrong codes per
// address per 15 minutes) holds across replicas: two servers on one
// PostgreSQL, wrong codes sent half to each, at once, stop at five
// reaching the code; then neither replica takes even its right code from
// that address. The per-process limiter this replaced let five through on
// each replica.
func TestSecurityCodeLimitHoldsAcrossReplicas(t *testing.T) {
	t.Parallel()
	a := startE2E(t, pgtest.URL(t), options{})
	b := a.second()
	codes := map[string]bool{a.app.securityCode: true, b.app.securityCode: true}
	if a.app.securityCode == "" || b.app.securityCode == "" {
		t.Fatal("each replica should log its own security code")
	}
	const sent = 12
	var wrong []string
	for i := 0; len(wrong) < sent; i++ {
		if g := fmt.Sprintf("%06d", (i*7919+13)%1_000_000); !codes[g] {
			wrong = append(wrong, g)
		}
	}
	post := func(s *server, code string) (int, error) {
		body, _ := json.Marshal(map[string]any{"username": "first", "password": e2ePassword, "role": "admin", "securityCode": code})
		// s.srv: a second server keeps the first one's issuer.
		resp, err := http.Post(s.srv.URL+"/api/User/createUser", "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	statuses := make([]int, sent)
	errs := make([]error, sent)
	var wg sync.WaitGroup
	for i := range wrong {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], errs[i] = post(s, wrong[i])
		}()
	}
	wg.Wait()
	counted := map[int]int{}
	for i, st := range statuses {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		counted[st]++
	}
	if counted[http.StatusForbidden] != 5 || counted[http.StatusTooManyRequests] != sent-5 {
		t.Fatalf("of %d wrong codes sent to two replicas at once: %v (status: count), want 5 compared (403) and the rest refused (429)", sent, counted)
	}
	for _, s := range []*server{a, b} {
		if st, err := post(s, s.app.securityCode); err != nil || st != http.StatusTooManyRequests {
			t.Fatalf("the right code after five wrong ones from this address = %d, %v; want 429", st, err)
		}
	}
	if _, err := a.app.store.GetUserByUsername(context.Background(), "first"); err == nil {
		t.Fatal("a refused request created the admin")
	}
}

// The wrong reset tokens per address (20 per 15 minutes) are counted in
// the database too: sent at once to two replicas, 20 are tried and the rest
// refused with 429. Each replica counted its own 20 before.
func TestResetTokenLimitHoldsAcrossReplicas(t *testing.T) {
	t.Parallel()
	a := startE2E(t, pgtest.URL(t), options{})
	b := a.second()
	const sent = 24
	statuses := make([]int, sent)
	errs := make([]error, sent)
	var wg sync.WaitGroup
	for i := range sent {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(map[string]string{"token": fmt.Sprintf("not-a-token-%d", i), "newPassword": e2ePassword})
			resp, err := http.Post(s.srv.URL+"/api/password-reset/confirm", "application/json", bytes.NewReader(body))
			if err != nil {
				errs[i] = err
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	refused := 0
	for i, st := range statuses {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if st == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused != sent-20 {
		t.Fatalf("of %d wrong reset tokens sent to two replicas at once %d were refused (%v), want %d", sent, refused, statuses, sent-20)
	}
}

// Wrong verification links past the limit (20 per address per 15 minutes)
// get 429 with Retry-After on the page, as every limit does; the page
// mapped only its own errors and answered 500 "Something went wrong".
func TestVerificationLinkLimitOnThePage(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	b := s.browser()
	p := get(t, b, s.issuer+web.VerifyEmailPath+"?token=not-a-token")
	f := parseForm(t, p.body, p.url)
	for i := range 20 {
		if got := submit(t, b, f, map[string]string{"token": fmt.Sprintf("not-a-token-%d", i)}); got.status != http.StatusBadRequest {
			t.Fatalf("wrong link %d: %d, want 400", i+1, got.status)
		}
	}
	got, h := submitWithHeader(t, b, f, map[string]string{"token": "not-a-token-21"})
	wantThrottled(t, "the 21st wrong verification link", got, h, 900, "Too many")
}
