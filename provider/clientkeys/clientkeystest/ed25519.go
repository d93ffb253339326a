package clientkeystest

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"testing"
)

// SignEd25519 signs payload with an EdDSA key as openid-client 6 does: the
// header's alg is "Ed25519", EdDSA's fully specified name (RFC 9864), which
// go-jose cannot sign with. header adds to {"alg","kid"} (typ, say), or
// overrides them.
func (k Key) SignEd25519(t testing.TB, header map[string]any, payload []byte) string {
	t.Helper()
	priv, ok := k.Private.(ed25519.PrivateKey)
	if !ok {
		t.Fatalf("clientkeystest: %s is not an Ed25519 key", k.KID)
	}
	h := map[string]any{"alg": "Ed25519"}
	if k.KID != "" {
		h["kid"] = k.KID
	}
	for name, v := range header {
		h[name] = v
	}
	raw, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	input := b64(raw) + "." + b64(payload)
	return input + "." + b64(ed25519.Sign(priv, []byte(input)))
}
