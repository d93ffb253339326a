// Package clientkeystest makes the keys, key sets and signed JWTs a client
// would, for tests of what tonearm verifies (private_key_jwt assertions,
// request objects). It signs with go-jose v4, as client libraries do.
package clientkeystest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// Key is a client's signing key.
type Key struct {
	Alg     jose.SignatureAlgorithm
	Private crypto.Signer
	KID     string
}

// NewKey makes a key for alg (RS256 and PS256: RSA 2048; ES256: P-256;
// EdDSA: Ed25519) named kid.
func NewKey(t testing.TB, alg jose.SignatureAlgorithm, kid string) Key {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.RS256, jose.PS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("clientkeystest: no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return Key{Alg: alg, Private: priv, KID: kid}
}

// Public is the key as a client publishes it.
func (k Key) Public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.KID, Use: "sig", Algorithm: string(k.Alg)}
}

// JWKS is the JSON Web Key Set document of keys' public halves.
func JWKS(t testing.TB, keys ...Key) string {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.Public())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Sign signs payload as a compact JWS with typ JWT (and kid when set).
func (k Key) Sign(t testing.TB, payload []byte) string {
	t.Helper()
	return k.SignTyped(t, "JWT", payload)
}

// SignTyped is Sign with the header's typ set to typ (RFC 9101's
// oauth-authz-req+jwt, or the type of another kind of JWT).
func (k Key) SignTyped(t testing.TB, typ string, payload []byte) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Alg, Key: jose.JSONWebKey{Key: k.Private, KeyID: k.KID}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// SignClaims signs claims as a JWT.
func (k Key) SignClaims(t testing.TB, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return k.Sign(t, payload)
}
