package clients

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// keyAlgs are the alg values a client's key may carry, by its kty (RFC
// 7518 §3.1, RFC 8037 §3.1): what tonearm verifies with that kind of key.
// "Ed25519" is RFC 9864's fully-specified name of EdDSA over Ed25519.
var keyAlgs = map[string][]string{
	"RSA": {"RS256", "PS256"},
	"EC":  {"ES256"},
	"OKP": {"EdDSA", "Ed25519"},
}

// checkKeyUse refuses a key of a client's JWK Set (already checked by
// checkJWKS: public RSA, EC P-256 or Ed25519 keys) that no assertion or
// request object could ever be verified with, so the client learns it at
// registration rather than from every sign-in failing: an alg (RFC 7517
// §4.4) that its key type cannot sign or tonearm does not verify, a use
// (§4.2) other than sig, key_ops (§4.3) without verify.
func checkKeyUse(doc string) error {
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(doc), &set); err != nil {
		return invalid("jwks must be a JWK Set")
	}
	for i, key := range set.Keys {
		if err := checkOneKeyUse(i+1, key); err != nil {
			return err
		}
	}
	return nil
}

func checkOneKeyUse(n int, key map[string]any) error {
	kty, _ := key["kty"].(string)
	if v, ok := key["alg"]; ok {
		alg, _ := v.(string)
		fits := keyAlgs[kty]
		switch {
		case slices.Contains(fits, alg):
		case isKnownAlg(alg):
			return invalid("jwks key %d is an %s key with alg %q: an %s key signs %s", n, kty, alg, kty, strings.Join(fits, " or "))
		default:
			return invalid("jwks key %d has alg %s: tonearm verifies RS256, PS256 (RSA keys), ES256 (EC P-256) and EdDSA (Ed25519)", n, quoted(v))
		}
	}
	if v, ok := key["use"]; ok && v != "sig" {
		return invalid("jwks key %d has use %s: a client's keys sign (use \"sig\", or leave use out)", n, quoted(v))
	}
	if v, ok := key["key_ops"]; ok {
		ops, _ := v.([]any)
		if !slices.Contains(ops, any("verify")) {
			return invalid("jwks key %d has key_ops %s without \"verify\": tonearm verifies the client's signatures with it", n, quoted(v))
		}
	}
	return nil
}

func isKnownAlg(alg string) bool {
	for _, algs := range keyAlgs {
		if slices.Contains(algs, alg) {
			return true
		}
	}
	return false
}

// quoted is a member's JSON value as the client wrote it, for a message.
func quoted(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return shortURI(string(b))
}
