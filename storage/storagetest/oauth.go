package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

func oauthCases() []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"ClientRoundTrip", testClientRoundTrip},
		{"UpdateClient", testUpdateClient},
		{"DeleteClientRemovesItsTokens", testDeleteClient},
		{"SigningKeys", testSigningKeys},
		{"EnsureSigningKeyConcurrent", testEnsureSigningKeyConcurrent},
		{"OAuthRequestRoundTrip", testOAuthRequestRoundTrip},
		{"CreateOAuthRequestsAllOrNone", testCreateOAuthRequests},
		{"GetOAuthRequestsBySignature", testGetOAuthRequestsBySignature},
		{"SpendOAuthRequest", testSpendOAuthRequest},
		{"RotateOAuthRequestFamily", testRotateOAuthRequestFamily},
		{"TakeOAuthRequest", testTakeOAuthRequest},
		{"AccessTokenRoundTrip", testAccessTokenRoundTrip},
		{"ConcurrentTokenWrites", testConcurrentTokenWrites},
		{"ConcurrentTokenReads", testConcurrentTokenReads},
		{"DeactivateOnce", testDeactivateOnce},
		{"OpenOnce", testOpenOnce},
		{"ByRequestID", testByRequestID},
		{"DeleteExpiredOAuthRequests", testDeleteExpiredOAuthRequests},
		{"Consent", testConsent},
	}
}

func newClient(id string) storage.Client {
	return storage.Client{
		ID:                     id,
		SecretHash:             []byte{1, 2, 3},
		RedirectURIs:           []string{"https://app.example/cb", "http://127.0.0.1/cb"},
		PostLogoutRedirectURIs: []string{"https://app.example/bye"},
		GrantTypes:             []string{"authorization_code", "refresh_token"},
		ResponseTypes:          []string{"code"},
		Scopes:                 []string{"openid", "profile"},
		Audience:               []string{},
		FirstParty:             true,
		IDTokenAlg:             "RS256",
		RequestURIs:            []string{},
		SubjectType:            storage.SubjectPublic,
		CreatedAt:              now,
	}
}

// testUpdateClient: every field changes (but the ID and creation time),
// the old secret round-trips with its expiry and clears, an update's error
// changes nothing, a missing client is ErrNotFound.
func testUpdateClient(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	c := newClient("web-app")
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	expires := now.Add(time.Hour)
	got, err := s.UpdateClient(ctx, "web-app", func(x storage.Client) (storage.Client, error) {
		x.ID, x.CreatedAt = "renamed", now.Add(time.Hour) // ignored
		x.OldSecretHash, x.OldSecretExpiresAt, x.SecretHash = x.SecretHash, expires, []byte{9, 9}
		x.RedirectURIs, x.Scopes, x.FirstParty, x.Name, x.RequirePAR = []string{"https://new.example/cb"}, []string{"openid"}, false, "New name", true
		x.IDTokenAlg, x.RequireDPoP = "ES256", true
		x.TokenEndpointAuthMethod, x.JWKSURI, x.RequestObjectSigningAlg = "private_key_jwt", "https://app.example/jwks", "PS256"
		x.RequestURIs, x.SubjectType, x.SectorIdentifierURI = []string{"https://app.example/req"}, storage.SubjectPairwise, "https://app.example/sector"
		return x, nil
	})
	want := c
	want.CreatedAt = now.UTC().Truncate(time.Microsecond)
	want.OldSecretHash, want.OldSecretExpiresAt, want.SecretHash = []byte{1, 2, 3}, expires.UTC().Truncate(time.Microsecond), []byte{9, 9}
	want.RedirectURIs, want.Scopes, want.FirstParty, want.Name, want.RequirePAR = []string{"https://new.example/cb"}, []string{"openid"}, false, "New name", true
	want.IDTokenAlg, want.RequireDPoP = "ES256", true
	want.TokenEndpointAuthMethod, want.JWKSURI, want.RequestObjectSigningAlg = "private_key_jwt", "https://app.example/jwks", "PS256"
	want.RequestURIs, want.SubjectType, want.SectorIdentifierURI = []string{"https://app.example/req"}, storage.SubjectPairwise, "https://app.example/sector"
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("UpdateClient = %+v, %v\nwant %+v", got, err, want)
	}
	if read, err := s.GetClient(ctx, "web-app"); err != nil || !reflect.DeepEqual(read, want) {
		t.Fatalf("GetClient after UpdateClient = %+v, %v", read, err)
	}
	if _, err := s.GetClient(ctx, "renamed"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("UpdateClient changed the ID")
	}
	got, err = s.UpdateClient(ctx, "web-app", func(x storage.Client) (storage.Client, error) {
		x.OldSecretHash, x.OldSecretExpiresAt = nil, time.Time{}
		return x, nil
	})
	if err != nil || got.OldSecretHash != nil || !got.OldSecretExpiresAt.IsZero() {
		t.Fatalf("clearing the old secret: %+v, %v", got, err)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateClient(ctx, "web-app", func(x storage.Client) (storage.Client, error) { x.Name = "x"; return x, boom }); !errors.Is(err, boom) {
		t.Fatalf("update error = %v", err)
	}
	if read, _ := s.GetClient(ctx, "web-app"); read.Name != "New name" {
		t.Fatalf("a refused update changed the client: %+v", read)
	}
	if _, err := s.UpdateClient(ctx, "nope", func(x storage.Client) (storage.Client, error) { return x, nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UpdateClient(missing) = %v", err)
	}
}

func testClientRoundTrip(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	c := newClient("web-app")
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, c); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicate CreateClient = %v", err)
	}
	pub := newClient("a-public")
	pub.SecretHash, pub.Public, pub.FirstParty, pub.PostLogoutRedirectURIs = nil, true, false, nil
	if err := s.CreateClient(ctx, pub); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetClient(ctx, "web-app")
	if err != nil {
		t.Fatal(err)
	}
	want := c
	want.CreatedAt = now.UTC().Truncate(time.Microsecond)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetClient = %+v, want %+v", got, want)
	}
	list, err := s.ListClients(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "a-public" || !list[0].Public || len(list[0].SecretHash) != 0 ||
		list[0].PostLogoutRedirectURIs == nil || len(list[0].PostLogoutRedirectURIs) != 0 {
		t.Fatalf("ListClients = %+v, %v", list, err)
	}
	if _, err := s.GetClient(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetClient(missing) = %v", err)
	}
	if err := s.DeleteClient(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("DeleteClient(missing) = %v", err)
	}
}

func newRequest(kind, sig, requestID, client string, expires time.Time) storage.OAuthRequest {
	return storage.OAuthRequest{
		Kind: kind, Signature: sig, RequestID: requestID, RequestedAt: now, ClientID: client, Subject: "user-1",
		Scopes: []string{"openid", "offline_access"}, GrantedScopes: []string{"openid"},
		Audience: []string{}, GrantedAudience: []string{"api"},
		Form: "nonce=abcdefgh&redirect_uri=https%3A%2F%2Fapp.example%2Fcb", Session: []byte(`{"subject":"user-1"}`),
		Active: true, ExpiresAt: expires, AccessSignature: "access-sig",
	}
}

func testDeleteClient(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("owner")
	mustCreate(t, s, u)
	for _, id := range []string{"doomed", "kept"} {
		if err := s.CreateClient(ctx, newClient(id)); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveConsent(ctx, storage.Consent{UserID: u.ID, ClientID: id, Scopes: []string{"openid"}, GrantedAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateOAuthRequest(ctx, newRequest(storage.KindAccessToken, "sig-"+id, "req-"+id, id, now.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteClient(ctx, "doomed"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClient(ctx, "doomed"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("client survived DeleteClient")
	}
	if _, err := s.GetConsent(ctx, u.ID, "doomed"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("consent survived DeleteClient")
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, "sig-doomed"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("token survived DeleteClient")
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, "sig-kept"); err != nil {
		t.Fatalf("another client's token was deleted: %v", err)
	}
	if _, err := s.GetConsent(ctx, u.ID, "kept"); err != nil {
		t.Fatalf("another client's consent was deleted: %v", err)
	}
}

func testSigningKeys(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	k1 := storage.SigningKey{KID: "k1", Alg: "RS256", Sealed: []byte("sealed-1"), CreatedAt: now}
	created, err := s.EnsureSigningKey(ctx, k1)
	if err != nil || !created {
		t.Fatalf("EnsureSigningKey(first) = %v, %v", created, err)
	}
	created, err = s.EnsureSigningKey(ctx, storage.SigningKey{KID: "k1b", Alg: "RS256", Sealed: []byte("x"), CreatedAt: now})
	if err != nil || created {
		t.Fatalf("EnsureSigningKey with an active key = %v, %v; want not created", created, err)
	}
	if created, err := s.EnsureSigningKey(ctx, storage.SigningKey{KID: "e1", Alg: "ES256", Sealed: []byte("e"), CreatedAt: now}); err != nil || !created {
		t.Fatalf("EnsureSigningKey(other alg) = %v, %v", created, err)
	}
	later := now.Add(time.Hour)
	if err := s.RotateSigningKey(ctx, storage.SigningKey{KID: "k2", Alg: "RS256", Sealed: []byte("sealed-2"), CreatedAt: later}, later); err != nil {
		t.Fatal(err)
	}
	keys, err := s.ListSigningKeys(ctx)
	if err != nil || len(keys) != 3 {
		t.Fatalf("ListSigningKeys = %+v, %v", keys, err)
	}
	byKID := map[string]storage.SigningKey{}
	for _, k := range keys {
		byKID[k.KID] = k
	}
	if !byKID["k1"].RetiredAt.Equal(later.UTC().Truncate(time.Microsecond)) || !bytes.Equal(byKID["k1"].Sealed, []byte("sealed-1")) {
		t.Fatalf("rotated-out key = %+v, want retired at %v", byKID["k1"], later)
	}
	if !byKID["k2"].RetiredAt.IsZero() || !byKID["e1"].RetiredAt.IsZero() {
		t.Fatalf("rotation retired the wrong keys: %+v", keys)
	}
	if n, err := s.DeleteSigningKeysRetiredBefore(ctx, later.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("DeleteSigningKeysRetiredBefore = %d, %v; want 1", n, err)
	}
}

func testEnsureSigningKeyConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	createdCount := 0
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			created, err := s.EnsureSigningKey(ctx, storage.SigningKey{KID: "c" + string(rune('a'+i)), Alg: "RS256", Sealed: []byte("x"), CreatedAt: now})
			if err != nil {
				t.Errorf("EnsureSigningKey: %v", err)
			}
			if created {
				mu.Lock()
				createdCount++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	keys, _ := s.ListSigningKeys(ctx)
	if createdCount != 1 || len(keys) != 1 {
		t.Fatalf("%d replicas created a key, %d keys stored; want exactly one", createdCount, len(keys))
	}
}

func testOAuthRequestRoundTrip(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	r := newRequest(storage.KindRefreshToken, "sig-1", "req-1", "web-app", now.Add(time.Hour))
	if err := s.CreateOAuthRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOAuthRequest(ctx, r); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicate = %v", err)
	}
	// The same signature under another kind is another row.
	other := r
	other.Kind = storage.KindAccessToken
	if err := s.CreateOAuthRequest(ctx, other); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetOAuthRequest(ctx, storage.KindRefreshToken, "sig-1")
	if err != nil {
		t.Fatal(err)
	}
	want := r
	want.RequestedAt = now.UTC().Truncate(time.Microsecond)
	want.ExpiresAt = r.ExpiresAt.UTC().Truncate(time.Microsecond)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetOAuthRequest = %+v\nwant %+v", got, want)
	}
	if err := s.DeleteOAuthRequest(ctx, storage.KindRefreshToken, "sig-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindRefreshToken, "sig-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, "sig-1"); err != nil {
		t.Fatalf("delete of one kind removed another: %v", err)
	}
}

// testAccessTokenRoundTrip stores an access token as the provider does
// (keyed by a SHA-256 in hex, a UUID request ID) and reads back what it
// grants; a grant that is not a word is refused and writes nothing.
func testAccessTokenRoundTrip(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	sig := strings.Repeat("ab12", 16)
	r := newRequest(storage.KindAccessToken, sig, "0190f3a2-7c1e-7a3b-9f00-1234567890ab", "web-app", now.Add(time.Hour))
	r.GrantedScopes, r.GrantedAudience, r.SID = []string{"openid", "profile", "listens:read"}, []string{"https://api.example.org/listens"}, "sid-x"
	r.Session = []byte{1, 0, 0, 0, 0, 0x6a, 0x2b, 0x3c, 0x4d, 'a', 'd', 'a'}
	if err := s.CreateOAuthRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, sig)
	if err != nil {
		t.Fatal(err)
	}
	if got.RequestID != r.RequestID || got.Subject != r.Subject || got.SID != "sid-x" || got.ClientID != "web-app" ||
		!reflect.DeepEqual(got.GrantedScopes, r.GrantedScopes) || !reflect.DeepEqual(got.GrantedAudience, r.GrantedAudience) ||
		!bytes.Equal(got.Session, r.Session) || !got.ExpiresAt.Equal(r.ExpiresAt.UTC().Truncate(time.Microsecond)) || !got.Active {
		t.Fatalf("GetOAuthRequest = %+v\nwant %+v", got, r)
	}
	// Another signature finds nothing, even one sharing its first half.
	if _, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, strings.Repeat("cd34", 16)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("another signature: %v", err)
	}
	empty := newRequest(storage.KindAccessToken, strings.Repeat("ef56", 16), "req-e", "web-app", now.Add(time.Hour))
	empty.GrantedScopes, empty.GrantedAudience = []string{}, nil
	if err := s.CreateOAuthRequest(ctx, empty); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, empty.Signature); err != nil || len(got.GrantedScopes) != 0 || len(got.GrantedAudience) != 0 {
		t.Fatalf("no grants: %+v, %v", got, err)
	}
	bad := newRequest(storage.KindAccessToken, strings.Repeat("0f0f", 16), "req-b", "web-app", now.Add(time.Hour))
	bad.GrantedScopes = []string{"two words"}
	if err := s.CreateOAuthRequest(ctx, bad); err == nil {
		t.Fatal("a scope with a space was stored")
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, bad.Signature); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused token left a row: %v", err)
	}
	if err := s.DeleteOAuthRequest(ctx, storage.KindAccessToken, sig); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, sig); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

// testConcurrentTokenWrites: tokens written at once by many requests
// (outside transactions, as client credentials and authorizations write
// them; PostgreSQL combines them into multi-row INSERTs) are each stored,
// and a write that repeats a stored token's key fails alone with
// ErrAlreadyExists, leaving the stored token as it was.
func testConcurrentTokenWrites(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	sigOf := func(i int) string { return fmt.Sprintf("%08x", i) + strings.Repeat("5a", 28) } // the key is its first half
	kindOf := func(i int) string {
		if i%2 == 0 {
			return storage.KindAccessToken
		}
		return storage.KindRefreshToken
	}
	const n = 240
	for i := 0; i < n; i += 10 { // every tenth key is taken beforehand
		if err := s.CreateOAuthRequest(ctx, newRequest(kindOf(i), sigOf(i), fmt.Sprintf("req-%d", i), "first", now.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.CreateOAuthRequest(ctx, newRequest(kindOf(i), sigOf(i), fmt.Sprintf("req-%d", i), "second", now.Add(time.Hour)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		got, gerr := s.GetOAuthRequest(ctx, kindOf(i), sigOf(i))
		switch {
		case gerr != nil:
			t.Errorf("token %d: %v (write: %v)", i, gerr, err)
		case i%10 == 0 && (!errors.Is(err, storage.ErrAlreadyExists) || got.ClientID != "first"):
			t.Errorf("token %d repeated a stored key: write = %v, stored client %q; want ErrAlreadyExists and \"first\"", i, err, got.ClientID)
		case i%10 != 0 && (err != nil || got.ClientID != "second" || got.RequestID != fmt.Sprintf("req-%d", i)):
			t.Errorf("token %d: write = %v, stored %q/%q", i, err, got.ClientID, got.RequestID)
		}
	}
}

// testConcurrentTokenReads: access tokens looked up at once by many
// requests (introspections, bearer checks; PostgreSQL combines them into
// SELECTs of many keys) each get their own token, a missing or deleted one
// ErrNotFound — a token deleted before its lookup is never found.
func testConcurrentTokenReads(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	sigOf := func(i int) string { return fmt.Sprintf("%08x", i) + strings.Repeat("c3", 28) }
	const stored, asked = 50, 60 // tokens 50–59 do not exist
	for i := range stored {
		r := newRequest(storage.KindAccessToken, sigOf(i), fmt.Sprintf("req-%d", i), fmt.Sprintf("client-%d", i), now.Add(time.Hour))
		if err := s.CreateOAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < stored; i += 7 { // and every seventh is revoked
		if err := s.DeleteOAuthRequest(ctx, storage.KindAccessToken, sigOf(i)); err != nil {
			t.Fatal(err)
		}
	}
	const n = 600
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for j := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := j % asked
			got, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, sigOf(i))
			switch {
			case i >= stored || i%7 == 0:
				if !errors.Is(err, storage.ErrNotFound) {
					errs <- fmt.Errorf("token %d (missing or revoked): %+v, %v", i, got, err)
				}
			case err != nil || got.ClientID != fmt.Sprintf("client-%d", i) || got.RequestID != fmt.Sprintf("req-%d", i) || got.Signature != sigOf(i):
				errs <- fmt.Errorf("token %d: got client %q request %q, %v", i, got.ClientID, got.RequestID, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// testDeactivateOnce races concurrent deactivations of one code: exactly one
// wins (the basis of single-use codes and refresh rotation).
func testDeactivateOnce(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	if err := s.CreateOAuthRequest(ctx, newRequest(storage.KindAuthorizeCode, "code-1", "req-1", "c", now.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = s.DeactivateOAuthRequest(ctx, storage.KindAuthorizeCode, "code-1")
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, err := range results {
		if err == nil {
			wins++
		} else if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("DeactivateOAuthRequest: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent deactivations succeeded, want 1", wins)
	}
	got, err := s.GetOAuthRequest(ctx, storage.KindAuthorizeCode, "code-1")
	if err != nil || got.Active {
		t.Fatalf("deactivated code = %+v, %v; want it kept, inactive", got, err)
	}
}

// testOpenOnce: of concurrent openers of a pushed request one wins, and the
// row then expires when the winner said, so housekeeping keeps it that long
// and no longer.
func testOpenOnce(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	if err := s.CreateOAuthRequest(ctx, newRequest(storage.KindPAR, "par-1", "req-1", "c", now.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	later := now.Add(10 * time.Minute)
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = s.OpenOAuthRequest(ctx, storage.KindPAR, "par-1", later)
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, err := range results {
		if err == nil {
			wins++
		} else if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("OpenOAuthRequest: %v", err)
		}
	}
	got, err := s.GetOAuthRequest(ctx, storage.KindPAR, "par-1")
	if wins != 1 || err != nil || got.Active || !got.ExpiresAt.Equal(later.Truncate(time.Microsecond)) {
		t.Fatalf("%d openers won; the row = active %v, expires %v, %v; want 1, inactive, %v", wins, got.Active, got.ExpiresAt, err, later)
	}
	if n, err := s.DeleteExpiredOAuthRequests(ctx, now.Add(5*time.Minute), 100); err != nil || n != 0 {
		t.Fatalf("swept an opened request before its new expiry: %d, %v", n, err)
	}
	if n, err := s.DeleteExpiredOAuthRequests(ctx, later.Add(time.Second), 100); err != nil || n != 1 {
		t.Fatalf("after its expiry the sweep deleted %d, %v; want 1", n, err)
	}
}

func testByRequestID(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for _, r := range []storage.OAuthRequest{
		newRequest(storage.KindRefreshToken, "r1", "family", "c", now.Add(time.Hour)),
		newRequest(storage.KindRefreshToken, "r2", "family", "c", now.Add(time.Hour)),
		newRequest(storage.KindAccessToken, "a1", "family", "c", now.Add(time.Hour)),
		newRequest(storage.KindAccessToken, "a2", "family", "c", now.Add(time.Hour)),
		newRequest(storage.KindRefreshToken, "r3", "stranger", "c", now.Add(time.Hour)),
		newRequest(storage.KindAccessToken, "a3", "stranger", "c", now.Add(time.Hour)),
	} {
		if err := s.CreateOAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeactivateOAuthRequestsByRequestID(ctx, storage.KindRefreshToken, "family"); err != nil || n != 2 {
		t.Fatalf("DeactivateOAuthRequestsByRequestID = %d, %v; want 2", n, err)
	}
	if n, err := s.DeactivateOAuthRequestsByRequestID(ctx, storage.KindRefreshToken, "family"); err != nil || n != 0 {
		t.Fatalf("second deactivation = %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteOAuthRequestsByRequestID(ctx, storage.KindAccessToken, "family"); err != nil || n != 2 {
		t.Fatalf("DeleteOAuthRequestsByRequestID = %d, %v; want 2", n, err)
	}
	if r, err := s.GetOAuthRequest(ctx, storage.KindRefreshToken, "r3"); err != nil || !r.Active {
		t.Fatalf("another family's refresh token changed: %+v, %v", r, err)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, "a3"); err != nil {
		t.Fatalf("another family's access token deleted: %v", err)
	}
	if r, _ := s.GetOAuthRequest(ctx, storage.KindRefreshToken, "r1"); r.Active {
		t.Fatal("family refresh token still active")
	}
}

func testDeleteExpiredOAuthRequests(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for i, exp := range []time.Duration{-3 * time.Minute, -2 * time.Minute, -time.Minute, time.Minute} {
		r := newRequest(storage.KindAccessToken, "x"+string(rune('0'+i)), "r", "c", now.Add(exp))
		if err := s.CreateOAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeleteExpiredOAuthRequests(ctx, now, 2); err != nil || n != 2 {
		t.Fatalf("first batch = %d, %v; want 2", n, err)
	}
	if n, err := s.DeleteExpiredOAuthRequests(ctx, now, 10); err != nil || n != 1 {
		t.Fatalf("second batch = %d, %v; want 1", n, err)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, "x3"); err != nil {
		t.Fatalf("live token deleted: %v", err)
	}
}

func testConsent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("consenter")
	mustCreate(t, s, u)
	if err := s.CreateClient(ctx, newClient("app")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetConsent(ctx, u.ID, "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetConsent before any = %v", err)
	}
	if err := s.SaveConsent(ctx, storage.Consent{UserID: u.ID, ClientID: "app", Scopes: []string{"openid"}, GrantedAt: now}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Hour)
	if err := s.SaveConsent(ctx, storage.Consent{UserID: u.ID, ClientID: "app", Scopes: []string{"openid", "profile"}, GrantedAt: later}); err != nil {
		t.Fatal(err)
	}
	c, err := s.GetConsent(ctx, u.ID, "app")
	if err != nil || !reflect.DeepEqual(c.Scopes, []string{"openid", "profile"}) || !c.GrantedAt.Equal(later.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("GetConsent = %+v, %v; want the second grant", c, err)
	}
	if err := s.SaveConsent(ctx, storage.Consent{UserID: "ghost", ClientID: "app", Scopes: []string{"openid"}, GrantedAt: now}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("consent for a missing user = %v, want ErrNotFound", err)
	}
}
