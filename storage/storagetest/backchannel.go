package storagetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

func backchannelCases() []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"BackchannelQueue", testBackchannelQueue},
		{"BackchannelClaims", testBackchannelClaims},
		{"RotateOAuthRequest", testRotateOAuthRequest},
	}
}

// tokenIn stores an access token of client for user-1 issued in session sid.
func tokenIn(t *testing.T, s storage.Storage, sig, client, sid string) {
	t.Helper()
	r := newRequest(storage.KindAccessToken, sig, "req-"+sig, client, now.Add(time.Hour))
	r.SID = sid
	if err := s.CreateOAuthRequest(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

func alive(t *testing.T, s storage.Storage, sig string) bool {
	t.Helper()
	_, err := s.GetOAuthRequest(context.Background(), storage.KindAccessToken, sig)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func testBackchannelQueue(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	listening := newClient("listening")
	listening.BackchannelLogoutURI = "https://listening.example/logout"
	for _, c := range []storage.Client{listening, newClient("deaf")} {
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.GetClient(ctx, "listening"); err != nil || got.BackchannelLogoutURI != listening.BackchannelLogoutURI {
		t.Fatalf("client = %+v, %v", got, err)
	}
	tokenIn(t, s, "l-a", "listening", "sid-a")
	tokenIn(t, s, "l-a2", "listening", "sid-a")
	tokenIn(t, s, "l-b", "listening", "sid-b")
	tokenIn(t, s, "d-a", "deaf", "sid-a")
	tokenIn(t, s, "l-none", "listening", "")
	n, err := s.QueueBackchannelLogouts(ctx, "user-1", []string{"sid-a"}, now)
	if err != nil || n != 1 {
		t.Fatalf("QueueBackchannelLogouts(sid-a) = %d, %v; want 1 (one per client and session)", n, err)
	}
	if alive(t, s, "l-a") || alive(t, s, "l-a2") {
		t.Fatal("the listening client's tokens from the ended session survived")
	}
	if !alive(t, s, "l-b") || !alive(t, s, "d-a") || !alive(t, s, "l-none") {
		t.Fatal("tokens of another session, of a client without a back-channel URI, or of no session were deleted")
	}
	if n, err := s.QueueBackchannelLogouts(ctx, "someone-else", nil, now); err != nil || n != 0 {
		t.Fatalf("queue for another subject = %d, %v", n, err)
	}
	if n, err := s.QueueBackchannelLogouts(ctx, "user-1", []string{}, now); err != nil || n != 0 {
		t.Fatalf("queue for no session = %d, %v", n, err)
	}
	// Every session: the rest.
	if n, err := s.QueueBackchannelLogouts(ctx, "user-1", nil, now); err != nil || n != 1 {
		t.Fatalf("QueueBackchannelLogouts(all) = %d, %v", n, err)
	}
	due, err := s.ClaimBackchannelLogouts(ctx, now, time.Minute, 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("claimed %+v, %v; want sid-a and sid-b", due, err)
	}
	for _, d := range due {
		if d.ClientID != "listening" || d.Subject != "user-1" || (d.SID != "sid-a" && d.SID != "sid-b") || d.Attempts != 0 {
			t.Fatalf("delivery = %+v", d)
		}
	}
}

func testBackchannelClaims(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	c := newClient("rp")
	c.BackchannelLogoutURI = "https://rp.example/logout"
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	tokenIn(t, s, "rp-1", "rp", "sid-1")
	if _, err := s.QueueBackchannelLogouts(ctx, "user-1", []string{"sid-1"}, now); err != nil {
		t.Fatal(err)
	}
	// Of replicas claiming at once, one gets it.
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := s.ClaimBackchannelLogouts(ctx, now, time.Minute, 10)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			got += len(d)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if got != 1 {
		t.Fatalf("%d claims of one delivery", got)
	}
	// Leased: not again until the lease ends (a crashed worker's lease).
	if d, _ := s.ClaimBackchannelLogouts(ctx, now.Add(30*time.Second), time.Minute, 10); len(d) != 0 {
		t.Fatal("a leased delivery was claimed again")
	}
	d, err := s.ClaimBackchannelLogouts(ctx, now.Add(2*time.Minute), time.Minute, 10)
	if err != nil || len(d) != 1 {
		t.Fatalf("after the lease: %v, %v", d, err)
	}
	// A failed attempt waits for its next time.
	if err := s.RetryBackchannelLogout(ctx, d[0], now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.ClaimBackchannelLogouts(ctx, now.Add(3*time.Minute), time.Minute, 10); len(d) != 0 {
		t.Fatal("a delivery was claimed before its retry time")
	}
	d, err = s.ClaimBackchannelLogouts(ctx, now.Add(time.Hour), time.Minute, 10)
	if err != nil || len(d) != 1 || d[0].Attempts != 1 {
		t.Fatalf("at the retry time: %+v, %v", d, err)
	}
	if err := s.DeleteBackchannelLogout(ctx, d[0]); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.ClaimBackchannelLogouts(ctx, now.Add(48*time.Hour), time.Minute, 10); len(d) != 0 {
		t.Fatal("a delivered logout is still queued")
	}
}

// testRotateOAuthRequest: rotation once, then a second use only within the
// grace period.
func testRotateOAuthRequest(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	r := newRequest(storage.KindRefreshToken, "rt-rotating", "req-rotating", "app", now.Add(time.Hour))
	if err := s.CreateOAuthRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateOAuthRequest(ctx, storage.KindRefreshToken, "rt-rotating", now, time.Time{}); err != nil {
		t.Fatalf("first rotation: %v", err)
	}
	got, err := s.GetOAuthRequest(ctx, storage.KindRefreshToken, "rt-rotating")
	if err != nil || got.Active || !got.RotatedAt.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("after rotation: active %v, rotated at %v, %v", got.Active, got.RotatedAt, err)
	}
	if err := s.RotateOAuthRequest(ctx, storage.KindRefreshToken, "rt-rotating", now.Add(time.Second), time.Time{}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second use, strict = %v", err)
	}
	if err := s.RotateOAuthRequest(ctx, storage.KindRefreshToken, "rt-rotating", now.Add(time.Second), now.Add(-30*time.Second)); err != nil {
		t.Fatalf("second use within the grace period = %v", err)
	}
	if err := s.RotateOAuthRequest(ctx, storage.KindRefreshToken, "rt-rotating", now.Add(time.Minute), now.Add(30*time.Second)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second use after the grace period = %v", err)
	}
	if err := s.RotateOAuthRequest(ctx, storage.KindRefreshToken, "rt-missing", now, now.Add(-time.Hour)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("rotating a missing token = %v", err)
	}
}
