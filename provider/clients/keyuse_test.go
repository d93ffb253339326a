package clients

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/fault"
)

// A key no assertion could be verified with (an alg its type cannot sign
// or tonearm does not verify, use enc, key_ops without verify) is refused
// at registration, with the key and the reason named.
func TestKeysUsability(t *testing.T) {
	ctx := context.Background()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	// with sets members of the only key of a set ("use" is jwksOf's sig).
	with := func(key any, members string) string {
		set := jwksOf(t, key)
		return strings.Replace(set, `"use":"sig"`, members, 1)
	}
	r, _ := newRegistry(t)
	for _, tc := range []struct {
		name, jwks, want string // want "": accepted
	}{
		{"EC ES256", with(&p256.PublicKey, `"use":"sig","alg":"ES256"`), ""},
		{"RSA RS256", with(&rsaKey.PublicKey, `"alg":"RS256"`), ""},
		{"RSA PS256", with(&rsaKey.PublicKey, `"alg":"PS256"`), ""},
		{"Ed25519 EdDSA", with(edPub, `"alg":"EdDSA"`), ""},
		{"Ed25519 by RFC 9864's name", with(edPub, `"alg":"Ed25519"`), ""},
		{"no use, no alg", with(edPub, `"ext":true`), ""},
		{"key_ops verify", with(&p256.PublicKey, `"key_ops":["verify"]`), ""},
		{"EC key with RS256", with(&p256.PublicKey, `"alg":"RS256"`), `jwks key 1 is an EC key with alg "RS256": an EC key signs ES256`},
		{"RSA key with EdDSA", with(&rsaKey.PublicKey, `"alg":"EdDSA"`), "an RSA key signs RS256 or PS256"},
		{"Ed25519 key with ES256", with(edPub, `"alg":"ES256"`), "an OKP key signs EdDSA or Ed25519"},
		{"unsupported alg", with(&rsaKey.PublicKey, `"alg":"RS512"`), `has alg "RS512": tonearm verifies RS256, PS256`},
		{"HMAC alg", with(&p256.PublicKey, `"alg":"HS256"`), `has alg "HS256"`},
		{"use enc", with(&rsaKey.PublicKey, `"use":"enc"`), `jwks key 1 has use "enc": a client's keys sign`},
		{"key_ops without verify", with(edPub, `"key_ops":["encrypt"]`), `has key_ops ["encrypt"] without "verify"`},
		{"key_ops not a list", with(edPub, `"key_ops":"verify"`), `without "verify"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := Spec{ID: "k-" + strings.Join(strings.FieldsFunc(tc.name, func(r rune) bool { return r == ' ' || r == ',' || r == '\'' }), "-"), RedirectURIs: []string{"https://app.example/cb"},
				Keys: Keys{TokenEndpointAuthMethod: AuthPrivateKeyJWT, JWKS: tc.jwks}}
			_, _, err := r.Create(ctx, spec)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused %s: %v", tc.jwks, err)
				}
				return
			}
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Kind() != fault.Invalid || !strings.Contains(fe.Message(), tc.want) {
				t.Fatalf("Create = %v, want a refusal saying %q", err, tc.want)
			}
			if _, err := r.Get(ctx, spec.ID); err == nil {
				t.Fatal("a refused client was stored")
			}
		})
	}
}
