package storagetest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

func deviceCases() []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"DeviceCodes", testDeviceCodes},
		{"DeviceCodePollsAtOnce", testDeviceCodePollsAtOnce},
	}
}

func newDeviceCode(id byte, expires time.Time) storage.DeviceCode {
	return storage.DeviceCode{
		DeviceCodeHash: []byte{'d', id}, UserCodeHash: []byte{'u', id}, ClientID: "tv-app",
		Scopes: []string{"openid", "listens:read"}, Resources: []string{"https://api.example.org/listens"},
		RequestedAt: now, ExpiresAt: expires, Interval: 5 * time.Second,
	}
}

func testDeviceCodes(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	if err := s.CreateClient(ctx, newClient("tv-app")); err != nil {
		t.Fatal(err)
	}
	u := newUser("couch")
	mustCreate(t, s, u)
	d := newDeviceCode(1, now.Add(10*time.Minute))
	if err := s.CreateDeviceCode(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDeviceCode(ctx, d); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicate = %v", err)
	}
	other := newDeviceCode(2, now.Add(10*time.Minute))
	other.UserCodeHash = d.UserCodeHash
	if err := s.CreateDeviceCode(ctx, other); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("a taken user code = %v", err)
	}
	orphan := newDeviceCode(3, now.Add(time.Minute))
	orphan.ClientID = "no-such-client"
	if err := s.CreateDeviceCode(ctx, orphan); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown client = %v", err)
	}
	got, err := s.GetDeviceCodeByUserCode(ctx, d.UserCodeHash)
	if err != nil || got.Status != storage.DevicePending || got.ClientID != "tv-app" || !reflect.DeepEqual(got.Scopes, d.Scopes) ||
		!reflect.DeepEqual(got.Resources, d.Resources) || got.Interval != 5*time.Second || !got.LastPolledAt.IsZero() ||
		!got.ExpiresAt.Equal(d.ExpiresAt.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("GetDeviceCodeByUserCode = %+v, %v", got, err)
	}
	if _, err := s.GetDeviceCodeByUserCode(ctx, []byte("nope")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown user code = %v", err)
	}

	// Polls: the first is on time; one within the interval is too fast
	// and adds 5 s; one after the new interval is on time again.
	p, fast, err := s.PollDeviceCode(ctx, d.DeviceCodeHash, now)
	if err != nil || fast || p.Status != storage.DevicePending {
		t.Fatalf("first poll = %+v, %v, %v", p, fast, err)
	}
	if p, fast, err = s.PollDeviceCode(ctx, d.DeviceCodeHash, now.Add(2*time.Second)); err != nil || !fast || p.Interval != 10*time.Second {
		t.Fatalf("fast poll = %+v, %v, %v", p, fast, err)
	}
	if p, fast, err = s.PollDeviceCode(ctx, d.DeviceCodeHash, now.Add(13*time.Second)); err != nil || fast || p.Interval != 10*time.Second {
		t.Fatalf("poll after the interval = %+v, %v, %v", p, fast, err)
	}
	if _, _, err := s.PollDeviceCode(ctx, []byte("nope"), now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown device code = %v", err)
	}

	// Only approved codes are consumed, once.
	if err := s.ConsumeDeviceCode(ctx, d.DeviceCodeHash); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("consuming a pending code = %v", err)
	}
	authTime := now.Add(-time.Minute)
	if err := s.DecideDeviceCode(ctx, d.UserCodeHash, u.ID, []string{"openid"}, authTime, []string{"pwd", "otp", "mfa"}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.DecideDeviceCode(ctx, d.UserCodeHash, "", nil, time.Time{}, nil, now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a second decision = %v", err)
	}
	if got, _ := s.GetDeviceCodeByUserCode(ctx, d.UserCodeHash); got.Status != storage.DeviceApproved || got.UserID != u.ID ||
		!reflect.DeepEqual(got.GrantedScopes, []string{"openid"}) || !got.AuthTime.Equal(authTime.UTC().Truncate(time.Microsecond)) ||
		!reflect.DeepEqual(got.AMR, []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("approved = %+v", got)
	}
	if err := s.ConsumeDeviceCode(ctx, d.DeviceCodeHash); err != nil {
		t.Fatal(err)
	}
	if err := s.ConsumeDeviceCode(ctx, d.DeviceCodeHash); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("consumed twice = %v", err)
	}

	// Denied; and expired codes take no decision and are swept.
	denied := newDeviceCode(4, now.Add(10*time.Minute))
	expired := newDeviceCode(5, now.Add(-time.Second))
	for _, x := range []storage.DeviceCode{denied, expired} {
		if err := s.CreateDeviceCode(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DecideDeviceCode(ctx, denied.UserCodeHash, "", nil, time.Time{}, nil, now); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetDeviceCodeByUserCode(ctx, denied.UserCodeHash); got.Status != storage.DeviceDenied || got.UserID != "" {
		t.Fatalf("denied = %+v", got)
	}
	if err := s.DecideDeviceCode(ctx, expired.UserCodeHash, u.ID, []string{"openid"}, now, nil, now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deciding an expired code = %v", err)
	}
	if n, err := s.DeleteExpiredDeviceCodes(ctx, now, 100); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredDeviceCodes = %d, %v", n, err)
	}
	if _, err := s.GetDeviceCodeByUserCode(ctx, expired.UserCodeHash); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the expired code survived: %v", err)
	}
}

// testDeviceCodePollsAtOnce: of polls arriving together, at most one is on
// time (a device cannot poll faster by polling in parallel).
func testDeviceCodePollsAtOnce(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	if err := s.CreateClient(ctx, newClient("tv-app")); err != nil {
		t.Fatal(err)
	}
	d := newDeviceCode(9, now.Add(10*time.Minute))
	if err := s.CreateDeviceCode(ctx, d); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	onTime := 0
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, fast, err := s.PollDeviceCode(ctx, d.DeviceCodeHash, now)
			if err != nil {
				t.Error(err)
				return
			}
			if !fast {
				mu.Lock()
				onTime++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if onTime != 1 {
		t.Fatalf("%d of 8 simultaneous polls were on time, want 1", onTime)
	}
}
