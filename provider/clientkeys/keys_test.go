package clientkeys

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tonearm-idp/tonearm/provider/clientkeys/clientkeystest"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
)

func TestVerifyEachAlgorithmInline(t *testing.T) {
	for _, alg := range Algorithms {
		k := clientkeystest.NewKey(t, alg, "k-"+string(alg))
		c := &fositestore.Client{JWKS: clientkeystest.JWKS(t, k)}
		c.ID = "app"
		payload, err := NewKeys(NewFetcher(FetchOptions{})).Verify(context.Background(), c, k.Sign(t, []byte("hello")), nil)
		if err != nil || string(payload) != "hello" {
			t.Fatalf("%s: Verify = %q, %v", alg, payload, err)
		}
		// Without a kid, the keys that fit are tried.
		k.KID = ""
		c.JWKS = clientkeystest.JWKS(t, clientkeystest.NewKey(t, jose.ES256, "other"), k)
		if _, err := NewKeys(nil).Verify(context.Background(), c, k.Sign(t, []byte("hello")), nil); err != nil {
			t.Fatalf("%s without kid: %v", alg, err)
		}
	}
}

func TestVerifyRefusesForgeries(t *testing.T) {
	rsaKey := clientkeystest.NewKey(t, jose.RS256, "r1")
	ecKey := clientkeystest.NewKey(t, jose.ES256, "e1")
	c := &fositestore.Client{JWKS: clientkeystest.JWKS(t, rsaKey, ecKey)}
	c.ID = "app"
	keys := NewKeys(nil)
	verify := func(compact string, algs ...jose.SignatureAlgorithm) error {
		_, err := keys.Verify(context.Background(), c, compact, algs)
		return err
	}
	// Another key under the registered kid.
	impostor := clientkeystest.NewKey(t, jose.RS256, "r1")
	if err := verify(impostor.Sign(t, []byte("x"))); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong key: %v", err)
	}
	// alg none, with or without a signature part.
	b64 := base64.RawURLEncoding.EncodeToString
	none := b64([]byte(`{"alg":"none","kid":"r1"}`)) + "." + b64([]byte("x")) + "."
	if err := verify(none); !errors.Is(err, ErrBadJWS) {
		t.Errorf("alg none: %v", err)
	}
	if err := verify(none, "none"); !errors.Is(err, ErrBadJWS) {
		t.Errorf("alg none asked for by the caller: %v", err)
	}
	// HS256 with the public key as the HMAC secret, in the forms an
	// attacker would try.
	der, _ := x509.MarshalPKIXPublicKey(rsaKey.Private.Public())
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	jwkBytes, _ := json.Marshal(rsaKey.Public())
	for _, secret := range [][]byte{der, pemBytes, jwkBytes} {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithHeader("kid", "r1"))
		jws, _ := s.Sign([]byte("x"))
		compact, _ := jws.CompactSerialize()
		if err := verify(compact); !errors.Is(err, ErrBadJWS) {
			t.Errorf("HS256 with the public key as secret: %v", err)
		}
		if err := verify(compact, jose.HS256); !errors.Is(err, ErrBadJWS) {
			t.Errorf("HS256 asked for by the caller: %v", err)
		}
	}
	// A key used with an algorithm of another family: ES256 header on the
	// RSA key's kid.
	mixed := clientkeystest.NewKey(t, jose.ES256, "r1")
	if err := verify(mixed.Sign(t, []byte("x"))); !errors.Is(err, ErrNoMatchingKey) {
		t.Errorf("ES256 on an RSA kid: %v", err)
	}
	// An algorithm the caller did not allow.
	if err := verify(ecKey.Sign(t, []byte("x")), jose.RS256); !errors.Is(err, ErrBadJWS) {
		t.Errorf("ES256 when only RS256 is allowed: %v", err)
	}
	// A symmetric key in the client's set is never used.
	c.JWKS = `{"keys":[{"kty":"oct","kid":"r1","k":"` + b64(der) + `"}]}`
	if err := verify(rsaKey.Sign(t, []byte("x"))); !errors.Is(err, ErrNoMatchingKey) {
		t.Errorf("oct key: %v", err)
	}
	c.JWKS = "not json"
	if err := verify(rsaKey.Sign(t, []byte("x"))); !errors.Is(err, ErrBadKeySet) {
		t.Errorf("bad set: %v", err)
	}
	c.JWKS = ""
	if err := verify(rsaKey.Sign(t, []byte("x"))); !errors.Is(err, ErrNoKeys) {
		t.Errorf("no keys: %v", err)
	}
}

// jwksServer serves whatever set it holds and counts fetches.
type jwksServer struct {
	mu      sync.Mutex
	body    string
	fetches atomic.Int32
}

func (s *jwksServer) serve(t *testing.T) string {
	srv, _ := countingServer(t, false, func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		_, _ = w.Write([]byte(s.body))
	})
	return srv.URL + "/jwks"
}

func (s *jwksServer) set(body string) { s.mu.Lock(); s.body = body; s.mu.Unlock() }

// A jwks_uri is cached; a rotated key (new kid) is picked up at once, and
// unknown kids refetch at most once a minute per client.
func TestVerifyJWKSURIRotationAndRefetchLimit(t *testing.T) {
	oldKey, newKey := clientkeystest.NewKey(t, jose.RS256, "2026-a"), clientkeystest.NewKey(t, jose.EdDSA, "2026-b")
	js := &jwksServer{body: clientkeystest.JWKS(t, oldKey)}
	c := &fositestore.Client{JWKSURI: js.serve(t)}
	c.ID = "app"
	keys := NewKeys(NewFetcher(FetchOptions{AllowLoopbackHTTP: true}))
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	keys.now = func() time.Time { return now }
	verify := func(k clientkeystest.Key) error {
		_, err := keys.Verify(context.Background(), c, k.Sign(t, []byte("x")), nil)
		return err
	}
	wantFetches := func(n int32) {
		t.Helper()
		if got := js.fetches.Load(); got != n {
			t.Fatalf("fetches = %d, want %d", got, n)
		}
	}
	if err := verify(oldKey); err != nil {
		t.Fatal(err)
	}
	if err := verify(oldKey); err != nil {
		t.Fatal(err)
	}
	wantFetches(1) // cached

	// The client rotates: the new kid is unknown, so the set is fetched again
	// at once.
	js.set(clientkeystest.JWKS(t, newKey))
	now = now.Add(time.Second)
	if err := verify(newKey); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	wantFetches(2)
	// Made-up kids within the minute fetch nothing more.
	for i := range 5 {
		if err := verify(clientkeystest.NewKey(t, jose.ES256, "made-up")); !errors.Is(err, ErrNoMatchingKey) {
			t.Fatalf("unknown kid %d: %v", i, err)
		}
	}
	wantFetches(2)
	// A minute later one more refetch is allowed.
	now = now.Add(RefetchInterval)
	if err := verify(clientkeystest.NewKey(t, jose.ES256, "made-up")); !errors.Is(err, ErrNoMatchingKey) {
		t.Fatal(err)
	}
	wantFetches(3)
	// The refetch limit is per client: another client refetches at once.
	other := &fositestore.Client{JWKSURI: c.JWKSURI}
	other.ID = "other"
	if _, err := keys.Verify(context.Background(), other, clientkeystest.NewKey(t, jose.ES256, "x").Sign(t, []byte("x")), nil); !errors.Is(err, ErrNoMatchingKey) {
		t.Fatal(err)
	}
	wantFetches(5) // its first fetch and its refetch
	// After CacheMaxAge the set is fetched again even for a known kid.
	now = now.Add(CacheMaxAge)
	if err := verify(newKey); err != nil {
		t.Fatal(err)
	}
	wantFetches(6)
	// A changed jwks_uri is not served from the old URL's cache.
	c.JWKSURI += "?v=2"
	if err := verify(newKey); err != nil {
		t.Fatal(err)
	}
	wantFetches(7)
	// A fetch that fails says why.
	js.set("<html>")
	now = now.Add(CacheMaxAge)
	if err := verify(newKey); !errors.Is(err, ErrBadKeySet) {
		t.Fatalf("bad body: %v", err)
	}
	c.JWKSURI = "https://10.0.0.1/jwks"
	if err := verify(newKey); !errors.Is(err, ErrFetch) {
		t.Fatalf("private jwks_uri: %v", err)
	}
}
