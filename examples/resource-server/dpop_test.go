package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// proofKey is a client's DPoP key pair.
type proofKey struct {
	alg  jose.SignatureAlgorithm
	priv any
	pub  jose.JSONWebKey
}

func newProofKey(t *testing.T) proofKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return proofKey{jose.ES256, k, jose.JSONWebKey{Key: &k.PublicKey}}
}

// jkt is the key's RFC 7638 thumbprint, as tonearm puts it in cnf.jkt.
func (k proofKey) jkt(t *testing.T) string {
	tp, err := k.pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// proof signs a DPoP proof (RFC 9449 §4.2) with claims, the way a client
// library does; header overrides the protected header (typ, jwk).
func (k proofKey) proof(t *testing.T, claims map[string]any, header map[jose.HeaderKey]any) string {
	t.Helper()
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"typ": "dpop+jwt", "jwk": k.pub}}
	for h, v := range header {
		opts.ExtraHeaders[h] = v
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ath(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func jti() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// The proof checks of RFC 9449 §4.3, one hole each: a proof that is good
// but for one thing is refused, and a good one is accepted once.
func TestProofChecks(t *testing.T) {
	const token = "an-access-token"
	now := time.Now()
	v := &Verifier{URL: "http://api.example.test:9090", Now: func() time.Time { return now }}
	key := newProofKey(t)
	good := func() map[string]any {
		return map[string]any{"jti": jti(), "htm": "GET", "htu": "http://api.example.test:9090/listens", "iat": now.Unix(), "ath": ath(token)}
	}
	with := func(k string, val any) map[string]any {
		c := good()
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	edKey := proofKey{jose.EdDSA, edPriv, jose.JSONWebKey{Key: edPriv.Public()}}
	ecPriv := key.priv.(*ecdsa.PrivateKey)
	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("a-shared-secret-of-32-bytes-long")},
		(&jose.SignerOptions{}).WithType("dpop+jwt").WithHeader("jwk", key.pub))
	hsPayload, _ := json.Marshal(good())
	hsObj, _ := hs.Sign(hsPayload)
	hsProof, _ := hsObj.CompactSerialize()
	replayed := key.proof(t, good(), nil)

	for _, c := range []struct {
		name    string
		method  string
		url     string
		proofs  []string
		wantErr bool
	}{
		{"a good proof", "GET", "/listens", []string{key.proof(t, good(), nil)}, false},
		{"a good EdDSA proof", "GET", "/listens", []string{edKey.proof(t, good(), nil)}, false},
		{"htu with a query and another case of host", "GET", "/listens?page=2", []string{key.proof(t, with("htu", "HTTP://API.example.test:9090/listens?page=2"), nil)}, false},
		{"a proof, first time", "GET", "/listens", []string{replayed}, false},
		{"the same proof again", "GET", "/listens", []string{replayed}, true},
		{"no proof", "GET", "/listens", nil, true},
		{"two proofs", "GET", "/listens", []string{key.proof(t, good(), nil), key.proof(t, good(), nil)}, true},
		{"a proof for another URL", "GET", "/listens", []string{key.proof(t, with("htu", "http://api.example.test:9090/other"), nil)}, true},
		{"a proof for another host", "GET", "/listens", []string{key.proof(t, with("htu", "http://evil.example.test:9090/listens"), nil)}, true},
		{"a proof for another method", "DELETE", "/listens", []string{key.proof(t, good(), nil)}, true},
		{"a proof for another token (ath)", "GET", "/listens", []string{key.proof(t, with("ath", ath("another-token")), nil)}, true},
		{"no ath", "GET", "/listens", []string{key.proof(t, with("ath", nil), nil)}, true},
		{"no jti", "GET", "/listens", []string{key.proof(t, with("jti", nil), nil)}, true},
		{"a huge proof", "GET", "/listens", []string{key.proof(t, with("pad", strings.Repeat("x", 60<<10)), nil)}, true},
		{"an expired proof", "GET", "/listens", []string{key.proof(t, with("iat", now.Add(-2*time.Minute).Unix()), nil)}, true},
		{"a proof from the future", "GET", "/listens", []string{key.proof(t, with("iat", now.Add(time.Minute).Unix()), nil)}, true},
		{"typ JWT", "GET", "/listens", []string{key.proof(t, good(), map[jose.HeaderKey]any{"typ": "JWT"})}, true},
		{"no jwk", "GET", "/listens", []string{key.proof(t, good(), map[jose.HeaderKey]any{"jwk": nil})}, true},
		{"a private jwk", "GET", "/listens", []string{key.proof(t, good(), map[jose.HeaderKey]any{"jwk": jose.JSONWebKey{Key: ecPriv}})}, true},
		{"signed by another key than its jwk", "GET", "/listens", []string{newProofKey(t).proof(t, good(), map[jose.HeaderKey]any{"jwk": key.pub})}, true},
		{"HS256", "GET", "/listens", []string{hsProof}, true},
		{"alg none", "GET", "/listens", []string{segment(map[string]any{"alg": "none", "typ": "dpop+jwt", "jwk": key.pub}) + "." + segment(good()) + "."}, true},
	} {
		r := httptest.NewRequest(c.method, "http://127.0.0.1:9090"+c.url, nil)
		for _, p := range c.proofs {
			r.Header.Add("DPoP", p)
		}
		jkt, err := v.CheckProof(r, token)
		switch {
		case c.wantErr && !errors.Is(err, ErrInvalidProof):
			t.Errorf("%s: accepted (%v)", c.name, err)
		case !c.wantErr && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !c.wantErr && jkt != key.jkt(t) && jkt != edKey.jkt(t):
			t.Errorf("%s: jkt %q", c.name, jkt)
		}
	}
}

// RFC 9449 §7.1: the token's cnf.jkt must be the proof's key, and a
// DPoP-bound token is not a bearer token.
func TestBinding(t *testing.T) {
	const token = "an-access-token"
	v := &Verifier{URL: "http://127.0.0.1:9090"}
	owner, thief := newProofKey(t), newProofKey(t)
	bound := Token{Claims: map[string]any{"cnf": map[string]any{"jkt": owner.jkt(t)}}}
	plain := Token{Claims: map[string]any{}}
	req := func(p proofKey) *http.Request {
		r := httptest.NewRequest("GET", "http://127.0.0.1:9090/listens", nil)
		r.Header.Set("DPoP", p.proof(t, map[string]any{"jti": jti(), "htm": "GET", "htu": "http://127.0.0.1:9090/listens", "iat": time.Now().Unix(), "ath": ath(token)}, nil))
		return r
	}
	if err := v.checkBinding(req(owner), "DPoP", token, bound); err != nil {
		t.Errorf("the owner's proof: %v", err)
	}
	if err := v.checkBinding(req(thief), "DPoP", token, bound); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("a thief's own key: %v", err)
	}
	if err := v.checkBinding(httptest.NewRequest("GET", "/listens", nil), "Bearer", token, bound); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("a bound token as a bearer token: %v", err)
	}
	if err := v.checkBinding(httptest.NewRequest("GET", "/listens", nil), "Bearer", token, plain); err != nil {
		t.Errorf("a bearer token: %v", err)
	}
	if err := v.checkBinding(req(owner), "DPoP", token, plain); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("an unbound token under DPoP: %v", err)
	}
}
