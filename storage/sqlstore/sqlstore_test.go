package sqlstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/sqlitetest"
	"github.com/tonearm-idp/tonearm/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func openMigrated(t *testing.T, url string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func sqliteURL(t *testing.T) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "tonearm.db")
}

// The conformance suite's stores start as copies of a database migrated
// once (the migrations have tests of their own: TestMigrate,
// TestSchemasMatch, TestMigrateUpgradesReleasedDatabases).
func TestStorageSQLite(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		path := filepath.Join(t.TempDir(), "tonearm.db")
		sqlitetest.Seed(t, path)
		return openMigrated(t, "sqlite://"+path)
	})
}

func TestStoragePostgres(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage { return openMigrated(t, pgtest.Migrated(t, migrateAndClose)) })
}

// migrateAndClose migrates the database at url: pgtest's template.
func migrateAndClose(ctx context.Context, url string) error {
	s, err := sqlstore.Open(ctx, url)
	if err != nil {
		return err
	}
	_, err = s.Migrate(ctx)
	return errors.Join(err, s.Close())
}

func TestMigrate(t *testing.T) {
	for name, newURL := range map[string]func(*testing.T) string{"sqlite": sqliteURL, "postgres": func(t *testing.T) string { return pgtest.URL(t) }} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url := newURL(t)
			// Two replicas migrating one empty database at once: both
			// succeed and the migrations are applied exactly once.
			var wg sync.WaitGroup
			applied := make([][]int, 2)
			errs := make([]error, 2)
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := sqlstore.Open(context.Background(), url)
					if err != nil {
						errs[i] = err
						return
					}
					defer s.Close()
					applied[i], errs[i] = s.Migrate(context.Background())
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatalf("concurrent Migrate: %v", err)
				}
			}
			if total := len(applied[0]) + len(applied[1]); total == 0 || (len(applied[0]) > 0 && len(applied[1]) > 0) {
				t.Fatalf("applied %v and %v: want one replica to apply everything, the other nothing", applied[0], applied[1])
			}
			s := openMigrated(t, url) // a third run is a no-op
			again, err := s.Migrate(context.Background())
			if err != nil || len(again) != 0 {
				t.Fatalf("Migrate on an up-to-date schema = %v, %v; want nothing applied", again, err)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	cases := []struct {
		in      string
		dialect sqlstore.Dialect
		path    string
		bad     bool
	}{
		{in: "sqlite://tonearm.db", dialect: sqlstore.SQLite, path: "tonearm.db"},
		{in: "sqlite:///var/lib/tonearm/t.db", dialect: sqlstore.SQLite, path: "/var/lib/tonearm/t.db"},
		{in: "postgres://u:p@db:5432/tonearm", dialect: sqlstore.Postgres},
		{in: "postgresql://db/tonearm", dialect: sqlstore.Postgres},
		{in: "sqlite://", bad: true},
		{in: "sqlite://x.db?_pragma=foo", bad: true},
		{in: "mysql://db/x", bad: true},
		{in: "tonearm.db", bad: true},
		{in: "postgres://", bad: true},
	}
	for _, c := range cases {
		loc, err := sqlstore.ParseURL(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("ParseURL(%q) accepted", c.in)
			}
			continue
		}
		if err != nil || loc.Dialect != c.dialect || loc.Path != c.path {
			t.Errorf("ParseURL(%q) = %+v, %v", c.in, loc, err)
		}
	}
}

func TestOpenUnreachablePostgres(t *testing.T) {
	_, err := sqlstore.Open(context.Background(), "postgres://tonearm:hunter2secret@127.0.0.1:1/tonearm?connect_timeout=2")
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	if strings.Contains(err.Error(), "hunter2secret") {
		t.Fatalf("error leaks the password: %v", err)
	}
}
