package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
)

// SeedPassword is the password of every seeded user unless -password says
// otherwise.
const SeedPassword = "seed-password-1"

// seed fills a test database for scale measurements:
//
//	tonearm-load seed -database-url postgres://… -users 1000000 -tokens 5000000
//
// users user0000001… (password -password, default SeedPassword, email userNNNNNNN@example.org)
// and live access tokens of the client "seed" spread over them.
func seed(args []string) error {
	fs := flag.NewFlagSet("seed", flag.ExitOnError)
	dbURL := fs.String("database-url", os.Getenv("TONEARM_DATABASE_URL"), "database to fill (TONEARM_DATABASE_URL)")
	users := fs.Int("users", 10000, "users to add")
	password := fs.String("password", SeedPassword, "the password of every seeded user")
	tokens := fs.Int("tokens", 0, "live access tokens to add")
	from := fs.Int("from", 1, "number of the first user (to add to an earlier seed)")
	tokenFrom := fs.Int("token-from", 1, "number of the first token (to add to an earlier seed)")
	expired := fs.Bool("expired", false, "seed tokens that expired an hour ago (work for the housekeeping)")
	fs.Parse(args)
	start := time.Now()
	life := time.Hour
	if *expired {
		life = -time.Hour
	}
	err := seedDatabase(context.Background(), *dbURL, *password, *users, *tokens, *from, *tokenFrom, life, func(msg string) {
		fmt.Printf("%6.1fs  %s\n", time.Since(start).Seconds(), msg)
	})
	if err == nil {
		fmt.Printf("seeded %d users and %d tokens in %s\n", *users, *tokens, time.Since(start).Round(time.Millisecond))
	}
	return err
}

func seedDatabase(ctx context.Context, dbURL, password string, users, tokens, from, tokenFrom int, tokenLife time.Duration, progress func(string)) error {
	if dbURL == "" || password == "" || users < 0 || tokens < 0 || from < 1 || tokenFrom < 1 {
		return errors.New("seed: -database-url, users ≥ 0, tokens ≥ 0 and from ≥ 1 are required")
	}
	store, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		return err
	}
	hash, err := accounts.NewHasher(accounts.DefaultHashParams, 0, 1).Hash(ctx, password)
	if err != nil {
		return err
	}
	if err := store.CreateClient(ctx, storage.Client{ID: "seed", RedirectURIs: []string{}, PostLogoutRedirectURIs: []string{},
		GrantTypes: []string{"client_credentials"}, ResponseTypes: []string{}, Scopes: []string{"openid"}, Audience: []string{},
		CreatedAt: time.Now().UTC()}); err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
		return err
	}
	return store.Seed(ctx, users, from, tokens, tokenFrom, tokenLife, hash, "seed", progress)
}
