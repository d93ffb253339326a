package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// A duplicate connector is 409 as a duplicate client or API is; the admin
// API words a connector's fields by their names, not by CLI flags.
func TestRound4ErrConnectorStatuses(t *testing.T) {
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	ops := s.opsToken()
	mb := map[string]any{"id": "mb", "kind": "musicbrainz", "name": "MusicBrainz", "clientId": "c", "clientSecret": "s"}
	s.want(s.call(nil, http.MethodPost, "/api/admin/connectors", ops, mb), http.StatusOK)
	if r := s.call(nil, http.MethodPost, "/api/admin/connectors", ops, mb); r.status != http.StatusConflict {
		t.Fatalf("duplicate connector: %d %s, want 409", r.status, r.raw)
	}
	for _, tc := range []struct {
		change map[string]any
		want   string
	}{
		{map[string]any{"id": "k", "kind": "saml"}, "kind must be musicbrainz or oidc"},
		{map[string]any{"id": "u", "baseUrl": "http://mb.example"}, "baseUrl must be an https URL"},
		{map[string]any{"id": "o", "kind": "oidc"}, "issuer is required"},
	} {
		body := map[string]any{}
		for k, v := range mb {
			body[k] = v
		}
		for k, v := range tc.change {
			body[k] = v
		}
		r := s.call(nil, http.MethodPost, "/api/admin/connectors", ops, body)
		if r.status != http.StatusBadRequest || !strings.HasPrefix(r.errMsg(), tc.want) || strings.Contains(r.errMsg(), "--") {
			t.Errorf("%v: %d %s, want 400 %q", tc.change, r.status, r.raw, tc.want)
		}
	}
}

// Of many admins claiming one scope at once, every loser gets the 409 that
// coming second gets, never a 400.
func TestRound4ErrAPIScopeRace(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		apiScopeRace(t, startE2E(t, dbURL, options{}))
	})
}

func apiScopeRace(t *testing.T, s *server) {
	ops := s.opsToken()
	const n = 20
	statuses := make([]int, n)
	raws := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := s.call(nil, http.MethodPost, "/api/admin/apis", ops, map[string]any{
				"id": fmt.Sprintf("https://api.example.org/race%d", i), "scopes": []map[string]string{{"name": "race:read"}}})
			statuses[i], raws[i] = r.status, r.raw
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for i, st := range statuses {
		switch st {
		case http.StatusOK:
			won++
		case http.StatusConflict:
		default:
			t.Errorf("claim %d: %d %s, want 200 or 409", i, st, raws[i])
		}
	}
	if won != 1 {
		t.Fatalf("%d claims won: %v", won, statuses)
	}
}
