package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// softKey is a software WebAuthn authenticator holding one ES256 passkey,
// answering the options tonearm sends as a browser would pass them on.
// It lets HTTP-level tests play the attacker: wrong origins, replays,
// missing user verification, counters going backwards. (The browser test
// uses Chromium's own virtual authenticator.)
type softKey struct {
	t       testing.TB
	key     *ecdsa.PrivateKey
	id      []byte
	handle  []byte // the user handle the server chose
	counter uint32
	origin  string
	// noUV leaves the user-verified flag out.
	noUV bool
}

func newSoftKey(t testing.TB, origin string) *softKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	return &softKey{t: t, key: key, id: id, origin: origin, counter: 1}
}

var b64url = base64.RawURLEncoding

type webauthnOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"rp"`
		RPID string `json:"rpId"`
		User struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"user"`
		AuthenticatorSelection struct {
			ResidentKey      string `json:"residentKey"`
			UserVerification string `json:"userVerification"`
		} `json:"authenticatorSelection"`
		UserVerification string `json:"userVerification"`
		Exclude          []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
	} `json:"publicKey"`
}

func parseOptions(t testing.TB, body string) webauthnOptions {
	t.Helper()
	var o webauthnOptions
	if err := json.Unmarshal([]byte(body), &o); err != nil || o.PublicKey.Challenge == "" {
		t.Fatalf("WebAuthn options: %v\n%s", err, body)
	}
	return o
}

func (k *softKey) authData(rpID string, attested bool) []byte {
	h := sha256.Sum256([]byte(rpID))
	flags := byte(0x01) // user present
	if !k.noUV {
		flags |= 0x04
	}
	out := append([]byte{}, h[:]...)
	if attested {
		flags |= 0x40
	}
	out = append(out, flags)
	out = binary.BigEndian.AppendUint32(out, k.counter)
	if attested {
		out = append(out, make([]byte, 16)...) // AAGUID
		out = binary.BigEndian.AppendUint16(out, uint16(len(k.id)))
		out = append(out, k.id...)
		x, y := k.key.X.FillBytes(make([]byte, 32)), k.key.Y.FillBytes(make([]byte, 32))
		cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
		if err != nil {
			k.t.Fatal(err)
		}
		out = append(out, cose...)
	}
	return out
}

func (k *softKey) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": k.origin, "crossOrigin": false})
	return b
}

// create answers navigator.credentials.create.
func (k *softKey) create(o webauthnOptions) string {
	k.t.Helper()
	handle, err := b64url.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		k.t.Fatal(err)
	}
	k.handle = handle
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": k.authData(o.PublicKey.RP.ID, true)})
	if err != nil {
		k.t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{
		"id": b64url.EncodeToString(k.id), "rawId": b64url.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64url.EncodeToString(k.clientData("webauthn.create", o.PublicKey.Challenge)),
			"attestationObject": b64url.EncodeToString(att), "transports": []string{"internal"},
		},
		"clientExtensionResults": map[string]any{},
	})
	return string(b)
}

// get answers navigator.credentials.get; each use moves the counter on.
func (k *softKey) get(o webauthnOptions) string {
	k.t.Helper()
	k.counter++
	return k.sign(o.PublicKey.RPID, o.PublicKey.Challenge, k.handle)
}

func (k *softKey) sign(rpID, challenge string, handle []byte) string {
	k.t.Helper()
	auth := k.authData(rpID, false)
	cd := k.clientData("webauthn.get", challenge)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, auth...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		k.t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{
		"id": b64url.EncodeToString(k.id), "rawId": b64url.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON": b64url.EncodeToString(cd), "authenticatorData": b64url.EncodeToString(auth),
			"signature": b64url.EncodeToString(sig), "userHandle": b64url.EncodeToString(handle),
		},
		"clientExtensionResults": map[string]any{},
	})
	return string(b)
}
