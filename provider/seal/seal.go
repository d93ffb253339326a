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

// DeriveKeys derives the key of purpose from each secret, in order (the
// keys of the previous secrets, for New).
func DeriveKeys(secrets [][]byte, purpose string) [][]byte {
	out := make([][]byte, 0, len(secrets))
	for _, s := range secrets {
		out = append(out, DeriveKey(s, purpose))
	}
	return out
}

// Box seals with one key and opens with it or with one of the keys it
// replaced, so the master secret can be rotated: what the previous secret
// sealed keeps opening until Reseal has moved it to the current key.
type Box struct {
	aead     cipher.AEAD
	previous []cipher.AEAD
}

// New returns a Box that seals with a 32-byte key and also opens what the
// previous keys sealed.
func New(key []byte, previous ...[]byte) (*Box, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	b := &Box{aead: aead}
	for _, k := range previous {
		p, err := newAEAD(k)
		if err != nil {
			return nil, err
		}
		b.previous = append(b.previous, p)
	}
	return b, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("seal: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
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

// Open decrypts a value made by Seal with the same context, under the
// current key or a previous one.
func (b *Box) Open(sealed []byte, context string) ([]byte, error) {
	plain, _, err := b.open(sealed, context)
	return plain, err
}

// open also tells whether the current key opened the value.
func (b *Box) open(sealed []byte, context string) (plain []byte, current bool, err error) {
	if plain, err := openWith(b.aead, sealed, context); err == nil {
		return plain, true, nil
	}
	for _, p := range b.previous {
		if plain, err := openWith(p, sealed, context); err == nil {
			return plain, false, nil
		}
	}
	return nil, false, ErrOpen
}

func openWith(aead cipher.AEAD, sealed []byte, context string) ([]byte, error) {
	ns := aead.NonceSize()
	if len(sealed) < 1+ns+aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	plain, err := aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(context))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// Reseal returns sealed under the current key: unchanged (and false) when
// the current key already opens it, sealed again (and true) when only a
// previous key does, ErrOpen when no key does. Running it twice changes
// nothing the second time.
func (b *Box) Reseal(sealed []byte, context string) ([]byte, bool, error) {
	plain, current, err := b.open(sealed, context)
	if err != nil {
		return nil, false, err
	}
	if current {
		return sealed, false, nil
	}
	out, err := b.Seal(plain, context)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// ResealFunc returns a function that re-seals one stored value (see
// Reseal) given its owner's ID, for a storage layer that walks a column:
// context makes the value's context from that ID, and what names the kind
// of value in errors, with the ID ("TOTP secret of user 42").
func (b *Box) ResealFunc(what string, context func(id string) string) func(id string, sealed []byte) ([]byte, bool, error) {
	return func(id string, sealed []byte) ([]byte, bool, error) {
		out, changed, err := b.Reseal(sealed, context(id))
		if err != nil {
			return nil, false, fmt.Errorf("%s %s: %w", what, id, err)
		}
		return out, changed, nil
	}
}
