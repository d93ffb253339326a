// Package sqlitetest gives a service's tests a real, migrated SQLite store
// of their own (in the test's temporary directory, closed at its end): the
// storage-backed unit tests of provider/* run on it.
package sqlitetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tonearm-idp/tonearm/storage/sqlstore"
)

// Open returns a fresh migrated store.
func Open(t testing.TB) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "tonearm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return store
}
