package storagetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

func usedJTICases() []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"UseOnceRefusesASecondUseUntilExpiry", testUseOnce},
		{"UseOnceConcurrentExactlyOne", testUseOnceConcurrent},
	}
}

func testUseOnce(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	exp := now.Add(time.Minute)
	if err := s.UseOnce(ctx, "assertion:app:j1", now, exp); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := s.UseOnce(ctx, "assertion:app:j1", now.Add(59*time.Second), exp); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("second use before expiry = %v, want ErrAlreadyExists", err)
	}
	// Another kind or client is another key.
	if err := s.UseOnce(ctx, "assertion:other:j1", now, exp); err != nil {
		t.Fatalf("other client's jti: %v", err)
	}
	// Once expired, the key may be recorded again (its JWT is refused as
	// expired anyway; the row is merely taken over).
	if err := s.UseOnce(ctx, "assertion:app:j1", exp.Add(time.Second), exp.Add(time.Hour)); err != nil {
		t.Fatalf("use after expiry: %v", err)
	}
	if err := s.UseOnce(ctx, "assertion:app:j1", exp.Add(2*time.Second), exp.Add(time.Hour)); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("replay of the renewed key = %v", err)
	}
	if n, err := s.DeleteExpiredUses(ctx, exp.Add(time.Second), 10); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredUses = %d, %v; want the other client's expired row", n, err)
	}
	if n, err := s.DeleteExpiredUses(ctx, exp.Add(2*time.Hour), 0); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredUses limit 0 = %d, %v", n, err)
	}
	if n, err := s.DeleteExpiredUses(ctx, exp.Add(2*time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredUses = %d, %v", n, err)
	}
}

func testUseOnceConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var ok, seen atomic.Int32
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.UseOnce(ctx, "request:app:same", now, now.Add(time.Minute))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, storage.ErrAlreadyExists):
				seen.Add(1)
			default:
				t.Errorf("UseOnce: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || seen.Load() != 15 {
		t.Fatalf("%d succeeded, %d refused; want exactly one success", ok.Load(), seen.Load())
	}
}
