package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
)

// Seed builds its rows from each database's own functions (dialect.seed):
// both must make the same users and tokens, and a second run adds more.
func TestSeedMakesTheSameRowsOnBothDatabases(t *testing.T) {
	for name, url := range map[string]func(*testing.T) string{"sqlite": sqliteURL, "postgres": func(t *testing.T) string { return pgtest.URL(t) }} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := openMigrated(t, url(t))
			progress := func(string) {}
			if err := s.Seed(ctx, 3, 1, 4, 1, time.Hour, "hash", "load", progress); err != nil {
				t.Fatalf("Seed: %v", err)
			}
			if err := s.Seed(ctx, 2, 4, 3, 5, time.Hour, "hash", "load", progress); err != nil {
				t.Fatalf("second Seed: %v", err)
			}
			u, err := s.GetUserByUsername(ctx, "user0000005")
			if err != nil || u.ID != "00000005-0000-4000-8000-000000000005" || u.Email != "user0000005@example.org" || !u.EmailVerified {
				t.Fatalf("seeded user = %+v, %v", u, err)
			}
			db, err := s.SQLDB()
			if err != nil {
				t.Fatal(err)
			}
			var tokens, owners int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*), COUNT(DISTINCT subject) FROM access_tokens WHERE client_id = 'load'").Scan(&tokens, &owners); err != nil {
				t.Fatal(err)
			}
			if tokens != 7 || owners != 3 {
				t.Fatalf("seeded %d tokens of %d users, want 7 of 3", tokens, owners)
			}
		})
	}
}
