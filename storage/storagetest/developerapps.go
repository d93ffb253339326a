package storagetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

func developerAppCases() []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"DeveloperAppFields", testDeveloperAppFields},
		{"RegistrationTokens", testRegistrationTokens},
		{"RevokeDeveloperCredentials", testRevokeDeveloperCredentials},
	}
}

func testDeveloperAppFields(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	c := newClient("dev-app")
	c.Owner, c.Registration, c.RegistrationTokenHash = "user-1", storage.RegisteredWithToken, []byte{1, 2, 0xff}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetClient(ctx, "dev-app")
	if err != nil || got.Owner != "user-1" || got.Registration != storage.RegisteredWithToken || !bytes.Equal(got.RegistrationTokenHash, []byte{1, 2, 0xff}) || got.Disabled {
		t.Fatalf("GetClient = %+v, %v", got, err)
	}
	if _, err := s.UpdateClient(ctx, "dev-app", func(x storage.Client) (storage.Client, error) {
		x.Disabled, x.RegistrationTokenHash = true, nil
		return x, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetClient(ctx, "dev-app"); !got.Disabled || got.RegistrationTokenHash != nil || got.Owner != "user-1" {
		t.Fatalf("after update: %+v", got)
	}
	api := storage.API{ID: "https://api.example/open", Name: "Open", Scopes: []storage.APIScope{{Name: "open:read", Description: "Read"}}, OpenToApps: true, CreatedAt: now}
	if err := s.CreateAPI(ctx, api); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetAPI(ctx, api.ID); !got.OpenToApps {
		t.Fatalf("OpenToApps lost: %+v", got)
	}
	if _, err := s.UpdateAPI(ctx, api.ID, func(a storage.API) (storage.API, error) {
		a.OpenToApps = false
		return a, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetAPI(ctx, api.ID); got.OpenToApps {
		t.Fatal("OpenToApps not cleared")
	}
}

func testRegistrationTokens(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("developer")
	mustCreate(t, s, u)
	mine := storage.RegistrationToken{ID: "t1", TokenHash: []byte{1}, Owner: u.ID, Description: "CI", CreatedAt: now}
	cli := storage.RegistrationToken{ID: "t2", TokenHash: []byte{2}, CreatedAt: now.Add(time.Second), ExpiresAt: now.Add(time.Hour)}
	for _, tok := range []storage.RegistrationToken{mine, cli} {
		if err := s.CreateRegistrationToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateRegistrationToken(ctx, storage.RegistrationToken{ID: "t3", TokenHash: []byte{1}, CreatedAt: now}); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("a duplicate hash: %v", err)
	}
	if got, err := s.GetRegistrationTokenByHash(ctx, []byte{1}, now.Add(100*365*24*time.Hour)); err != nil || got.ID != "t1" || got.Owner != u.ID || !got.ExpiresAt.IsZero() {
		t.Fatalf("a token that never expires: %+v %v", got, err)
	}
	if got, err := s.GetRegistrationTokenByHash(ctx, []byte{2}, now); err != nil || got.ID != "t2" || !got.ExpiresAt.Equal(now.Add(time.Hour).Truncate(time.Microsecond)) {
		t.Fatalf("GetRegistrationTokenByHash = %+v %v", got, err)
	}
	if _, err := s.GetRegistrationTokenByHash(ctx, []byte{2}, now.Add(time.Hour)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an expired token: %v", err)
	}
	if list, err := s.ListRegistrationTokens(ctx, u.ID, false); err != nil || len(list) != 1 || list[0].ID != "t1" {
		t.Fatalf("owner's tokens: %+v %v", list, err)
	}
	if list, _ := s.ListRegistrationTokens(ctx, "", true); len(list) != 2 || list[0].ID != "t2" {
		t.Fatalf("every token, newest first: %+v", list)
	}
	if err := s.DeleteRegistrationToken(ctx, "t2", u.ID, false); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleting another's token: %v", err)
	}
	if err := s.DeleteRegistrationToken(ctx, "t2", "", true); err != nil {
		t.Fatal(err)
	}
	// A deleted developer's tokens go with them.
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRegistrationTokenByHash(ctx, []byte{1}, now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a deleted developer's token: %v", err)
	}
}

// testRevokeDeveloperCredentials: disabling or deleting a developer ends
// their initial access tokens and their apps' registration access tokens,
// and nobody else's; the apps stay.
func testRevokeDeveloperCredentials(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	dev, other := newUser("gone-developer"), newUser("other-developer")
	mustCreate(t, s, dev)
	mustCreate(t, s, other)
	for _, tok := range []storage.RegistrationToken{
		{ID: "d1", TokenHash: []byte{0xd1}, Owner: dev.ID, CreatedAt: now},
		{ID: "o1", TokenHash: []byte{0x01}, Owner: other.ID, CreatedAt: now},
		{ID: "cli", TokenHash: []byte{0xc1}, CreatedAt: now},
	} {
		if err := s.CreateRegistrationToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	app := func(id, owner string, hash []byte) {
		c := newClient(id)
		c.Owner, c.Registration, c.RegistrationTokenHash = owner, storage.RegisteredWithToken, hash
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	app("dev-registered", dev.ID, []byte{0xaa})
	app("dev-on-page", dev.ID, nil)
	app("other-registered", other.ID, []byte{0xbb})
	app("open-registered", "", []byte{0xcc})
	live := func(hash byte) bool {
		_, err := s.GetRegistrationTokenByHash(ctx, []byte{hash}, now)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	hashOf := func(id string) []byte {
		c, err := s.GetClient(ctx, id)
		if err != nil {
			t.Fatalf("app %s: %v", id, err)
		}
		return c.RegistrationTokenHash
	}

	// In a transaction that rolls back, nothing changes.
	tx, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.RevokeDeveloperCredentials(tx, dev.ID); err != nil || n != 2 {
		t.Fatalf("RevokeDeveloperCredentials in a transaction = %d, %v; want 2", n, err)
	}
	if err := s.RollbackTx(tx); err != nil {
		t.Fatal(err)
	}
	if !live(0xd1) || hashOf("dev-registered") == nil {
		t.Fatal("a rolled-back revocation took effect")
	}

	if n, err := s.RevokeDeveloperCredentials(ctx, dev.ID); err != nil || n != 2 {
		t.Fatalf("RevokeDeveloperCredentials = %d, %v; want 2 (a token and an app's)", n, err)
	}
	if live(0xd1) || hashOf("dev-registered") != nil {
		t.Fatal("the developer's initial or registration access token survived")
	}
	if !live(0x01) || !live(0xc1) || !bytes.Equal(hashOf("other-registered"), []byte{0xbb}) || !bytes.Equal(hashOf("open-registered"), []byte{0xcc}) {
		t.Fatal("someone else's tokens went too")
	}
	if got, err := s.GetClient(ctx, "dev-registered"); err != nil || got.Owner != dev.ID {
		t.Fatalf("the app itself: %+v, %v", got, err)
	}
	if n, err := s.RevokeDeveloperCredentials(ctx, dev.ID); err != nil || n != 0 {
		t.Fatalf("again = %d, %v; want 0", n, err)
	}
	// "" is the operator's and open registration's: never revoked this way.
	if n, err := s.RevokeDeveloperCredentials(ctx, ""); err != nil || n != 0 || !live(0xc1) || hashOf("open-registered") == nil {
		t.Fatalf(`RevokeDeveloperCredentials("") = %d, %v`, n, err)
	}

	// Deleting a developer ends both kinds too.
	if err := s.DeleteUser(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	if live(0x01) || hashOf("other-registered") != nil {
		t.Fatal("a deleted developer's tokens survived")
	}
}
