package seal

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	secret := bytes.Repeat([]byte("s"), 32)
	box, err := New(DeriveKey(secret, "test"))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("listenbrainz-token-1234")
	a, err := box.Seal(msg, "user-1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := box.Seal(msg, "user-1")
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
	if bytes.Contains(a, msg) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := box.Open(a, "user-1")
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := box.Open(a, "user-2"); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open with another context = %v, want ErrOpen", err)
	}
	tampered := append([]byte(nil), a...)
	tampered[len(tampered)-1] ^= 1
	if _, err := box.Open(tampered, "user-1"); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open(tampered) = %v, want ErrOpen", err)
	}
	other, _ := New(DeriveKey(secret, "other purpose"))
	if _, err := other.Open(a, "user-1"); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open with another purpose's key = %v, want ErrOpen", err)
	}
	for _, short := range [][]byte{nil, {1}, a[:10]} {
		if _, err := box.Open(short, "user-1"); !errors.Is(err, ErrOpen) {
			t.Fatalf("Open(%d bytes) = %v, want ErrOpen", len(short), err)
		}
	}
}

func TestNewRejectsShortKey(t *testing.T) {
	if _, err := New(make([]byte, 16)); err == nil {
		t.Fatal("New accepted a 16-byte key")
	}
}

// A rotated master secret: the new box opens what the old one sealed,
// Reseal moves it to the new key once, and then the new key alone opens it.
func TestRotation(t *testing.T) {
	oldKey := DeriveKey(bytes.Repeat([]byte("a"), 32), "test")
	newKey := DeriveKey(bytes.Repeat([]byte("b"), 32), "test")
	oldBox, _ := New(oldKey)
	sealed, _ := oldBox.Seal([]byte("totp key"), "user-1")
	alone, _ := New(newKey)
	if _, err := alone.Open(sealed, "user-1"); !errors.Is(err, ErrOpen) {
		t.Fatalf("new key alone opened the old value: %v", err)
	}
	ring, err := New(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ring.Open(sealed, "user-1"); err != nil || string(got) != "totp key" {
		t.Fatalf("Open with the previous key = %q, %v", got, err)
	}
	moved, changed, err := ring.Reseal(sealed, "user-1")
	if err != nil || !changed {
		t.Fatalf("Reseal = %v, %v; want changed", changed, err)
	}
	if got, err := alone.Open(moved, "user-1"); err != nil || string(got) != "totp key" {
		t.Fatalf("new key alone after Reseal = %q, %v", got, err)
	}
	again, changed, err := ring.Reseal(moved, "user-1")
	if err != nil || changed || !bytes.Equal(again, moved) {
		t.Fatalf("second Reseal changed=%v err=%v", changed, err)
	}
	stranger, _ := New(DeriveKey(bytes.Repeat([]byte("c"), 32), "test"))
	foreign, _ := stranger.Seal([]byte("x"), "user-1")
	if _, _, err := ring.Reseal(foreign, "user-1"); !errors.Is(err, ErrOpen) {
		t.Fatalf("Reseal of a value sealed under an unknown secret = %v, want ErrOpen", err)
	}
	if _, err := New(newKey, []byte("short")); err == nil {
		t.Fatal("New accepted a short previous key")
	}
}
