package fositestore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
)

// A commit whose held token writes fail ends the transaction itself: the
// next write does not wait for a lock the failed transaction still holds
// (SQLite) or find the connection in an aborted transaction (PostgreSQL),
// even when the caller does not roll back.
func TestFailedCommitEndsTheTransaction(t *testing.T) {
	for name, newURL := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "t.db") },
		"postgres": func(t *testing.T) string { return pgtest.URL(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store, err := sqlstore.Open(ctx, newURL(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			if _, err := store.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			a, err := New(store, newSession, Lifespans{AuthorizeCode: time.Minute, AccessToken: time.Hour, RefreshToken: 24 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if err := store.CreateClient(ctx, storage.Client{ID: "web", SecretHash: []byte{1}, RedirectURIs: []string{"https://app.example/cb"},
				GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid"}, CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			client, err := a.GetClient(ctx, "web")
			if err != nil {
				t.Fatal(err)
			}
			req := request(client, "user-1")
			if err := a.CreateRefreshTokenSession(ctx, "taken", "", req); err != nil {
				t.Fatal(err)
			}
			tx, err := a.BeginTX(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.CreateAccessTokenSession(tx, "new-access", req); err != nil {
				t.Fatal(err)
			}
			if err := a.CreateRefreshTokenSession(tx, "taken", "new-access", req); err != nil {
				t.Fatal(err)
			}
			if err := a.Commit(tx); err == nil {
				t.Fatal("a commit whose held refresh token already exists succeeded")
			}
			// No Rollback here: the next write must go through at once.
			done := make(chan error, 1)
			go func() { done <- a.CreateAccessTokenSession(ctx, "after", req) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("a write after the failed commit: %v", err)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("a write after the failed commit waits for the failed transaction")
			}
			if _, err := a.GetAccessTokenSession(ctx, "new-access", newSession()); err == nil {
				t.Fatal("the access token of the failed commit was stored")
			}
			if err := a.Rollback(tx); err != nil {
				t.Fatalf("a rollback after the failed commit: %v", err)
			}
		})
	}
}
