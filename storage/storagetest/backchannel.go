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
		{"BackchannelQueueKeepsOfflineAccess", testBackchannelQueueKeepsOfflineAccess},
		{"RevokeUserSessionTokens", testRevokeUserSessionTokens},
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

// refreshIn stores a refresh token (always offline_access) of client for
// user-1 issued in session sid.
func refreshIn(t *testing.T, s storage.Storage, sig, client, sid string) {
	t.Helper()
	r := newRequest(storage.KindRefreshToken, sig, "req-"+sig, client, now.Add(time.Hour))
	r.SID = sid
	if err := s.CreateOAuthRequest(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// refreshSID reports the session a stored refresh token names, failing
// when it is gone.
func refreshSID(t *testing.T, s storage.Storage, sig string) string {
	t.Helper()
	r, err := s.GetOAuthRequest(context.Background(), storage.KindRefreshToken, sig)
	if err != nil {
		t.Fatalf("refresh token %s: %v", sig, err)
	}
	return r.SID
}

// testBackchannelQueueKeepsOfflineAccess: ending a session revokes a
// listening client's codes and access tokens from it but keeps its refresh
// tokens, which only offline_access gets (Back-Channel Logout 1.0 §2.7);
// they no longer name the ended session, so a later logout of every
// session does not tell the client about it again.
func testBackchannelQueueKeepsOfflineAccess(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	c := newClient("syncer")
	c.BackchannelLogoutURI = "https://syncer.example/logout"
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	tokenIn(t, s, "s-a", "syncer", "sid-a")
	refreshIn(t, s, "sr-a", "syncer", "sid-a")
	refreshIn(t, s, "sr-b", "syncer", "sid-b")
	code := newRequest(storage.KindAuthorizeCode, "sc-a", "req-sc-a", "syncer", now.Add(time.Minute))
	code.SID = "sid-a"
	if err := s.CreateOAuthRequest(ctx, code); err != nil {
		t.Fatal(err)
	}
	if n, err := s.QueueBackchannelLogouts(ctx, "user-1", []string{"sid-a"}, now); err != nil || n != 1 {
		t.Fatalf("QueueBackchannelLogouts(sid-a) = %d, %v", n, err)
	}
	if alive(t, s, "s-a") {
		t.Fatal("the access token from the ended session survived")
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindAuthorizeCode, "sc-a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the code from the ended session = %v, want gone", err)
	}
	if sid := refreshSID(t, s, "sr-a"); sid != "" {
		t.Fatalf("the kept refresh token still names the ended session %q", sid)
	}
	if sid := refreshSID(t, s, "sr-b"); sid != "sid-b" {
		t.Fatalf("another session's refresh token names %q", sid)
	}
	// sid-a's logout is delivered; ending every session then tells the
	// client of sid-b only.
	due, err := s.ClaimBackchannelLogouts(ctx, now, time.Minute, 10)
	if err != nil || len(due) != 1 || due[0].SID != "sid-a" {
		t.Fatalf("claimed %+v, %v; want sid-a", due, err)
	}
	if err := s.DeleteBackchannelLogout(ctx, due[0]); err != nil {
		t.Fatal(err)
	}
	if n, err := s.QueueBackchannelLogouts(ctx, "user-1", nil, now); err != nil || n != 1 {
		t.Fatalf("QueueBackchannelLogouts(all) = %d, %v; want sid-b only", n, err)
	}
	due, err = s.ClaimBackchannelLogouts(ctx, now, time.Minute, 10)
	if err != nil || len(due) != 1 || due[0].SID != "sid-b" {
		t.Fatalf("claimed %+v, %v; want sid-b only", due, err)
	}
	refreshSID(t, s, "sr-a")
	refreshSID(t, s, "sr-b")
}

// testRevokeUserSessionTokens: a sign-out of every session takes every
// app's codes and access tokens of the user and leaves the refresh tokens
// (offline_access) and other users' tokens.
func testRevokeUserSessionTokens(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for _, id := range []string{"web", "device"} {
		if err := s.CreateClient(ctx, newClient(id)); err != nil {
			t.Fatal(err)
		}
	}
	tokenIn(t, s, "a-web", "web", "sid-1")
	tokenIn(t, s, "a-device", "device", "")
	refreshIn(t, s, "r-web", "web", "sid-1")
	refreshIn(t, s, "r-device", "device", "")
	code := newRequest(storage.KindAuthorizeCode, "c-web", "req-c-web", "web", now.Add(time.Minute))
	theirs := newRequest(storage.KindAccessToken, "a-theirs", "req-theirs", "web", now.Add(time.Hour))
	theirs.Subject = "someone-else"
	for _, r := range []storage.OAuthRequest{code, theirs} {
		if err := s.CreateOAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.RevokeUserSessionTokens(ctx, "user-1")
	if err != nil || n != 3 {
		t.Fatalf("RevokeUserSessionTokens = %d, %v; want 3 (two access tokens and a code)", n, err)
	}
	if alive(t, s, "a-web") || alive(t, s, "a-device") || !alive(t, s, "a-theirs") {
		t.Fatal("RevokeUserSessionTokens took the wrong access tokens")
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindAuthorizeCode, "c-web"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the code = %v, want gone", err)
	}
	refreshSID(t, s, "r-web")
	refreshSID(t, s, "r-device")
	if n, err := s.RevokeUserSessionTokens(ctx, ""); err != nil || n != 0 {
		t.Fatalf("RevokeUserSessionTokens(\"\") = %d, %v", n, err)
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
