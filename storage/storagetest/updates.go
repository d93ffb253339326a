package storagetest

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/tonearm-idp/tonearm/storage"
)

// testConcurrentUpdatesEveryKind: every UpdateX is a read-modify-write
// that holds under concurrency (on PostgreSQL the row is locked when read,
// on SQLite writers take turns): n concurrent updates that each add one
// item to a list leave all n items, for clients, APIs and connectors
// alike. (Users, interactions and device-code polls have their own cases.)
func testConcurrentUpdatesEveryKind(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	const n = 8
	if err := s.CreateClient(ctx, newClient("crowded")); err != nil {
		t.Fatal(err)
	}
	concurrently(t, n, func(i int) error {
		_, err := s.UpdateClient(ctx, "crowded", func(c storage.Client) (storage.Client, error) {
			c.Scopes = append(c.Scopes, fmt.Sprint("s", i))
			return c, nil
		})
		return err
	})
	c, err := s.GetClient(ctx, "crowded")
	wantAll(t, "client scopes", c.Scopes, err, "openid", "profile")

	api := storage.API{ID: "urn:example:crowded", Scopes: []storage.APIScope{}, Claims: []string{}, Introspectors: []string{}, CreatedAt: now}
	if err := s.CreateAPI(ctx, api); err != nil {
		t.Fatal(err)
	}
	concurrently(t, n, func(i int) error {
		_, err := s.UpdateAPI(ctx, api.ID, func(a storage.API) (storage.API, error) {
			a.Claims = append(a.Claims, fmt.Sprint("s", i))
			return a, nil
		})
		return err
	})
	a, err := s.GetAPI(ctx, api.ID)
	wantAll(t, "API claims", a.Claims, err)

	if err := s.CreateConnector(ctx, newConnector("crowded")); err != nil {
		t.Fatal(err)
	}
	concurrently(t, n, func(i int) error {
		_, err := s.UpdateConnector(ctx, "crowded", func(c storage.Connector) (storage.Connector, error) {
			c.Scopes = append(c.Scopes, fmt.Sprint("s", i))
			return c, nil
		})
		return err
	})
	k, err := s.GetConnector(ctx, "crowded")
	wantAll(t, "connector scopes", k.Scopes, err, "email", "openid")
}

// concurrently runs fn(0) … fn(n-1) at once and fails on any error.
func concurrently(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn(i) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent update: %v", err)
		}
	}
}

// wantAll checks that list holds the items it started with and s0…s7.
func wantAll(t *testing.T, what string, list []string, err error, start ...string) {
	t.Helper()
	want := append([]string{}, start...)
	for i := range 8 {
		want = append(want, fmt.Sprint("s", i))
	}
	got := append([]string{}, list...)
	sort.Strings(got)
	sort.Strings(want)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s after concurrent updates = %v, %v; want %v (an update was lost)", what, got, err, want)
	}
}
