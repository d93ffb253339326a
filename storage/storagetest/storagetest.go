// Package storagetest is the one conformance suite for storage.Storage. Every
// backend runs it (see storage/sqlstore), so a behaviour is specified once and
// holds on every database.
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

// NewStore returns an empty, migrated store for one test. The backend closes
// it in t.Cleanup.
type NewStore func(t *testing.T) storage.Storage

// Run runs every conformance case against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"UserRoundTrip", testUserRoundTrip},
		{"UserNotFound", testUserNotFound},
		{"UsernameCaseInsensitiveUnique", testUsernameUnique},
		{"DuplicateUserID", testDuplicateUserID},
		{"UpdateUser", testUpdateUser},
		{"UpdateUserErrorWritesNothing", testUpdateUserError},
		{"UpdateUserRenameClash", testUpdateUserRenameClash},
		{"SessionRoundTrip", testSessionRoundTrip},
		{"SessionForMissingUser", testSessionForMissingUser},
		{"DeleteUserSessions", testDeleteUserSessions},
		{"DeleteExpiredSessions", testDeleteExpiredSessions},
		{"ConcurrentCreateSameUsername", testConcurrentCreate},
		{"ConcurrentUpdatesSerialise", testConcurrentUpdates},
		{"ConcurrentUpdatesEveryKind", testConcurrentUpdatesEveryKind},
		{"Transactions", testTransactions},
		{"Ping", func(t *testing.T, s storage.Storage) {
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
	}
	cases = append(cases, oauthCases()...)
	cases = append(cases, accountCases()...)
	cases = append(cases, loginFailureCases()...)
	cases = append(cases, apiCases()...)
	cases = append(cases, backchannelCases()...)
	cases = append(cases, eventCases()...)
	cases = append(cases, pageCases()...)
	cases = append(cases, deviceCases()...)
	cases = append(cases, passkeyCases()...)
	cases = append(cases, connectorCases()...)
	cases = append(cases, secondFactorCases()...)
	cases = append(cases, developerAppCases()...)
	cases = append(cases, sealedCases()...)
	cases = append(cases, usedJTICases()...)
	cases = append(cases, instanceSecretCases()...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, newStore(t))
		})
	}
}

// now is a fixed instant with sub-microsecond noise that the store must drop.
var now = time.Date(2026, 11, 22, 10, 30, 15, 123456789, time.FixedZone("X", 3600))

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newUser(name string) storage.User {
	return storage.User{
		ID:           newID(),
		Username:     name,
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=1$c2FsdA$aGFzaA",
		Role:         storage.RoleUser,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
}

func mustCreate(t *testing.T, s storage.Storage, u storage.User) {
	t.Helper()
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser(%q): %v", u.Username, err)
	}
}

func equalUsers(a, b storage.User) bool {
	return a.ID == b.ID && a.Username == b.Username && a.PasswordHash == b.PasswordHash &&
		a.Role == b.Role && a.ListenBrainzName == b.ListenBrainzName && a.MusicBrainzName == b.MusicBrainzName &&
		bytes.Equal(a.ListenBrainzToken, b.ListenBrainzToken) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func testUserRoundTrip(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("Alice")
	u.ListenBrainzName = "alice_lb"
	u.MusicBrainzName = "alice_mb"
	u.ListenBrainzToken = []byte{0, 1, 2, 255}
	mustCreate(t, s, u)

	want := u
	want.CreatedAt = now.UTC().Truncate(time.Microsecond)
	want.UpdatedAt = want.CreatedAt
	got, err := s.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if !equalUsers(got, want) {
		t.Fatalf("GetUser = %+v, want %+v", got, want)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Fatalf("CreatedAt location = %v, want UTC", got.CreatedAt.Location())
	}
	for _, name := range []string{"Alice", "alice", "ALICE"} {
		got, err := s.GetUserByUsername(ctx, name)
		if err != nil {
			t.Fatalf("GetUserByUsername(%q): %v", name, err)
		}
		if !equalUsers(got, want) {
			t.Fatalf("GetUserByUsername(%q) = %+v, want %+v", name, got, want)
		}
	}
}

func testUserNotFound(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	if _, err := s.GetUser(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetUser(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.GetUserByUsername(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetUserByUsername(missing) = %v, want ErrNotFound", err)
	}
	_, err := s.UpdateUser(ctx, "missing", func(u storage.User) (storage.User, error) {
		t.Error("update called for a missing user")
		return u, nil
	})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UpdateUser(missing) = %v, want ErrNotFound", err)
	}
}

func testUsernameUnique(t *testing.T, s storage.Storage) {
	mustCreate(t, s, newUser("Alice"))
	for _, name := range []string{"Alice", "alice", "ALICE"} {
		err := s.CreateUser(context.Background(), newUser(name))
		if !errors.Is(err, storage.ErrAlreadyExists) {
			t.Fatalf("CreateUser(%q) = %v, want ErrAlreadyExists", name, err)
		}
	}
}

func testDuplicateUserID(t *testing.T, s storage.Storage) {
	u := newUser("first")
	mustCreate(t, s, u)
	dup := newUser("second")
	dup.ID = u.ID
	if err := s.CreateUser(context.Background(), dup); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("CreateUser(same ID) = %v, want ErrAlreadyExists", err)
	}
	if _, err := s.GetUserByUsername(context.Background(), "second"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("failed create left a row behind: %v", err)
	}
}

func testUpdateUser(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("bob")
	u.ListenBrainzName = "old"
	u.ListenBrainzToken = []byte("sealed")
	mustCreate(t, s, u)
	later := now.Add(time.Hour)
	got, err := s.UpdateUser(ctx, u.ID, func(old storage.User) (storage.User, error) {
		old.Username = "Bobby"
		old.Role = storage.RoleAdmin
		old.ListenBrainzName = ""
		old.ListenBrainzToken = nil
		old.UpdatedAt = later
		return old, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	read, err := s.GetUserByUsername(ctx, "bobby")
	if err != nil {
		t.Fatalf("GetUserByUsername after rename: %v", err)
	}
	if !equalUsers(got, read) {
		t.Fatalf("UpdateUser returned %+v, database holds %+v", got, read)
	}
	if read.Role != storage.RoleAdmin || read.ListenBrainzName != "" || len(read.ListenBrainzToken) != 0 ||
		!read.UpdatedAt.Equal(later.UTC().Truncate(time.Microsecond)) || !read.CreatedAt.Equal(now.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("update not applied as asked: %+v", read)
	}
	if _, err := s.GetUserByUsername(ctx, "bob"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("old username still resolves: %v", err)
	}
}

func testUpdateUserError(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("carol")
	mustCreate(t, s, u)
	boom := errors.New("boom")
	_, err := s.UpdateUser(ctx, u.ID, func(old storage.User) (storage.User, error) {
		old.Role = storage.RoleAdmin
		return old, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateUser = %v, want the update's error", err)
	}
	got, _ := s.GetUser(ctx, u.ID)
	if got.Role != storage.RoleUser {
		t.Fatalf("role = %q after a failed update, want unchanged", got.Role)
	}
}

func testUpdateUserRenameClash(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustCreate(t, s, newUser("dave"))
	e := newUser("erin")
	mustCreate(t, s, e)
	_, err := s.UpdateUser(ctx, e.ID, func(old storage.User) (storage.User, error) {
		old.Username = "DAVE"
		return old, nil
	})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("rename onto a taken name = %v, want ErrAlreadyExists", err)
	}
	if got, _ := s.GetUser(ctx, e.ID); got.Username != "erin" {
		t.Fatalf("username = %q after a refused rename", got.Username)
	}
}

func newSession(userID string, expires time.Time) storage.Session {
	h := make([]byte, 32)
	_, _ = rand.Read(h)
	return storage.Session{IDHash: h, SID: fmt.Sprintf("sid-%x", h[:8]), UserID: userID, AuthTime: now, CreatedAt: now, ExpiresAt: expires}
}

func testSessionRoundTrip(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("frank")
	mustCreate(t, s, u)
	sess := newSession(u.ID, now.Add(24*time.Hour))
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if err := s.CreateSession(ctx, sess); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("CreateSession(duplicate) = %v, want ErrAlreadyExists", err)
	}
	got, err := s.GetSession(ctx, sess.IDHash)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	trunc := func(x time.Time) time.Time { return x.UTC().Truncate(time.Microsecond) }
	if !bytes.Equal(got.IDHash, sess.IDHash) || got.UserID != u.ID || !got.AuthTime.Equal(trunc(now)) ||
		!got.CreatedAt.Equal(trunc(now)) || !got.ExpiresAt.Equal(trunc(sess.ExpiresAt)) {
		t.Fatalf("GetSession = %+v, want %+v", got, sess)
	}
	if got.SID != sess.SID {
		t.Fatalf("sid = %q, want %q", got.SID, sess.SID)
	}
	// By sid: only with the right user, once.
	other := newSession(u.ID, now.Add(time.Hour))
	if err := s.CreateSession(ctx, other); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteSessionBySID(ctx, "someone-else", other.SID); err != nil || n != 0 {
		t.Fatalf("DeleteSessionBySID of another user = %d, %v", n, err)
	}
	if n, err := s.DeleteSessionBySID(ctx, u.ID, other.SID); err != nil || n != 1 {
		t.Fatalf("DeleteSessionBySID = %d, %v", n, err)
	}
	if _, err := s.GetSession(ctx, other.IDHash); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("the session survived DeleteSessionBySID")
	}
	if n, err := s.DeleteSessionBySID(ctx, u.ID, ""); err != nil || n != 0 {
		t.Fatalf("DeleteSessionBySID with no sid = %d, %v", n, err)
	}
	if err := s.DeleteSession(ctx, sess.IDHash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, err := s.GetSession(ctx, sess.IDHash); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetSession after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, sess.IDHash); err != nil {
		t.Fatalf("DeleteSession(missing) = %v, want nil", err)
	}
}

func testSessionForMissingUser(t *testing.T, s storage.Storage) {
	err := s.CreateSession(context.Background(), newSession("no-such-user", now.Add(time.Hour)))
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("CreateSession(missing user) = %v, want ErrNotFound", err)
	}
}

func testDeleteUserSessions(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	a, b := newUser("gina"), newUser("hank")
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	var aSess []storage.Session
	for i := 0; i < 3; i++ {
		sess := newSession(a.ID, now.Add(time.Hour))
		aSess = append(aSess, sess)
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	other := newSession(b.ID, now.Add(time.Hour))
	if err := s.CreateSession(ctx, other); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteUserSessions(ctx, a.ID)
	if err != nil || n != 3 {
		t.Fatalf("DeleteUserSessions = %d, %v; want 3, nil", n, err)
	}
	for _, sess := range aSess {
		if _, err := s.GetSession(ctx, sess.IDHash); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("session survived DeleteUserSessions: %v", err)
		}
	}
	if _, err := s.GetSession(ctx, other.IDHash); err != nil {
		t.Fatalf("another user's session was deleted: %v", err)
	}
}

func testDeleteExpiredSessions(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("ivy")
	mustCreate(t, s, u)
	var expired []storage.Session
	for i := 0; i < 5; i++ {
		sess := newSession(u.ID, now.Add(-time.Duration(i+1)*time.Minute))
		expired = append(expired, sess)
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	live := newSession(u.ID, now.Add(time.Minute))
	if err := s.CreateSession(ctx, live); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteExpiredSessions(ctx, now, 3)
	if err != nil || n != 3 {
		t.Fatalf("DeleteExpiredSessions(limit 3) = %d, %v; want 3", n, err)
	}
	n, err = s.DeleteExpiredSessions(ctx, now, 100)
	if err != nil || n != 2 {
		t.Fatalf("second DeleteExpiredSessions = %d, %v; want 2", n, err)
	}
	for _, sess := range expired {
		if _, err := s.GetSession(ctx, sess.IDHash); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("expired session survived: %v", err)
		}
	}
	if _, err := s.GetSession(ctx, live.IDHash); err != nil {
		t.Fatalf("live session deleted: %v", err)
	}
}

// testConcurrentCreate races many creates of one name in different letter
// cases: exactly one wins, the rest see ErrAlreadyExists.
func testConcurrentCreate(t *testing.T, s storage.Storage) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name := "racer"
			if i%2 == 1 {
				name = "RACER"
			}
			errs[i] = s.CreateUser(context.Background(), newUser(name))
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, storage.ErrAlreadyExists):
		default:
			t.Fatalf("concurrent CreateUser: unexpected error %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent creates succeeded, want exactly 1", wins)
	}
}

// testConcurrentUpdates checks that UpdateUser is atomic: concurrent
// read-modify-write updates lose nothing.
func testConcurrentUpdates(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("counter")
	u.ListenBrainzName = "0"
	mustCreate(t, s, u)
	const n = 10
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateUser(ctx, u.ID, func(old storage.User) (storage.User, error) {
				var v int
				fmt.Sscan(old.ListenBrainzName, &v)
				old.ListenBrainzName = fmt.Sprint(v + 1)
				return old, nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
	}
	got, _ := s.GetUser(ctx, u.ID)
	if got.ListenBrainzName != fmt.Sprint(n) {
		t.Fatalf("counter = %s after %d concurrent increments: updates were lost", got.ListenBrainzName, n)
	}
}

// testTransactions: writes made with a transaction's context vanish on
// rollback and persist on commit. (Nothing here touches the store outside
// the open transaction: SQLite has a single connection.)
func testTransactions(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	txCtx, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.BeginTx(txCtx); !errors.Is(err, storage.ErrInTransaction) {
		t.Fatalf("BeginTx nested on a transaction's context: %v, want storage.ErrInTransaction", err)
	}
	gone := newUser("rolled-back")
	if err := s.CreateUser(txCtx, gone); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(txCtx, gone.ID); err != nil {
		t.Fatalf("the transaction does not see its own write: %v", err)
	}
	if err := s.RollbackTx(txCtx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(ctx, gone.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("rolled-back user = %v, want ErrNotFound", err)
	}

	txCtx, err = s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kept := newUser("committed")
	if err := s.CreateUser(txCtx, kept); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitTx(txCtx); err != nil {
		t.Fatal(err)
	}
	if err := s.RollbackTx(txCtx); err != nil {
		t.Fatalf("RollbackTx after commit = %v, want nil", err)
	}
	if _, err := s.GetUser(ctx, kept.ID); err != nil {
		t.Fatalf("committed user: %v", err)
	}
	if err := s.CommitTx(ctx); err == nil {
		t.Fatal("CommitTx without a transaction succeeded")
	}
}
