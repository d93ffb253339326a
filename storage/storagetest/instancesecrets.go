package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

func instanceSecretCases() []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"EnsureInstanceSecretKeepsTheFirst", testEnsureInstanceSecret},
		{"EnsureInstanceSecretConcurrentOneValue", testEnsureInstanceSecretConcurrent},
		{"GetSessionBySID", testGetSessionBySID},
	}
}

// testEnsureInstanceSecret: the first value stored under a name is the one
// every later call gets; another name is another value.
func testEnsureInstanceSecret(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	got, err := s.EnsureInstanceSecret(ctx, "pairwise", []byte("first"))
	if err != nil || string(got) != "first" {
		t.Fatalf("first EnsureInstanceSecret = %q, %v", got, err)
	}
	if got, err := s.EnsureInstanceSecret(ctx, "pairwise", []byte("second")); err != nil || string(got) != "first" {
		t.Fatalf("second EnsureInstanceSecret = %q, %v; want the first value kept", got, err)
	}
	if got, err := s.EnsureInstanceSecret(ctx, "other", []byte("x")); err != nil || string(got) != "x" {
		t.Fatalf("another name = %q, %v", got, err)
	}
	if _, err := s.EnsureInstanceSecret(ctx, "empty", nil); err == nil {
		t.Fatal("EnsureInstanceSecret stored an empty value")
	}
}

// testEnsureInstanceSecretConcurrent: replicas starting together on an
// empty database all end with the same value.
func testEnsureInstanceSecretConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.EnsureInstanceSecret(ctx, "race", []byte(fmt.Sprintf("value-%d", i)))
			if err != nil {
				t.Errorf("EnsureInstanceSecret: %v", err)
			}
			got[i] = v
		}()
	}
	wg.Wait()
	for _, v := range got[1:] {
		if !bytes.Equal(v, got[0]) || len(v) == 0 {
			t.Fatalf("concurrent EnsureInstanceSecret gave different values: %q", got)
		}
	}
}

// testGetSessionBySID: a session is found by its sid, an unknown or empty
// sid is ErrNotFound.
func testGetSessionBySID(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("sidder")
	mustCreate(t, s, u)
	sess := newSession(u.ID, now.Add(time.Hour))
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSessionBySID(ctx, sess.SID)
	if err != nil || got.UserID != u.ID || !bytes.Equal(got.IDHash, sess.IDHash) {
		t.Fatalf("GetSessionBySID = %+v, %v", got, err)
	}
	for _, sid := range []string{"", "sid-unknown"} {
		if _, err := s.GetSessionBySID(ctx, sid); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetSessionBySID(%q) = %v, want ErrNotFound", sid, err)
		}
	}
}
