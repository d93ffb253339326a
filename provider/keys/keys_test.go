package keys

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/sqlitetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newStore(t *testing.T) *sqlstore.Store {
	return sqlitetest.Open(t)
}

func box(t *testing.T, secret string) *seal.Box {
	b, err := seal.New(seal.DeriveKey([]byte(secret), "signing-keys"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type jwks struct {
	Keys []map[string]any `json:"keys"`
}

func published(t *testing.T, m *Manager) map[string]map[string]any {
	body, etag := m.JWKS()
	if etag == "" {
		t.Fatal("no ETag")
	}
	var set jwks
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, k := range set.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Fatalf("JWKS publishes private member %q: %v", private, k)
			}
		}
		if k["kid"] == "" || k["use"] != "sig" || (k["alg"] != RS256 && k["alg"] != ES256) {
			t.Fatalf("JWKS key lacks kid/alg/use: %v", k)
		}
		out[k["kid"].(string)] = k
	}
	return out
}

func TestKeysLifecycle(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	c := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	cfg := Config{Store: store, Box: box(t, strings.Repeat("a", 32)), Retention: 2 * time.Hour, Now: c.now}
	m, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	first := published(t, m)
	if len(first) != 2 {
		t.Fatalf("first start publishes %d keys, want one RS256 and one ES256", len(first))
	}
	rsaKey, _ := m.Signing(RS256)
	ecKey, _ := m.Signing(ES256)
	stored, _ := store.ListSigningKeys(ctx)
	for _, sk := range stored {
		if strings.Contains(string(sk.Sealed), `"d"`) {
			t.Fatal("private key stored in clear")
		}
	}

	// A second replica on the same database uses the same keys.
	m2, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r2, _ := m2.Signing(RS256); r2.KID != rsaKey.KID {
		t.Fatal("replicas disagree on the signing key")
	}

	// Rotation: new keys sign, old ones stay published until retention ends.
	c.add(time.Minute)
	if _, err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	newRSA, _ := m.Signing(RS256)
	if newRSA.KID == rsaKey.KID {
		t.Fatal("rotation did not change the RS256 signing key")
	}
	after := published(t, m)
	if len(after) != 4 || after[rsaKey.KID] == nil || after[ecKey.KID] == nil {
		t.Fatalf("after rotation the JWKS holds %d keys; want old and new", len(after))
	}
	// The other replica finds the new key by its ID without waiting.
	if k, err := m2.Lookup(ctx, newRSA.KID); err != nil || k.KID != newRSA.KID {
		c.add(minLookupRefresh)
		if k, err = m2.Lookup(ctx, newRSA.KID); err != nil || k.KID != newRSA.KID {
			t.Fatalf("replica Lookup(new kid) = %v, %v", k, err)
		}
	}
	if k, err := m.Lookup(ctx, rsaKey.KID); err != nil || k.KID != rsaKey.KID {
		t.Fatalf("old key during overlap: %v, %v", k, err)
	}
	c.add(2*time.Hour + time.Second)
	if _, err := m.Lookup(ctx, rsaKey.KID); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old key after retention = %v, want ErrUnknownKey", err)
	}
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if final := published(t, m); len(final) != 2 || final[rsaKey.KID] != nil {
		t.Fatalf("after retention the JWKS holds %d keys", len(final))
	}

	// Another secret cannot open the keys: start-up fails clearly.
	cfg.Box = box(t, strings.Repeat("b", 32))
	if _, err := New(ctx, cfg); err == nil || !strings.Contains(err.Error(), "TONEARM_SECRET") {
		t.Fatalf("wrong secret: %v", err)
	}
}

// BenchmarkRS256SignFromJWK shows why open precomputes an RSA key read
// from its JWK: without it every signature derives the CRT values again.
func BenchmarkRS256SignFromJWK(b *testing.B) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := (&jose.JSONWebKey{Key: priv, KeyID: "k", Algorithm: "RS256"}).MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("payload"))
	for _, precompute := range []bool{false, true} {
		name := "as-read"
		if precompute {
			name = "precomputed"
		}
		b.Run(name, func(b *testing.B) {
			var jwk jose.JSONWebKey
			if err := jwk.UnmarshalJSON(raw); err != nil {
				b.Fatal(err)
			}
			key := jwk.Key.(*rsa.PrivateKey)
			if precompute {
				key.Precompute()
			}
			for i := 0; i < b.N; i++ {
				if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// offers records the keys New offers the store.
type offers struct {
	Store
	n int
}

func (o *offers) EnsureSigningKey(ctx context.Context, k storage.SigningKey) (bool, error) {
	o.n++
	return o.Store.EnsureSigningKey(ctx, k)
}

// A start on a database that has its keys generates none (an RSA key is
// tens of milliseconds of CPU for every server, replica and command); the
// first start offers one of each algorithm.
func TestStartGeneratesOnlyMissingKeys(t *testing.T) {
	ctx := context.Background()
	store := &offers{Store: newStore(t)}
	cfg := Config{Store: store, Box: box(t, strings.Repeat("a", 32)), Retention: time.Hour}
	if _, err := New(ctx, cfg); err != nil || store.n != len(Algorithms) {
		t.Fatalf("first start offered %d keys (%v), want %d", store.n, err, len(Algorithms))
	}
	store.n = 0
	if _, err := New(ctx, cfg); err != nil || store.n != 0 {
		t.Fatalf("second start offered %d keys (%v), want none", store.n, err)
	}
}
