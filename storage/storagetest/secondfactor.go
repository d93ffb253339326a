package storagetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tonearm-idp/tonearm/storage"
)

func secondFactorCases() []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"TOTPOnTheUser", testTOTPOnTheUser},
		{"RecoveryCodes", testRecoveryCodes},
		{"RecoveryCodeRace", testRecoveryCodeRace},
	}
}

func testTOTPOnTheUser(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("otp")
	mustCreate(t, s, u)
	if got, _ := s.GetUser(ctx, u.ID); got.TOTPSecret != nil || got.TOTPLastStep != 0 {
		t.Fatalf("a new user has TOTP: %+v", got)
	}
	if _, err := s.UpdateUser(ctx, u.ID, func(x storage.User) (storage.User, error) {
		x.TOTPSecret, x.TOTPLastStep = []byte{0, 1, 0xfe}, 60_000_000
		return x, nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetUser(ctx, u.ID)
	if !bytes.Equal(got.TOTPSecret, []byte{0, 1, 0xfe}) || got.TOTPLastStep != 60_000_000 {
		t.Fatalf("after enrolment: %x %d", got.TOTPSecret, got.TOTPLastStep)
	}
	if _, err := s.UpdateUser(ctx, u.ID, func(x storage.User) (storage.User, error) {
		x.TOTPSecret, x.TOTPLastStep = nil, 0
		return x, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetUser(ctx, u.ID); got.TOTPSecret != nil {
		t.Fatalf("after removal: %x", got.TOTPSecret)
	}
}

func testRecoveryCodes(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u, v := newUser("recoverer"), newUser("neighbour")
	mustCreate(t, s, u)
	mustCreate(t, s, v)
	if err := s.ReplaceRecoveryCodes(ctx, "ghost", [][]byte{{1}}, now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("codes for a missing user: %v", err)
	}
	if err := s.ReplaceRecoveryCodes(ctx, u.ID, [][]byte{{1}, {2}, {3}}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceRecoveryCodes(ctx, v.ID, [][]byte{{1}}, now); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountRecoveryCodes(ctx, u.ID); err != nil || n != 3 {
		t.Fatalf("count = %d, %v", n, err)
	}
	if err := s.UseRecoveryCode(ctx, u.ID, []byte{2}); err != nil {
		t.Fatal(err)
	}
	if err := s.UseRecoveryCode(ctx, u.ID, []byte{2}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a code used twice: %v", err)
	}
	if err := s.UseRecoveryCode(ctx, u.ID, []byte{9}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an unknown code: %v", err)
	}
	if n, _ := s.CountRecoveryCodes(ctx, u.ID); n != 2 {
		t.Fatalf("count after a use = %d", n)
	}
	// Regeneration replaces them all.
	if err := s.ReplaceRecoveryCodes(ctx, u.ID, [][]byte{{7}}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.UseRecoveryCode(ctx, u.ID, []byte{1}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an old code after regeneration: %v", err)
	}
	if err := s.ReplaceRecoveryCodes(ctx, u.ID, nil, now); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountRecoveryCodes(ctx, u.ID); n != 0 {
		t.Fatalf("count after clearing = %d", n)
	}
	// The neighbour's code is theirs alone, and goes with them.
	if n, _ := s.CountRecoveryCodes(ctx, v.ID); n != 1 {
		t.Fatalf("neighbour's count = %d", n)
	}
	if err := s.DeleteUser(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountRecoveryCodes(ctx, v.ID); n != 0 {
		t.Fatalf("a deleted user's codes: %d", n)
	}
}

func testRecoveryCodeRace(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("racer")
	mustCreate(t, s, u)
	if err := s.ReplaceRecoveryCodes(ctx, u.ID, [][]byte{{5}}, now); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.UseRecoveryCode(ctx, u.ID, []byte{5}) == nil {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent uses of one code succeeded", wins.Load())
	}
}
