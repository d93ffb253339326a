package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/tonearm-idp/tonearm/fault"
)

// HashParams are argon2id's cost parameters. They are stored with every hash
// (PHC string format), so raising them later only affects new hashes; old
// ones are re-hashed at the next successful login.
type HashParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultHashParams follow OWASP's first argon2id recommendation (46 MiB,
// one pass, one lane): about 57 ms on one core of the reference machine.
// One lane per hash lets the server run one hash per core at once, which is
// what sets the login rate; memory-hardness comes from the 46 MiB.
var DefaultHashParams = HashParams{Memory: 46 * 1024, Time: 1, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// Limits on parameters read back from a stored hash, so a tampered row
	// cannot make one login allocate gigabytes.
	maxMemory  = 1 << 20 // 1 GiB
	maxTime    = 16
	maxThreads = 16
)

// ErrBusy reports that the hashing queue is full: the server is already
// hashing as many passwords as it has cores and too many are waiting.
// It asks to try again in a second: a hash takes tens of milliseconds.
var ErrBusy = fault.New(fault.Unavailable, "accounts: too many password checks in progress").
	Saying("Too many sign-ins in progress; try again shortly").After(time.Second)

// Hasher hashes and verifies passwords with argon2id. At most maxConcurrent
// hashes run at once and at most maxWaiting more queue behind them, so a
// burst of logins uses bounded memory (maxConcurrent × Memory) instead of
// one allocation per request.
type Hasher struct {
	params  HashParams
	running chan struct{}
	waiting chan struct{}
	dummy   string
	// verified counts the passwords compared: what the sign-in limits
	// bound, read by Verified.
	verified atomic.Int64
}

// NewHasher returns a Hasher. maxConcurrent ≤ 0 means GOMAXPROCS.
func NewHasher(p HashParams, maxConcurrent, maxWaiting int) *Hasher {
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.GOMAXPROCS(0)
	}
	if maxWaiting < 0 {
		maxWaiting = 0
	}
	h := &Hasher{
		params:  p,
		running: make(chan struct{}, maxConcurrent),
		waiting: make(chan struct{}, maxConcurrent+maxWaiting),
	}
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	h.dummy = encodeHash(p, salt, argon2.IDKey([]byte("tonearm dummy password"), salt, p.Time, p.Memory, p.Threads, keyLen))
	return h
}

// Params reports the parameters new hashes use.
func (h *Hasher) Params() HashParams { return h.params }

// InFlight reports how many hashes are running and how many wait for a
// slot.
func (h *Hasher) InFlight() (running, waiting int) {
	r := len(h.running)
	return r, max(len(h.waiting)-r, 0)
}

// Verified reports how many passwords Verify has compared with a hash
// since the Hasher was made (the guesses that got past the sign-in limits
// and cost a hash).
func (h *Hasher) Verified() int64 { return h.verified.Load() }

// acquire takes a hashing slot, waiting while the context lives.
func (h *Hasher) acquire(ctx context.Context) (release func(), err error) {
	select {
	case h.waiting <- struct{}{}:
	default:
		return nil, ErrBusy
	}
	select {
	case h.running <- struct{}{}:
		return func() { <-h.running; <-h.waiting }, nil
	case <-ctx.Done():
		<-h.waiting
		return nil, ctx.Err()
	}
}

// Hash returns the PHC-formatted argon2id hash of password with a fresh salt.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	p := h.params
	return encodeHash(p, salt, argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)), nil
}

// Verify reports whether password matches encoded, and whether encoded uses
// parameters other than the current ones (so the caller may re-hash). An
// empty encoded (unknown user) is checked against a dummy hash, so that it
// costs the same as a wrong password and always fails.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (ok, stale bool, err error) {
	unknown := encoded == ""
	if unknown {
		encoded = h.dummy
	}
	p, salt, want, err := decodeHash(encoded)
	if err != nil {
		return false, false, err
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	h.verified.Add(1)
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	match := subtle.ConstantTimeCompare(got, want) == 1
	return match && !unknown, p != h.params, nil
}

func encodeHash(p HashParams, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

var errBadHash = errors.New("accounts: stored password hash is malformed")

func decodeHash(encoded string) (HashParams, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return HashParams{}, nil, nil, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return HashParams{}, nil, nil, errBadHash
	}
	var p HashParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return HashParams{}, nil, nil, errBadHash
	}
	if p.Memory < 8 || p.Memory > maxMemory || p.Time < 1 || p.Time > maxTime || p.Threads < 1 || p.Threads > maxThreads {
		return HashParams{}, nil, nil, errBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return HashParams{}, nil, nil, errBadHash
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return HashParams{}, nil, nil, errBadHash
	}
	return p, salt, key, nil
}
