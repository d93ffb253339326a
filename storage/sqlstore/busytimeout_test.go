package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/glebarez/sqlite"

	"github.com/tonearm-idp/tonearm/storage"
)

// Issue 31 (limits2) item 5: while another process holds SQLite's write
// lock (BEGIN IMMEDIATE), every write answers ErrUnavailable within the
// busy timeout (10 s), the one queued behind another's BEGIN too. That
// one used to wait its turn and then the busy timeout again: with the
// lock held 14 s a token write failed at 10 s and createUser succeeded
// at 14 s. Takes about 10 s.
func TestWriteLockHeldElsewhereFailsWithinBusyTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	s, err := Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// The other process: a connection of its own holding the write lock.
	other, err := sql.Open(sqlite.DriverName, "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	release := sync.OnceFunc(func() {
		_, _ = conn.ExecContext(ctx, "ROLLBACK")
		close(released)
	})
	defer release()
	go func() {
		select {
		case <-time.After(14 * time.Second):
			release()
		case <-released:
		}
	}()

	type outcome struct {
		err  error
		took time.Duration
	}
	outcomes := make([]outcome, 2)
	var wg sync.WaitGroup
	for i := range outcomes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 300 * time.Millisecond) // the second queues behind the first's BEGIN
			start := time.Now()
			err := s.CreateOAuthRequest(ctx, token(i))
			outcomes[i] = outcome{err, time.Since(start)}
		}()
	}
	wg.Wait()
	release()
	for i, o := range outcomes {
		t.Logf("write %d: %v after %v", i, o.err, o.took.Round(time.Millisecond))
		if !errors.Is(o.err, storage.ErrUnavailable) || o.took > busyTimeout+time.Second {
			t.Errorf("write %d with the lock held elsewhere: %v after %v, want ErrUnavailable within %v", i, o.err, o.took, busyTimeout)
		}
	}
	// The lock gone, writes work again.
	if err := s.CreateOAuthRequest(ctx, token(9)); err != nil {
		t.Fatalf("after the lock is released: %v", err)
	}
}
