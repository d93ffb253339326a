// Package seal encrypts small secrets for storage at rest (AES-256-GCM) and
// derives purpose-bound keys from TONEARM_SECRET, so that one configured
// secret never serves two purposes with the same key.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// MinSecretLen is the shortest TONEARM_SECRET accepted.
const MinSecretLen = 32

// DeriveKey returns a 32-byte key for one purpose: HMAC-SHA256 keyed by the
// master secret over a purpose label (a PRF, as HKDF's expand step).
func DeriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("tonearm/v1/" + purpose))
	return m.Sum(nil)
}

// ErrOpen reports a ciphertext that does not decrypt: wrong key, wrong
// context, or tampered bytes.
var ErrOpen = errors.New("seal: cannot open sealed value")

const version byte = 1

// Box seals and opens values with one key.
type Box struct{ aead cipher.AEAD }

// New returns a Box keyed by a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("seal: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext bound to context (for example the owning row's ID):
// a sealed value copied to another row does not open there. Output is
// version ‖ nonce ‖ ciphertext+tag.
func (b *Box) Seal(plaintext []byte, context string) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize(), 1+b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte{version}, nonce...)
	return b.aead.Seal(out, nonce, plaintext, []byte(context)), nil
}

// Open decrypts a value made by Seal with the same context.
func (b *Box) Open(sealed []byte, context string) ([]byte, error) {
	ns := b.aead.NonceSize()
	if len(sealed) < 1+ns+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	plain, err := b.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(context))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
