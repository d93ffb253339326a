package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/listenbrainz"
	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// The seed makes real rows: users that can sign in with SeedPassword and
// are found by prefix, live tokens spread over them; a second run adds.
func TestSeed(t *testing.T) {
	for name, newURL := range map[string]func(*testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "t.db") },
		"postgres": func(t *testing.T) string { return pgtest.URL(t) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			url := newURL(t)
			if err := seedDatabase(ctx, url, SeedPassword, 250, 600, 1, 1, time.Hour, func(string) {}); err != nil {
				t.Fatal(err)
			}
			if err := seedDatabase(ctx, url, SeedPassword, 50, 100, 251, 601, -time.Hour, func(string) {}); err != nil {
				t.Fatalf("a second seed: %v", err)
			}
			store, err := sqlstore.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			all, err := store.ListUsers(ctx, storage.UserFilter{UsernamePrefix: "user", Limit: 1000})
			if err != nil || len(all) != 300 || all[0].Username != "user0000001" || all[299].Username != "user0000300" {
				t.Fatalf("seeded users: %d, %v", len(all), err)
			}
			byEmail, _ := store.ListUsers(ctx, storage.UserFilter{EmailPrefix: "user0000042@", Limit: 10})
			if len(byEmail) != 1 {
				t.Fatalf("by email: %d", len(byEmail))
			}
			lb, _ := listenbrainz.New("http://127.0.0.1:1", 0)
			box, _ := seal.New(seal.DeriveKey([]byte("0123456789abcdef0123456789abcdef"), "x"))
			acc, err := accounts.New(accounts.Config{Store: store, Hasher: accounts.NewHasher(accounts.DefaultHashParams, 0, 4), Validator: lb, Box: box})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := acc.Authenticate(ctx, "user0000299", SeedPassword, nil); err != nil {
				t.Fatalf("a seeded user cannot sign in: %v", err)
			}
			// The expired ones are the housekeeping's.
			if n, err := store.DeleteExpiredOAuthRequests(ctx, time.Now(), 1000); err != nil || n != 100 {
				t.Fatalf("expired seeded tokens swept: %d, %v", n, err)
			}
			// Tokens 1–600 went to users 2–250 and 1, the next 100 over all 300.
			n, err := store.DeleteOAuthRequestsBySubject(ctx, all[41].ID)
			if err != nil || n < 2 {
				t.Fatalf("tokens of a seeded user: %d, %v", n, err)
			}
		})
	}
}
