package storagetest

import (
	"context"
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
		{"AttemptWindows", testAttemptWindows},
		{"DeviceEpoch", testDeviceEpoch},
		{"CountAttempts", testCountAttempts},
		{"ConcurrentCountAttempts", testConcurrentCountAttempts},
	}
}

// Counters keep their window: every attempt in it adds up, the first one
// after it starts a new one, clearing forgets only the keys named, and the
// housekeeping removes counters by their latest attempt, in batches.
func testAttemptWindows(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	const window = 15 * time.Minute // countAttempts's
	keys := []string{"addr:192.0.2.1", "pair:192.0.2.1|user-1", "acct:user-1"}
	var got map[string]storage.LoginFailure
	for i := 0; i < 3; i++ {
		got = countAttempts(t, s, keys, 1, now.Add(time.Duration(i)*time.Second))
	}
	if len(got) != 3 {
		t.Fatalf("counters = %v", got)
	}
	for _, k := range keys {
		f := got[k]
		if f.Count != 3 || !f.WindowStart.Equal(now.Truncate(time.Microsecond)) || !f.Last.Equal(now.Add(2*time.Second).Truncate(time.Microsecond)) {
			t.Fatalf("%q = %+v", k, f)
		}
	}
	// The first attempt after the window starts a new one.
	later := now.Add(window + time.Minute)
	if f := countAttempts(t, s, keys[:1], 1, later)[keys[0]]; f.Count != 1 || !f.WindowStart.Equal(later.Truncate(time.Microsecond)) {
		t.Fatalf("after the window: %+v", f)
	}
	// Clearing forgets only the keys named: giving back finds the others.
	if err := s.ClearLoginFailures(ctx, keys[1:2]); err != nil {
		t.Fatal(err)
	}
	got = countAttempts(t, s, keys[1:], -1, now.Add(3*time.Second))
	if _, ok := got[keys[1]]; ok || got[keys[2]].Count != 2 {
		t.Fatalf("after clearing %q: %v", keys[1], got)
	}
	if err := s.ClearLoginFailures(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// Stale counters go in batches, by their latest attempt: keys[2]'s at
	// now+2s, keys[0]'s at later.
	if n, err := s.DeleteStaleLoginFailures(ctx, now.Add(time.Minute), 10); err != nil || n != 1 {
		t.Fatalf("DeleteStaleLoginFailures = %d, %v", n, err)
	}
	if n, err := s.DeleteStaleLoginFailures(ctx, later, 10); err != nil || n != 0 {
		t.Fatalf("DeleteStaleLoginFailures of live counters = %d, %v", n, err)
	}
	if n, err := s.DeleteStaleLoginFailures(ctx, later.Add(time.Second), 0); err != nil || n != 0 {
		t.Fatalf("DeleteStaleLoginFailures of none = %d, %v", n, err)
	}
	if n, err := s.DeleteStaleLoginFailures(ctx, later.Add(time.Second), 1); err != nil || n != 1 {
		t.Fatalf("DeleteStaleLoginFailures = %d, %v", n, err)
	}
	if got := countAttempts(t, s, keys, -1, later); len(got) != 0 {
		t.Fatalf("counters left after the sweep: %v", got)
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
