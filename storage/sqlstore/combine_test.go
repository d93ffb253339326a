package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
)

// PostgreSQL's combined statements on a real server: concurrent writes do
// go out as multi-row INSERTs, and one of them failing (a row repeating a
// stored key) fails only that row — its other rows are stored and
// acknowledged, the repeated key keeps its first token; concurrent lookups
// go out as SELECTs of many keys, each answered with its own row.
func TestCombinedStatementsAnswerEachCall(t *testing.T) {
	s, err := Open(context.Background(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok := func(i int, client string) storage.OAuthRequest {
		now := time.Now()
		return storage.OAuthRequest{
			Kind: storage.KindAccessToken, Signature: fmt.Sprintf("%08x", i) + strings.Repeat("5a", 28), RequestID: fmt.Sprintf("req-%d", i),
			RequestedAt: now, ExpiresAt: now.Add(time.Hour), ClientID: client, Subject: "u", Active: true,
		}
	}
	taken := func(i int) bool { return i%25 == 7 }
	for round := 0; round < 20; round++ {
		base := round * 1000
		for i := range 100 {
			if taken(i) {
				if err := s.CreateOAuthRequest(ctx, tok(base+i, "first")); err != nil {
					t.Fatal(err)
				}
			}
		}
		errs := make([]error, 100)
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.CreateOAuthRequest(ctx, tok(base+i, "second"))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			got, gerr := s.GetOAuthRequest(ctx, storage.KindAccessToken, tok(base+i, "").Signature)
			if gerr != nil {
				t.Fatalf("token %d: %v (write: %v)", base+i, gerr, err)
			}
			if taken(i) != errors.Is(err, storage.ErrAlreadyExists) || (taken(i) && got.ClientID != "first") || (!taken(i) && (err != nil || got.ClientID != "second")) {
				t.Fatalf("token %d (key taken: %v): write = %v, stored client %q", base+i, taken(i), err, got.ClientID)
			}
		}
	}
	// The lookups of those tokens, at once, are combined too; each gets
	// its own row.
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, tok(i%100, "").Signature)
			if want := map[bool]string{true: "first", false: "second"}[taken(i%100)]; err != nil || got.ClientID != want || got.RequestID != fmt.Sprintf("req-%d", i%100) {
				t.Errorf("lookup of token %d: %q/%q, %v", i%100, got.ClientID, got.RequestID, err)
			}
		}()
	}
	wg.Wait()
	if combined, _ := s.accessLookups.counts(); combined == 0 {
		t.Error("no lookup was combined with another")
	}
	combined, retried := s.accessRows.counts()
	if combined == 0 || retried == 0 {
		t.Fatalf("%d multi-row INSERTs, %d failed and retried row by row: the combined path was not exercised", combined, retried)
	}
	t.Logf("%d multi-row INSERTs, %d retried row by row", combined, retried)
}
