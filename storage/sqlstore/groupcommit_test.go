package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

// The group commit's guarantees, on SQLite's real commit path: a batch
// that fails to commit fails every transaction in it and stores nothing of
// any of them; a transaction that fails on its own fails alone; a write
// is acknowledged only once its batch is committed.

func openBatching(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A constraint SQLite checks only when the batch commits: a deferred
	// foreign key.
	for _, q := range []string{
		`CREATE TABLE gc_parent (id TEXT PRIMARY KEY)`,
		`CREATE TABLE gc_child (ref TEXT REFERENCES gc_parent (id) DEFERRABLE INITIALLY DEFERRED)`,
	} {
		if err := s.db.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func token(i int) storage.OAuthRequest {
	now := time.Now()
	return storage.OAuthRequest{
		Kind: storage.KindRefreshToken, Signature: fmt.Sprintf("sig-%03d", i), RequestID: fmt.Sprintf("req-%03d", i),
		RequestedAt: now, ExpiresAt: now.Add(time.Hour), ClientID: "app", Subject: "u", Active: true,
	}
}

// batchOf runs first, then n transactions that queue behind it while it
// holds the writer, so all of them share one batch. each(i, ctx) is the
// work of transaction i (0 is first). It returns every CommitTx result.
func batchOf(t *testing.T, s *Store, n int, each func(i int, ctx context.Context) error) []error {
	t.Helper()
	ctx := context.Background()
	results := make([]error, n+1)
	first, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := each(0, first); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tx, err := s.BeginTx(ctx)
			if err != nil {
				results[i] = err
				return
			}
			if err := each(i, tx); err != nil {
				_ = s.RollbackTx(tx)
				results[i] = fmt.Errorf("own failure: %w", err)
				return
			}
			results[i] = s.CommitTx(tx)
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); s.committer.waiting.Load() < int32(n); {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d transactions queued", s.committer.waiting.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	results[0] = s.CommitTx(first)
	wg.Wait()
	return results
}

func TestGroupCommitFailedBatchFailsEveryone(t *testing.T) {
	s := openBatching(t)
	const n = 12
	results := batchOf(t, s, n, func(i int, ctx context.Context) error {
		if err := s.CreateOAuthRequest(ctx, token(i)); err != nil {
			return err
		}
		if i == 7 { // breaks the batch's commit
			return s.conn(ctx).Exec(`INSERT INTO gc_child (ref) VALUES ('nobody')`).Error
		}
		return nil
	})
	for i, err := range results {
		if err == nil {
			t.Errorf("transaction %d acknowledged, but its batch did not commit", i)
		}
		if _, err := s.GetOAuthRequest(context.Background(), storage.KindRefreshToken, token(i).Signature); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("token %d of the failed batch: GetOAuthRequest = %v, want ErrNotFound", i, err)
		}
	}
	// The writer is free again and the next batch commits.
	if err := s.CreateOAuthRequest(context.Background(), token(100)); err != nil {
		t.Fatalf("write after a failed batch: %v", err)
	}
	if _, err := s.GetOAuthRequest(context.Background(), storage.KindRefreshToken, token(100).Signature); err != nil {
		t.Fatalf("token written after a failed batch: %v", err)
	}
}

func TestGroupCommitOwnFailureFailsAlone(t *testing.T) {
	s := openBatching(t)
	if err := s.CreateOAuthRequest(context.Background(), token(5)); err != nil {
		t.Fatal(err)
	}
	const n = 12
	results := batchOf(t, s, n, func(i int, ctx context.Context) error {
		if i == 5 {
			// Its own writes first, then a statement that fails: all of
			// its writes go, nobody else's.
			if err := s.CreateOAuthRequest(ctx, token(200)); err != nil {
				return err
			}
			return s.CreateOAuthRequest(ctx, token(5)) // already stored
		}
		return s.CreateOAuthRequest(ctx, token(i))
	})
	for i, err := range results {
		_, got := s.GetOAuthRequest(context.Background(), storage.KindRefreshToken, token(i).Signature)
		switch {
		case i == 5:
			if !errors.Is(err, storage.ErrAlreadyExists) {
				t.Errorf("the failing transaction: %v, want ErrAlreadyExists", err)
			}
		case err != nil:
			t.Errorf("transaction %d failed with its neighbour: %v", i, err)
		case got != nil:
			t.Errorf("transaction %d acknowledged but its token is not stored: %v", i, got)
		}
	}
	if _, err := s.GetOAuthRequest(context.Background(), storage.KindRefreshToken, token(200).Signature); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a write of the rolled-back transaction was kept: %v", err)
	}
}

func TestGroupCommitConcurrentWrites(t *testing.T) {
	s := openBatching(t)
	// Plain writes from many goroutines, some of them failing, with the
	// batch size bound crossed: each acknowledged token is stored, each
	// refused one is not.
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := token(i)
			if i%10 == 3 {
				tok.Session = []byte("x")
				tok.GrantedScopes = []string{"bad word"} // access tokens store words: refused
				tok.Kind = storage.KindAccessToken
				tok.Signature = fmt.Sprintf("at-%03d", i)
			}
			errs[i] = s.CreateOAuthRequest(context.Background(), tok)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		kind, sig := storage.KindRefreshToken, token(i).Signature
		if i%10 == 3 {
			kind, sig = storage.KindAccessToken, fmt.Sprintf("at-%03d", i)
		}
		_, got := s.GetOAuthRequest(context.Background(), kind, sig)
		if (err == nil) != (got == nil) {
			t.Errorf("write %d: CreateOAuthRequest = %v but GetOAuthRequest = %v", i, err, got)
		}
		if i%10 == 3 && err == nil {
			t.Errorf("write %d: an access token with a scope holding a space was stored", i)
		}
		if i%10 != 3 && err != nil {
			t.Errorf("write %d failed: %v", i, err)
		}
	}
}

func TestGroupCommitWaiterGivingUp(t *testing.T) {
	s := openBatching(t)
	// A transaction that commits while the one waiting behind it gives up
	// (its request ended) is still committed, at once: its batch is not
	// left open for the next write to close.
	for i := range 300 {
		first, err := s.BeginTx(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateOAuthRequest(first, token(1000+i)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		gaveUp := make(chan error, 1)
		go func() {
			tx, err := s.BeginTx(ctx)
			if err == nil { // in before giving up: it ends its transaction
				err = s.RollbackTx(tx)
			}
			gaveUp <- err
		}()
		for s.committer.waiting.Load() == 0 {
			time.Sleep(10 * time.Microsecond)
		}
		committed := make(chan error, 1)
		go func() { committed <- s.CommitTx(first) }()
		cancel()
		select {
		case err := <-committed:
			if err != nil {
				t.Fatalf("round %d: CommitTx = %v", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the commit waits for a write that never comes", i)
		}
		if err := <-gaveUp; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: the waiter: %v", i, err)
		}
		if _, err := s.GetOAuthRequest(context.Background(), storage.KindRefreshToken, token(1000+i).Signature); err != nil {
			t.Fatalf("round %d: the committed token: %v", i, err)
		}
	}
}

func TestGroupCommitEndedRequestStartsNothing(t *testing.T) {
	s := openBatching(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 50 { // the writer is free: only the check of the context refuses
		if _, err := s.BeginTx(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("BeginTx with an ended context: %v", err)
		}
		if err := s.CreateOAuthRequest(ctx, token(3000)); !errors.Is(err, context.Canceled) {
			t.Fatalf("a write with an ended context: %v", err)
		}
	}
	if _, err := s.GetOAuthRequest(context.Background(), storage.KindRefreshToken, token(3000).Signature); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a write of an ended request was stored: %v", err)
	}
}
