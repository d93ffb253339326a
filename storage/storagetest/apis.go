package storagetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

func apiCases() []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"APIs", testAPIs},
		{"UserClaims", testUserClaims},
		{"UpdateAPI", testUpdateAPI},
	}
}

func testAPIs(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	listens := storage.API{
		ID: "https://api.example.org/listens", Name: "Listens",
		Scopes: []storage.APIScope{{Name: "listens:write", Description: "Submit listens"}, {Name: "listens:read", Description: "Read your listens"}},
		Claims: []string{"role", "listenbrainz_name", "tier"}, Introspectors: []string{"listens-server"}, ExchangeFrom: []string{"listens-backend"}, CreatedAt: now,
	}
	if err := s.CreateAPI(ctx, listens); err != nil {
		t.Fatal(err)
	}
	bare := storage.API{ID: "urn:example:bare", Name: "", Scopes: []storage.APIScope{}, Claims: []string{}, Introspectors: []string{}, ExchangeFrom: []string{}, CreatedAt: now}
	if err := s.CreateAPI(ctx, bare); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAPI(ctx, listens.ID)
	listens.CreatedAt = listens.CreatedAt.UTC().Truncate(time.Microsecond)
	if err != nil || !reflect.DeepEqual(got, listens) {
		t.Fatalf("GetAPI = %+v, %v; want %+v (scopes in order)", got, err, listens)
	}
	if _, err := s.GetAPI(ctx, "https://nope.example"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetAPI of a missing API = %v", err)
	}
	// One API owns a scope; an ID is taken once; a refused API leaves nothing.
	thief := storage.API{ID: "https://thief.example", Scopes: []storage.APIScope{{Name: "fine", Description: ""}, {Name: "listens:read", Description: ""}}, CreatedAt: now}
	if err := s.CreateAPI(ctx, thief); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("a scope defined twice = %v", err)
	}
	if _, err := s.GetAPI(ctx, thief.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("a refused API was half-written")
	}
	if err := s.CreateAPI(ctx, storage.API{ID: listens.ID, CreatedAt: now}); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("a duplicate ID = %v", err)
	}
	all, err := s.ListAPIs(ctx)
	if err != nil || len(all) != 2 || all[0].ID != listens.ID || all[1].ID != bare.ID || len(all[0].Scopes) != 2 || len(all[1].Scopes) != 0 {
		t.Fatalf("ListAPIs = %+v, %v", all, err)
	}
	if err := s.DeleteAPI(ctx, listens.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAPI(ctx, listens.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second DeleteAPI = %v", err)
	}
	// Its scopes are free again.
	if err := s.CreateAPI(ctx, storage.API{ID: "https://heir.example", Scopes: []storage.APIScope{{Name: "listens:read", Description: "again"}}, CreatedAt: now}); err != nil {
		t.Fatalf("a deleted API's scope is still taken: %v", err)
	}
}

func testUserClaims(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("claimed")
	u.Claims = []byte(`{"tier":"gold","n":3}`)
	mustCreate(t, s, u)
	got, err := s.GetUser(ctx, u.ID)
	if err != nil || string(got.Claims) != `{"tier":"gold","n":3}` {
		t.Fatalf("claims = %s, %v", got.Claims, err)
	}
	got, err = s.UpdateUser(ctx, u.ID, func(x storage.User) (storage.User, error) { x.Claims = nil; return x, nil })
	if err != nil || got.Claims != nil {
		t.Fatalf("cleared claims = %s, %v", got.Claims, err)
	}
	if got, _ := s.GetUser(ctx, u.ID); got.Claims != nil {
		t.Fatalf("cleared claims read back as %s", got.Claims)
	}
}

// testUpdateAPI: name, claims, introspectors, exchange-from clients and
// scopes change together;
// a scope another API owns is refused and changes nothing; a missing API is
// ErrNotFound; the update's own error changes nothing.
func testUpdateAPI(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	listens := storage.API{ID: "https://api.example.org/listens", Scopes: []storage.APIScope{{Name: "listens:read", Description: "Read"}},
		Claims: []string{}, Introspectors: []string{}, ExchangeFrom: []string{}, CreatedAt: now}
	other := storage.API{ID: "https://other.example", Scopes: []storage.APIScope{{Name: "other:x", Description: ""}}, CreatedAt: now}
	for _, a := range []storage.API{listens, other} {
		if err := s.CreateAPI(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.UpdateAPI(ctx, listens.ID, func(a storage.API) (storage.API, error) {
		a.Name, a.Claims, a.Introspectors = "Listens", []string{"role"}, []string{"rs-1", "rs-2"}
		a.ExchangeFrom = []string{"backend-1", "backend-2"}
		a.Scopes = append(a.Scopes, storage.APIScope{Name: "listens:write", Description: "Write"})
		a.CreatedAt = now.Add(time.Hour) // ignored
		return a, nil
	})
	if err != nil || got.Name != "Listens" || len(got.Scopes) != 2 {
		t.Fatalf("UpdateAPI = %+v, %v", got, err)
	}
	read, err := s.GetAPI(ctx, listens.ID)
	want := storage.API{ID: listens.ID, Name: "Listens", Claims: []string{"role"}, Introspectors: []string{"rs-1", "rs-2"}, ExchangeFrom: []string{"backend-1", "backend-2"},
		Scopes: []storage.APIScope{{Name: "listens:read", Description: "Read"}, {Name: "listens:write", Description: "Write"}}, CreatedAt: now.UTC().Truncate(time.Microsecond)}
	if err != nil || !reflect.DeepEqual(read, want) {
		t.Fatalf("after UpdateAPI: %+v, %v\nwant %+v", read, err, want)
	}
	if _, err := s.UpdateAPI(ctx, listens.ID, func(a storage.API) (storage.API, error) {
		a.Name, a.Scopes = "Stolen", append(a.Scopes, storage.APIScope{Name: "other:x"})
		return a, nil
	}); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("taking another API's scope = %v", err)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateAPI(ctx, listens.ID, func(a storage.API) (storage.API, error) { a.Name = "x"; return a, boom }); !errors.Is(err, boom) {
		t.Fatalf("update error = %v", err)
	}
	if again, err := s.GetAPI(ctx, listens.ID); err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("a refused update changed the API: %+v, %v", again, err)
	}
	if _, err := s.UpdateAPI(ctx, "https://nope.example", func(a storage.API) (storage.API, error) { return a, nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UpdateAPI of a missing API = %v", err)
	}
}
