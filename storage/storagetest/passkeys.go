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

func passkeyCases() []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"Passkeys", testPasskeys},
		{"PasskeyCounterRace", testPasskeyCounterRace},
		{"PasskeyChallenges", testPasskeyChallenges},
		{"PasskeyOnlyAndAMR", testPasskeyOnlyAndAMR},
	}
}

func newPasskey(userID string, id byte) storage.Passkey {
	return storage.Passkey{
		ID: []byte{0xc0, id, 0, 0xff}, UserID: userID, Name: "Laptop", PublicKey: []byte{0xa5, 1, 2, 3, id},
		SignCount: 3, AAGUID: make([]byte, 16), Transports: []string{"internal", "hybrid"}, AttestationType: "none",
		BackupEligible: true, CreatedAt: now.Add(time.Duration(id) * time.Second),
	}
}

func testPasskeys(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u, v := newUser("keyholder"), newUser("neighbour")
	mustCreate(t, s, u)
	mustCreate(t, s, v)
	p := newPasskey(u.ID, 1)
	if err := s.CreatePasskey(ctx, p); err != nil {
		t.Fatal(err)
	}
	dup := newPasskey(v.ID, 1) // the same credential ID for someone else
	if err := s.CreatePasskey(ctx, dup); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicate credential ID = %v", err)
	}
	if err := s.CreatePasskey(ctx, newPasskey("no-such-user", 9)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("missing user = %v", err)
	}
	second := newPasskey(u.ID, 2)
	second.Transports = nil
	second.BackupEligible = false
	if err := s.CreatePasskey(ctx, second); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetPasskey(ctx, p.ID)
	want := p
	want.CreatedAt = p.CreatedAt.UTC().Truncate(time.Microsecond)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("GetPasskey = %+v, %v; want %+v", got, err, want)
	}
	if _, err := s.GetPasskey(ctx, []byte("nope")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown passkey = %v", err)
	}
	list, err := s.ListPasskeys(ctx, u.ID)
	if err != nil || len(list) != 2 || !reflect.DeepEqual(list[0].ID, p.ID) || !reflect.DeepEqual(list[1].ID, second.ID) || len(list[1].Transports) != 0 {
		t.Fatalf("ListPasskeys = %+v, %v", list, err)
	}
	if list, err := s.ListPasskeys(ctx, v.ID); err != nil || len(list) != 0 {
		t.Fatalf("ListPasskeys(other) = %+v, %v", list, err)
	}
	passkeyCounter(t, s, u, p)
	passkeyOwnership(t, s, u, v, p)
}

// passkeyCounter: the signature counter moves forward only (WebAuthn §6.1.1),
// except for authenticators that report none (0 every time). It adds a
// third passkey to u.
func passkeyCounter(t *testing.T, s storage.Storage, u storage.User, p storage.Passkey) {
	ctx := context.Background()
	at := now.Add(time.Hour)
	if err := s.UsePasskey(ctx, p.ID, 3, true, at); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("same counter = %v", err)
	}
	if err := s.UsePasskey(ctx, p.ID, 2, true, at); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("counter going back = %v", err)
	}
	if err := s.UsePasskey(ctx, p.ID, 0, true, at); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("counter dropping to 0 = %v", err)
	}
	if got, _ := s.GetPasskey(ctx, p.ID); got.SignCount != 3 || !got.LastUsedAt.IsZero() || got.BackupState {
		t.Fatalf("a refused use changed the passkey: %+v", got)
	}
	if err := s.UsePasskey(ctx, p.ID, 4, true, at); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetPasskey(ctx, p.ID); got.SignCount != 4 || !got.LastUsedAt.Equal(at.UTC().Truncate(time.Microsecond)) || !got.BackupState {
		t.Fatalf("after a use: %+v", got)
	}
	// Authenticators without a counter report 0 every time.
	zero := newPasskey(u.ID, 3)
	zero.SignCount = 0
	if err := s.CreatePasskey(ctx, zero); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.UsePasskey(ctx, zero.ID, 0, false, at); err != nil {
			t.Fatalf("counter-less use = %v", err)
		}
	}
	if err := s.UsePasskey(ctx, []byte("nope"), 5, false, at); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown passkey use = %v", err)
	}
}

// passkeyOwnership: a passkey is renamed and deleted only by its owner, and
// goes with them.
func passkeyOwnership(t *testing.T, s storage.Storage, u, v storage.User, p storage.Passkey) {
	ctx := context.Background()
	if err := s.RenamePasskey(ctx, v.ID, p.ID, "Stolen"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("renaming someone else's = %v", err)
	}
	if err := s.RenamePasskey(ctx, u.ID, p.ID, "Work laptop"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetPasskey(ctx, p.ID); got.Name != "Work laptop" {
		t.Fatalf("renamed = %q", got.Name)
	}
	if err := s.DeletePasskey(ctx, v.ID, p.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleting someone else's = %v", err)
	}
	if err := s.DeletePasskey(ctx, u.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePasskey(ctx, u.ID, p.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleting twice = %v", err)
	}
	if n, err := s.DeleteUserPasskeys(ctx, u.ID); err != nil || n != 2 {
		t.Fatalf("DeleteUserPasskeys = %d, %v", n, err)
	}
	// Deleting a user takes their passkeys.
	if err := s.CreatePasskey(ctx, newPasskey(v.ID, 4)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPasskey(ctx, newPasskey(v.ID, 4).ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a deleted user's passkey = %v", err)
	}
}

// testPasskeyCounterRace: two sign-ins presenting the same counter value
// (a cloned authenticator, or one assertion replayed) — one wins.
func testPasskeyCounterRace(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("racer")
	mustCreate(t, s, u)
	p := newPasskey(u.ID, 1)
	if err := s.CreatePasskey(ctx, p); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.UsePasskey(ctx, p.ID, 10, false, now)
		}()
	}
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, storage.ErrNotFound):
			t.Fatalf("UsePasskey = %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d uses of one counter value succeeded, want 1", won, n)
	}
}

func testPasskeyChallenges(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	c := storage.PasskeyChallenge{ChallengeHash: []byte{1, 2, 3}, UserID: "someone", Data: []byte(`{"challenge":"x"}`), ExpiresAt: now.Add(5 * time.Minute)}
	if err := s.CreatePasskeyChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePasskeyChallenge(ctx, c); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicate = %v", err)
	}
	if _, err := s.ConsumePasskeyChallenge(ctx, []byte{9}, now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown = %v", err)
	}
	// Concurrent consumers: one gets it.
	const n = 6
	var wg sync.WaitGroup
	got := make(chan storage.PasskeyChallenge, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g, err := s.ConsumePasskeyChallenge(ctx, c.ChallengeHash, now)
			if err == nil {
				got <- g
			} else if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("ConsumePasskeyChallenge = %v", err)
			}
		}()
	}
	wg.Wait()
	close(got)
	if len(got) != 1 {
		t.Fatalf("%d consumers got the challenge, want 1", len(got))
	}
	if g := <-got; g.UserID != "someone" || string(g.Data) != string(c.Data) || !g.ExpiresAt.Equal(c.ExpiresAt.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("consumed = %+v", g)
	}
	// Expired: refused, then swept.
	old := storage.PasskeyChallenge{ChallengeHash: []byte{4}, Data: []byte("{}"), ExpiresAt: now.Add(time.Minute)}
	if err := s.CreatePasskeyChallenge(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumePasskeyChallenge(ctx, old.ChallengeHash, now.Add(time.Minute)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("expired = %v", err)
	}
	live := storage.PasskeyChallenge{ChallengeHash: []byte{5}, Data: []byte("{}"), ExpiresAt: now.Add(time.Hour)}
	if err := s.CreatePasskeyChallenge(ctx, live); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteExpiredPasskeyChallenges(ctx, now.Add(2*time.Minute), 10); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredPasskeyChallenges = %d, %v", n, err)
	}
	if _, err := s.ConsumePasskeyChallenge(ctx, live.ChallengeHash, now); err != nil {
		t.Fatalf("a live challenge was swept: %v", err)
	}
}

func testPasskeyOnlyAndAMR(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("passwordless")
	mustCreate(t, s, u)
	got, err := s.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.PasskeyOnly, u.PasswordHash = true, ""
		return u, nil
	})
	if err != nil || !got.PasskeyOnly || got.PasswordHash != "" {
		t.Fatalf("UpdateUser = %+v, %v", got, err)
	}
	if got, _ := s.GetUser(ctx, u.ID); !got.PasskeyOnly {
		t.Fatal("passkey-only was not stored")
	}
	sess := newSession(u.ID, now.Add(time.Hour))
	sess.AMR = "hwk"
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetSession(ctx, sess.IDHash); err != nil || got.AMR != "hwk" {
		t.Fatalf("session amr = %q, %v", got.AMR, err)
	}
}
