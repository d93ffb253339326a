package storagetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

func loginFailureCases() []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"LoginFailures", testLoginFailures},
		{"ConcurrentLoginFailures", testConcurrentLoginFailures},
		{"DeviceEpoch", testDeviceEpoch},
		{"CountAttempts", testCountAttempts},
		{"ConcurrentCountAttempts", testConcurrentCountAttempts},
	}
}

func failureCounts(t *testing.T, s storage.Storage, since time.Time, keys ...string) map[string]storage.LoginFailure {
	t.Helper()
	got, err := s.LoginFailures(context.Background(), keys, since)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]storage.LoginFailure{}
	for _, f := range got {
		out[f.Key] = f
	}
	return out
}

func testLoginFailures(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	const window = 15 * time.Minute
	keys := []string{"addr:192.0.2.1", "pair:192.0.2.1|user-1", "acct:user-1"}
	if got := failureCounts(t, s, now.Add(-window), keys...); len(got) != 0 {
		t.Fatalf("counters before any failure: %v", got)
	}
	for i := 0; i < 3; i++ {
		if err := s.RecordLoginFailure(ctx, keys, now.Add(time.Duration(i)*time.Second), window); err != nil {
			t.Fatal(err)
		}
	}
	got := failureCounts(t, s, now.Add(-window), append(keys, "acct:nobody")...)
	if len(got) != 3 {
		t.Fatalf("counters = %v", got)
	}
	for _, k := range keys {
		f := got[k]
		if f.Count != 3 || !f.WindowStart.Equal(now.Truncate(time.Microsecond)) || !f.Last.Equal(now.Add(2*time.Second).Truncate(time.Microsecond)) {
			t.Fatalf("%q = %+v", k, f)
		}
	}
	// A window that ended is not read, and the next failure starts anew.
	later := now.Add(window + time.Minute)
	if got := failureCounts(t, s, later.Add(-window), keys...); len(got) != 0 {
		t.Fatalf("counters of an ended window were read: %v", got)
	}
	if err := s.RecordLoginFailure(ctx, keys[:1], later, window); err != nil {
		t.Fatal(err)
	}
	if f := failureCounts(t, s, later.Add(-window), keys...)[keys[0]]; f.Count != 1 || !f.WindowStart.Equal(later.Truncate(time.Microsecond)) {
		t.Fatalf("after the window: %+v", f)
	}
	// Clearing forgets only the keys named.
	if err := s.ClearLoginFailures(ctx, keys[1:2]); err != nil {
		t.Fatal(err)
	}
	if got := failureCounts(t, s, now.Add(-window), keys...); len(got) != 2 || got[keys[1]].Count != 0 {
		t.Fatalf("after clearing %q: %v", keys[1], got)
	}
	// Stale counters go in batches.
	if n, err := s.DeleteStaleLoginFailures(ctx, now.Add(time.Hour), 1); err != nil || n != 1 {
		t.Fatalf("DeleteStaleLoginFailures = %d, %v", n, err)
	}
	if n, err := s.DeleteStaleLoginFailures(ctx, now.Add(time.Minute), 10); err != nil || n != 0 {
		t.Fatalf("DeleteStaleLoginFailures of live counters = %d, %v", n, err)
	}
	if n, err := s.DeleteStaleLoginFailures(ctx, later.Add(time.Second), 10); err != nil || n != 1 {
		t.Fatalf("DeleteStaleLoginFailures = %d, %v", n, err)
	}
}

// Failures recorded at once (several replicas) all count.
func testConcurrentLoginFailures(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = s.RecordLoginFailure(ctx, []string{"acct:raced", fmt.Sprintf("addr:198.51.100.%d", i)}, now, 15*time.Minute)
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f := failureCounts(t, s, now.Add(-time.Minute), "acct:raced")["acct:raced"]; f.Count != n {
		t.Fatalf("%d concurrent failures counted %d", n, f.Count)
	}
}

func testDeviceEpoch(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("epochal")
	mustCreate(t, s, u)
	epoch := func() int64 {
		got, err := s.GetUser(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.DeviceEpoch
	}
	if e := epoch(); e != 0 {
		t.Fatalf("a new user's epoch = %d", e)
	}
	if _, err := s.DeleteUserSessions(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if e := epoch(); e != 1 {
		t.Fatalf("after ending every session: epoch %d, want 1", e)
	}
	if _, err := s.UpdateUser(ctx, u.ID, func(x storage.User) (storage.User, error) { x.DeviceEpoch = 99; x.Bio = "b"; return x, nil }); err != nil {
		t.Fatal(err)
	}
	if e := epoch(); e != 1 {
		t.Fatalf("UpdateUser moved the epoch to %d", e)
	}
}
