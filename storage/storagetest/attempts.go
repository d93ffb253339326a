package storagetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

// countAttempts calls CountAttempts with a 15-minute window and returns
// the counters by key.
func countAttempts(t *testing.T, s storage.Storage, keys []string, n int, at time.Time) map[string]storage.LoginFailure {
	t.Helper()
	got, err := s.CountAttempts(context.Background(), keys, n, at, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]storage.LoginFailure{}
	for _, f := range got {
		if _, dup := out[f.Key]; dup {
			t.Fatalf("key %q returned twice: %v", f.Key, got)
		}
		out[f.Key] = f
	}
	return out
}

// CountAttempts reserves (n > 0) and gives back (n < 0) in one statement
// that returns the new counts.
func testCountAttempts(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	const window = 15 * time.Minute // countAttempts's
	a, b := "attempt:a", "attempt:b"
	// A new key starts at n; a key named twice counts once.
	got := countAttempts(t, s, []string{b, a, b}, 1, now)
	if len(got) != 2 || got[a].Count != 1 || got[b].Count != 1 || !got[a].WindowStart.Equal(now.Truncate(time.Microsecond)) || !got[a].Last.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("first reservation: %+v", got)
	}
	later := now.Add(time.Minute)
	got = countAttempts(t, s, []string{a}, 2, later)
	if f := got[a]; len(got) != 1 || f.Count != 3 || !f.WindowStart.Equal(now.Truncate(time.Microsecond)) || !f.Last.Equal(later.Truncate(time.Microsecond)) {
		t.Fatalf("second reservation: %+v", got)
	}
	// Giving back: never below zero, keys of an ended window and missing
	// keys untouched and not returned.
	got = countAttempts(t, s, []string{a, b, "attempt:none"}, -2, later)
	if len(got) != 2 || got[a].Count != 1 || got[b].Count != 0 || !got[a].Last.Equal(later.Truncate(time.Microsecond)) {
		t.Fatalf("giving back: %+v", got)
	}
	if got := countAttempts(t, s, []string{a}, -1, now.Add(window+time.Second)); len(got) != 0 {
		t.Fatalf("gave back in an ended window: %+v", got)
	}
	// A counter giving back had created would be live, and a second give
	// back would return it.
	if got := countAttempts(t, s, []string{"attempt:none"}, -1, later); len(got) != 0 {
		t.Fatalf("giving back created a counter: %+v", got)
	}
	// After the window, a reservation starts a new one.
	next := now.Add(window)
	got = countAttempts(t, s, []string{a, b}, 1, next)
	if f := got[a]; f.Count != 1 || !f.WindowStart.Equal(next.Truncate(time.Microsecond)) {
		t.Fatalf("after the window: %+v", got)
	}
	if got, err := s.CountAttempts(ctx, nil, 1, now, window); err != nil || len(got) != 0 {
		t.Fatalf("no keys: %v, %v", got, err)
	}
}

// N attempts reserved at once (several requests, several replicas) each
// get their own count, 1..N, and the counter ends at N: the property every
// limit relies on to hold under concurrency.
func testConcurrentCountAttempts(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	const n = 40
	var wg sync.WaitGroup
	counts := make([]int, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			// Every goroutine shares one key and, in differing orders,
			// another: the store must order its row locks itself.
			other := fmt.Sprintf("attempt:own-%d", i%3)
			keys := []string{"attempt:shared", other}
			if i%2 == 1 {
				keys[0], keys[1] = keys[1], keys[0]
			}
			got, err := s.CountAttempts(ctx, keys, 1, now, 15*time.Minute)
			errs[i] = err
			for _, f := range got {
				if f.Key == "attempt:shared" {
					counts[i] = f.Count
				}
			}
			if err != nil {
				return
			}
			// Giving back, in any order, at the same time as others
			// reserve: no deadlock (a reservation of a key of its own
			// first, so that the shared counter's total stays n).
			own := fmt.Sprintf("attempt:back-%d", i)
			if _, err := s.CountAttempts(ctx, []string{own, other}, 1, now, 15*time.Minute); err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = s.CountAttempts(ctx, []string{other, own}, -1, now, 15*time.Minute)
		}(i)
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(counts)
	for i, c := range counts {
		if c != i+1 {
			t.Fatalf("%d simultaneous reservations got counts %v, want 1..%d each once", n, counts, n)
		}
	}
	if f := countAttempts(t, s, []string{"attempt:shared"}, -1, now)["attempt:shared"]; f.Count != n-1 {
		t.Fatalf("the counter ends at %d after giving one back, want %d", f.Count, n-1)
	}
}
