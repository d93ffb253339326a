// Package sqlitetest gives unit tests a real, migrated SQLite store in the
// test's temporary directory: the packages above storage test their
// behaviour on the real store (no mocks), and the conformance suite
// (storage/storagetest) covers both databases.
package sqlitetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tonearm-idp/tonearm/storage/sqlstore"
)

// New opens and migrates a fresh SQLite database that is closed when the
// test ends.
func New(t testing.TB) *sqlstore.Store {
	t.Helper()
	store, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "tonearm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store
}
