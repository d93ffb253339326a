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
