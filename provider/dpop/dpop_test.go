package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// usedKeys is a narrow stand-in for storage.UseOnce (the real one is in
// the storage conformance suite and the end-to-end tests).
type usedKeys struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

var errUsed = errors.New("used")

func (u *usedKeys) UseOnce(_ context.Context, key string, now, until time.Time) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if t, ok := u.seen[key]; ok && now.Before(t) {
		return errUsed
	}
	u.seen[key] = until
	return nil
}

func newVerifier(t testing.TB, nonceKey []byte, now func() time.Time) *Verifier {
	v, err := New(Config{Once: &usedKeys{seen: map[string]time.Time{}}, IsReplay: func(err error) bool { return errors.Is(err, errUsed) }, NonceKey: nonceKey, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const tokenURL = "https://id.example/oauth2/token"

func TestCheck(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := newVerifier(t, nil, nil)
	ctx := context.Background()
	proof, err := MakeProof(key, jose.ES256, ProofClaims{Method: "POST", URL: tokenURL})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Check(ctx, proof, Request{Method: "POST", URL: "HTTPS://ID.example:443/oauth2/token?x=1"})
	if err != nil {
		t.Fatalf("valid proof refused: %v", err)
	}
	if want, _ := Thumbprint(&key.PublicKey); p.JKT != want {
		t.Fatalf("jkt %q, want %q", p.JKT, want)
	}
	if _, err := v.Check(ctx, proof, Request{Method: "POST", URL: tokenURL}); err == nil {
		t.Fatal("a replayed proof was accepted")
	}
	refused := map[string]struct {
		claims ProofClaims
		req    Request
	}{
		"other method": {ProofClaims{Method: "GET", URL: tokenURL}, Request{Method: "POST", URL: tokenURL}},
		"other url":    {ProofClaims{Method: "POST", URL: "https://id.example/oauth2/userinfo"}, Request{Method: "POST", URL: tokenURL}},
		"other host":   {ProofClaims{Method: "POST", URL: "https://evil.example/oauth2/token"}, Request{Method: "POST", URL: tokenURL}},
		"expired":      {ProofClaims{Method: "POST", URL: tokenURL, IssuedAt: time.Now().Add(-2 * time.Minute)}, Request{Method: "POST", URL: tokenURL}},
		"future":       {ProofClaims{Method: "POST", URL: tokenURL, IssuedAt: time.Now().Add(time.Minute)}, Request{Method: "POST", URL: tokenURL}},
		"wrong ath":    {ProofClaims{Method: "GET", URL: tokenURL, AccessToken: "other"}, Request{Method: "GET", URL: tokenURL, AccessToken: "token"}},
		"missing ath":  {ProofClaims{Method: "GET", URL: tokenURL}, Request{Method: "GET", URL: tokenURL, AccessToken: "token"}},
	}
	for name, c := range refused {
		proof, err := MakeProof(key, jose.ES256, c.claims)
		if err != nil {
			t.Fatal(err)
		}
		var de *Error
		if _, err := v.Check(ctx, proof, c.req); !errors.As(err, &de) || de.Code != ErrInvalidProof {
			t.Errorf("%s: %v, want invalid_dpop_proof", name, err)
		}
	}
}

func TestFromHeader(t *testing.T) {
	h := http.Header{}
	if p, err := FromHeader(h); p != "" || err != nil {
		t.Fatal(p, err)
	}
	h.Add(HeaderName, "a.b.c")
	h.Add(HeaderName, "d.e.f")
	if _, err := FromHeader(h); err == nil {
		t.Fatal("two DPoP headers accepted")
	}
}

func TestNonce(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := newVerifier(t, []byte(strings.Repeat("k", 32)), clock)
	proof, _ := MakeProof(key, jose.ES256, ProofClaims{Method: "POST", URL: tokenURL, IssuedAt: now})
	var de *Error
	if _, err := v.Check(context.Background(), proof, Request{Method: "POST", URL: tokenURL}); !errors.As(err, &de) || de.Code != ErrUseNonce || de.Nonce == "" {
		t.Fatalf("a proof without a nonce: %v, want use_dpop_nonce with a nonce", err)
	}
	nonce := de.Nonce
	// Another replica (same key) accepts it, in this slot and the next.
	other := newVerifier(t, []byte(strings.Repeat("k", 32)), clock)
	now = now.Add(nonceSlot)
	proof, _ = MakeProof(key, jose.ES256, ProofClaims{Method: "POST", URL: tokenURL, IssuedAt: now, Nonce: nonce})
	if _, err := other.Check(context.Background(), proof, Request{Method: "POST", URL: tokenURL}); err != nil {
		t.Fatalf("a fresh nonce refused: %v", err)
	}
	now = now.Add(nonceSlot)
	proof, _ = MakeProof(key, jose.ES256, ProofClaims{Method: "POST", URL: tokenURL, IssuedAt: now, Nonce: nonce})
	if _, err := other.Check(context.Background(), proof, Request{Method: "POST", URL: tokenURL}); !errors.As(err, &de) || de.Code != ErrUseNonce {
		t.Fatalf("a stale nonce: %v, want use_dpop_nonce", err)
	}
}

// BenchmarkDPoPProofCheck is what a proof costs the server: one ES256
// verification, the thumbprint, and the jti record (here in memory; in
// the server one INSERT).
func BenchmarkDPoPProofCheck(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := newVerifier(b, nil, nil)
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i], _ = MakeProof(key, jose.ES256, ProofClaims{Method: "POST", URL: tokenURL})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Check(context.Background(), proofs[i], Request{Method: "POST", URL: tokenURL}); err != nil {
			b.Fatal(err)
		}
	}
}

// Found from outside (issue 34): iat is a JSON number (RFC 7519
// NumericDate); a proof that writes it as a string is refused.
func TestIATMustBeANumber(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	payload := fmt.Sprintf(`{"jti":"j-1","htm":"POST","htu":%q,"iat":"%d"}`, tokenURL, time.Now().Unix())
	jws, err := signer.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	proof, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	var de *Error
	if _, err := newVerifier(t, nil, nil).Check(context.Background(), proof, Request{Method: "POST", URL: tokenURL}); !errors.As(err, &de) || de.Code != ErrInvalidProof {
		t.Fatalf("a string iat: %v, want invalid_dpop_proof", err)
	}
}
