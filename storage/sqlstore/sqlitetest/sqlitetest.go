// Package sqlitetest gives a service's tests a real, migrated SQLite store
// of their own (in the test's temporary directory, closed at its end): the
// storage-backed unit tests of provider/* run on it, and the end-to-end
// servers of cmd/tonearm start on a copy of its file.
package sqlitetest

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tonearm-idp/tonearm/storage/sqlstore"
)

// The migrations run once per test binary, into a file every test copies:
// migrating a new SQLite database costs about 0.3 s of CPU under the race
// detector, and the suites open hundreds.
var (
	once     sync.Once
	template []byte
	errTempl error
)

func migrated() ([]byte, error) {
	once.Do(func() {
		dir, err := os.MkdirTemp("", "tonearm-sqlitetest")
		if err != nil {
			errTempl = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "template.db")
		ctx := context.Background()
		store, err := sqlstore.Open(ctx, "sqlite://"+path)
		if err != nil {
			errTempl = err
			return
		}
		_, errTempl = store.Migrate(ctx)
		// The write-ahead log folded into the file, so that the file alone
		// is the whole database.
		if errTempl == nil {
			var db interface {
				ExecContext(context.Context, string, ...any) (sql.Result, error)
			}
			if db, errTempl = store.SQLDB(); errTempl == nil {
				_, errTempl = db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
			}
		}
		if err := store.Close(); errTempl == nil {
			errTempl = err
		}
		if errTempl == nil {
			template, errTempl = os.ReadFile(path)
		}
	})
	return template, errTempl
}

// Seed writes a migrated database to path (mode 0600) unless a file is
// there already; opening it then finds every migration applied.
func Seed(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return
	}
	b, err := migrated()
	if err != nil {
		t.Fatalf("sqlitetest: migrating the template: %v", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Open returns a fresh migrated store.
func Open(t testing.TB) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tonearm.db")
	Seed(t, path)
	store, err := sqlstore.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return store
}
