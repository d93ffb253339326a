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
