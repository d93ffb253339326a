package accounts

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
)

var testParams = HashParams{Memory: 64, Time: 1, Threads: 1}

func TestHashVerify(t *testing.T) {
	h := NewHasher(testParams, 2, 10)
	ctx := context.Background()
	hash, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(hash, "correct horse") || !strings.HasPrefix(hash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q: want a PHC argon2id string without the password", hash)
	}
	again, _ := h.Hash(ctx, "correct horse")
	if again == hash {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	if ok, stale, err := h.Verify(ctx, hash, "correct horse"); !ok || stale || err != nil {
		t.Fatalf("Verify(right) = %v, %v, %v", ok, stale, err)
	}
	if ok, _, err := h.Verify(ctx, hash, "correct horsE"); ok || err != nil {
		t.Fatalf("Verify(wrong) = %v, %v", ok, err)
	}
	// Empty stored hash (unknown user) never matches, whatever the password.
	if ok, _, err := h.Verify(ctx, "", "tonearm dummy password"); ok || err != nil {
		t.Fatalf("Verify(unknown user) = %v, %v", ok, err)
	}
	// A hash made with other parameters still verifies and is reported stale.
	stronger := NewHasher(HashParams{Memory: 128, Time: 2, Threads: 1}, 1, 0)
	if ok, stale, err := stronger.Verify(ctx, hash, "correct horse"); !ok || !stale || err != nil {
		t.Fatalf("Verify(old params) = %v, stale %v, %v", ok, stale, err)
	}
}

func TestVerifyMalformedHash(t *testing.T) {
	h := NewHasher(testParams, 1, 0)
	for _, bad := range []string{
		"plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", // 95 GiB: refused
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$",
	} {
		if ok, _, err := h.Verify(context.Background(), bad, "password"); ok || !errors.Is(err, errBadHash) {
			t.Errorf("Verify(%q) = %v, %v; want errBadHash", bad, ok, err)
		}
	}
}

func TestHasherBoundsQueue(t *testing.T) {
	h := NewHasher(testParams, 1, 1)
	release1, err := h.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// One running, one waiting: the third caller is refused at once.
	waitCtx, cancel := context.WithCancel(context.Background())
	waited := make(chan error, 1)
	go func() {
		r, err := h.acquire(waitCtx)
		if err == nil {
			r()
		}
		waited <- err
	}()
	for len(h.waiting) < 2 { // the goroutine has queued
		runtime.Gosched()
	}
	if _, err := h.Hash(context.Background(), "password1"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Hash with a full queue = %v, want ErrBusy", err)
	}
	cancel()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Fatalf("queued acquire after cancel = %v, want context.Canceled", err)
	}
	release1()
	if _, err := h.Hash(context.Background(), "password1"); err != nil {
		t.Fatalf("Hash after release: %v", err)
	}
}

// BenchmarkHashDefault measures one argon2id hash with the production
// parameters: the ceiling for password logins per core.
func BenchmarkHashDefault(b *testing.B) {
	h := NewHasher(DefaultHashParams, 0, 1<<20)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
