package main

import (
	"context"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
)

// A client deleted on one replica: its tokens die at once, and another
// replica that still holds the client in its cache stops accepting its
// secret, and every token it issued meanwhile, within ClientCacheTTL.
func TestDeletedClientOnAnotherReplica(t *testing.T) {
	t.Parallel()
	a := startE2E(t, pgtest.URL(t), options{})
	// B's clock is moved past its client cache's lifetime below instead
	// of sleeping through it.
	var offset atomic.Int64
	b := a.secondWith(options{now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	_, secret := a.client(clients.Spec{ID: "worker", GrantTypes: []string{"client_credentials"}, Scopes: []string{"profile"}})
	_, rsSecret := a.client(clients.Spec{ID: "api", GrantTypes: []string{"client_credentials"}})
	cc := func(s *server) tokenReply {
		return s.post(provider.TokenPath, "worker", secret, url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}})
	}
	before := cc(b) // B now holds "worker" in its cache
	if before.status != http.StatusOK {
		t.Fatalf("client credentials at B = %d %v", before.status, before.body)
	}
	if err := a.app.clients.Delete(context.Background(), "worker"); err != nil {
		t.Fatal(err)
	}
	if a.active("api", rsSecret, before.body["access_token"].(string)) {
		t.Fatal("a token of the deleted client is still active")
	}
	if r := cc(a); r.status != http.StatusUnauthorized {
		t.Fatalf("deleted client at A = %d %v", r.status, r.body)
	}
	// B may still answer from its cache for up to ClientCacheTTL.
	window := cc(b)
	offset.Add(int64(fositestore.ClientCacheTTL + 100*time.Millisecond))
	if r := cc(b); r.status != http.StatusUnauthorized || r.errorCode() != "invalid_client" {
		t.Fatalf("deleted client at B after the cache TTL = %d %v", r.status, r.body)
	}
	if window.status == http.StatusOK {
		for _, s := range []*server{a, b} {
			if s.active("api", rsSecret, window.body["access_token"].(string)) {
				t.Fatal("a token issued from a stale cache outlived it")
			}
		}
	}
}
