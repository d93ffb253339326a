// Package totp implements time-based one-time passwords (RFC 6238) as
// authenticator apps use them: HMAC-SHA-1, 6 digits, 30-second steps,
// one step of clock drift either side, and the otpauth:// URI their QR
// codes carry. Standard library only.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Parameters every common authenticator app supports.
const (
	Digits    = 6
	Period    = 30 * time.Second
	SecretLen = 20 // bytes: 160 bits, RFC 4226's recommendation
	// Skew is how many steps before or after now a code may be from.
	Skew = 1
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a random key.
func NewSecret() []byte {
	b := make([]byte, SecretLen)
	_, _ = rand.Read(b)
	return b
}

// Base32 is the key as people type it into an app.
func Base32(secret []byte) string { return b32.EncodeToString(secret) }

// Step is the time step of t.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// Code is the code of a step (RFC 4226 §5.3 dynamic truncation).
func Code(secret []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1_000_000)
}

// Match returns the step within Skew of now whose code is code, later
// than after (a step already used is never accepted again), or ok=false.
func Match(secret []byte, code string, now time.Time, after int64) (step int64, ok bool) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != Digits {
		return 0, false
	}
	cur := Step(now)
	// Every candidate is computed, so the time taken does not say which
	// step matched.
	for s := cur - Skew; s <= cur+Skew; s++ {
		if subtle.ConstantTimeCompare([]byte(Code(secret, s)), []byte(code)) == 1 && s > after && !ok {
			step, ok = s, true
		}
	}
	return step, ok
}

// URI is the otpauth:// URI an authenticator app reads from the QR code.
func URI(issuer, account string, secret []byte) string {
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	q := url.Values{"secret": {Base32(secret)}, "issuer": {issuer}, "algorithm": {"SHA1"}, "digits": {fmt.Sprint(Digits)}, "period": {fmt.Sprint(int(Period / time.Second))}}
	return "otpauth://totp/" + label + "?" + q.Encode()
}
