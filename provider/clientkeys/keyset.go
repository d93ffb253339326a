package clientkeys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// ClockSkew is how far apart a client's clock and tonearm's may be: a JWT
// a client signed (an assertion, a request object) is accepted up to
// ClockSkew after its exp (RFC 7523 §3 allows "a small leeway"). Its jti
// must therefore be remembered until RememberUntil(exp), not just exp:
// otherwise, in that last ClockSkew, the stored jti has expired while the
// JWT itself still passes, and it could be replayed. One constant for the
// check and the store, so they cannot drift apart.
const ClockSkew = time.Minute

// Expired reports whether a JWT with exp is too old at now, skew allowed.
func Expired(now, exp time.Time) bool { return now.After(exp.Add(ClockSkew)) }

// RememberUntil is how long the jti of a JWT with exp must be kept for its
// single use to hold: as long as Expired still lets the JWT through.
func RememberUntil(exp time.Time) time.Time { return exp.Add(ClockSkew) }

// Limits of a client's JWK Set, registered or fetched.
const (
	MaxSetBytes = 64 << 10
	MaxSetKeys  = 20
	MinRSABits  = 2048 // RFC 7518 §3.3
)

// privateMembers are the JWK members only a private or symmetric key has
// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// CheckSet is the one rule for a client's JWK Set (RFC 7517 §5), whether
// registered inline (jwks) or fetched from its jwks_uri: public signing
// keys only (RSA of at least 2048 bits, EC P-256, Ed25519), no private or
// symmetric key (a private key published by mistake is refused, never
// used), kids unique, at most 20 keys and 64 KiB. It returns the set as
// compact JSON with its members sorted, so the same keys are stored (and
// compared) the same way whichever surface registered them. The error
// says, for an operator, what is wrong ("jwks ..." as the field is named
// at registration).
func CheckSet(doc string) (string, error) {
	if len(doc) > MaxSetBytes {
		return "", fmt.Errorf("jwks is %d bytes: at most 64 KiB", len(doc))
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(doc), &raw); err != nil || raw.Keys == nil {
		return "", fmt.Errorf("jwks must be a JWK Set: a JSON object with a \"keys\" array (RFC 7517 §5)")
	}
	switch {
	case len(raw.Keys) == 0:
		return "", fmt.Errorf("jwks has no keys")
	case len(raw.Keys) > MaxSetKeys:
		return "", fmt.Errorf("jwks has %d keys: at most %d", len(raw.Keys), MaxSetKeys)
	}
	// Before go-jose reads them: a private key must be named as such,
	// not as a key that cannot be read.
	for i, members := range raw.Keys {
		if members["kty"] == "oct" {
			return "", fmt.Errorf("jwks key %d is a symmetric (oct) key: register public keys only", i+1)
		}
		for _, m := range privateMembers {
			if _, ok := members[m]; ok {
				return "", fmt.Errorf("jwks key %d holds a private key (%q): register and publish the public key only, and keep the private key with the app", i+1, m)
			}
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(doc), &set); err != nil {
		return "", fmt.Errorf("jwks holds a key that cannot be read: %s", strings.TrimPrefix(err.Error(), "go-jose/go-jose: "))
	}
	kids := map[string]bool{}
	for i, key := range set.Keys {
		if key.KeyID != "" {
			if kids[key.KeyID] {
				return "", fmt.Errorf("jwks has two keys with kid %q: each kid must be unique", key.KeyID)
			}
			kids[key.KeyID] = true
		}
		if err := checkPublicKey(i+1, key.Key); err != nil {
			return "", err
		}
	}
	return canonicalJSON(doc)
}

// canonicalJSON is doc re-encoded compactly with object members sorted.
func canonicalJSON(doc string) (string, error) {
	var sorted any
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&sorted); err != nil {
		return "", fmt.Errorf("jwks must be a JWK Set")
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(sorted); err != nil {
		return "", fmt.Errorf("jwks must be a JWK Set")
	}
	return strings.TrimSpace(out.String()), nil
}

// checkPublicKey admits the key types tonearm verifies (RS256, PS256,
// ES256, EdDSA).
func checkPublicKey(n int, key any) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("jwks key %d is an RSA key of %d bits: at least %d", n, k.N.BitLen(), MinRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("jwks key %d is on curve %s: only P-256 (ES256) is supported", n, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("jwks key %d is not a public RSA, EC P-256 or Ed25519 key", n)
	}
	return nil
}
