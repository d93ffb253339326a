// Package device keeps the codes of the Device Authorization Grant (RFC
// 8628): a device asks for a device code and a user code, the person types
// the user code on /device and decides, and the device polls the token
// endpoint with its device code. Both codes are stored only as keyed
// hashes; user codes are 8 letters of an alphabet without look-alikes.
package device

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

// Store is what the device codes need from storage.
type Store interface {
	CreateDeviceCode(ctx context.Context, d storage.DeviceCode) error
	GetDeviceCodeByUserCode(ctx context.Context, userCodeHash []byte) (storage.DeviceCode, error)
	DecideDeviceCode(ctx context.Context, userCodeHash []byte, userID string, granted []string, authTime time.Time, amr []string, now time.Time) error
	PollDeviceCode(ctx context.Context, deviceCodeHash []byte, now time.Time) (storage.DeviceCode, bool, error)
	ConsumeDeviceCode(ctx context.Context, deviceCodeHash []byte) error
}

// Lifespan of a device authorization, and the polling interval it starts
// with (RFC 8628 §3.2 suggests 5 s).
const (
	Lifespan = 10 * time.Minute
	Interval = 5 * time.Second
)

// Alphabet of user codes: consonants only (no vowels, so no words; no
// letters that look like digits or like each other). 20^8 ≈ 2.6·10^10
// codes, against a lookup limit per address.
const Alphabet = "BCDFGHJKLMNPQRSTVWXZ"

// UserCodeLength is the number of letters of a user code.
const UserCodeLength = 8

// ErrNotFound: no pending, unexpired authorization has this user code.
var ErrNotFound = errors.New("device: no pending authorization with this code")

// Codes issues and resolves device authorizations.
type Codes struct {
	store Store
	key   []byte
	now   func() time.Time
}

// New returns the codes; key (32 bytes) keys the stored hashes.
func New(store Store, key []byte, now func() time.Time) (*Codes, error) {
	if store == nil || len(key) < 32 {
		return nil, errors.New("device: a store and a 32-byte key are required")
	}
	if now == nil {
		now = time.Now
	}
	return &Codes{store: store, key: key, now: now}, nil
}

func (c *Codes) hash(kind, code string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(kind + ":" + code))
	return m.Sum(nil)
}

// Authorization is a new device authorization as the device gets it.
type Authorization struct {
	DeviceCode string
	UserCode   string // XXXX-XXXX
	ExpiresIn  time.Duration
	Interval   time.Duration
}

// Start makes a device authorization for a client.
func (c *Codes) Start(ctx context.Context, clientID string, scopes, resources []string) (Authorization, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Authorization{}, err
	}
	deviceCode := base64.RawURLEncoding.EncodeToString(raw)
	now := c.now().UTC()
	for attempt := 0; ; attempt++ {
		user, err := newUserCode()
		if err != nil {
			return Authorization{}, err
		}
		err = c.store.CreateDeviceCode(ctx, storage.DeviceCode{
			DeviceCodeHash: c.hash("device", deviceCode), UserCodeHash: c.hash("user", user), ClientID: clientID,
			Scopes: scopes, Resources: resources, RequestedAt: now, ExpiresAt: now.Add(Lifespan), Interval: Interval,
		})
		if errors.Is(err, storage.ErrAlreadyExists) && attempt < 3 {
			continue // a live user code drawn twice
		}
		if err != nil {
			return Authorization{}, err
		}
		return Authorization{DeviceCode: deviceCode, UserCode: Format(user), ExpiresIn: Lifespan, Interval: Interval}, nil
	}
}

func newUserCode() (string, error) {
	b := make([]byte, UserCodeLength)
	out := make([]byte, UserCodeLength)
	for i := 0; i < UserCodeLength; {
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		for _, x := range b {
			// 240 = 12·20: drop the bytes that would bias the draw.
			if x < 240 && i < UserCodeLength {
				out[i] = Alphabet[int(x)%len(Alphabet)]
				i++
			}
		}
	}
	return string(out), nil
}

// Format writes a user code as XXXX-XXXX.
func Format(code string) string { return code[:4] + "-" + code[4:] }

// Normalize reads what a person typed: case, spaces and dashes do not
// matter. ok is false when it cannot be a user code.
func Normalize(typed string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToUpper(typed) {
		switch {
		case r == '-' || r == ' ':
		case strings.ContainsRune(Alphabet, r):
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	code := b.String()
	return code, len(code) == UserCodeLength
}

// Lookup finds the pending, unexpired authorization of a typed user code.
func (c *Codes) Lookup(ctx context.Context, typed string) (storage.DeviceCode, error) {
	code, ok := Normalize(typed)
	if !ok {
		return storage.DeviceCode{}, ErrNotFound
	}
	d, err := c.store.GetDeviceCodeByUserCode(ctx, c.hash("user", code))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (d.Status != storage.DevicePending || !c.now().Before(d.ExpiresAt))) {
		return storage.DeviceCode{}, ErrNotFound
	}
	return d, err
}

// Decide records a person's answer: approved by userID with the granted
// scopes (userID "": denied).
func (c *Codes) Decide(ctx context.Context, typed, userID string, granted []string, authTime time.Time, amr []string) error {
	code, ok := Normalize(typed)
	if !ok {
		return ErrNotFound
	}
	err := c.store.DecideDeviceCode(ctx, c.hash("user", code), userID, granted, authTime, amr, c.now())
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

// Poll records a device's poll of its device code and returns the
// authorization and whether the poll came too fast.
func (c *Codes) Poll(ctx context.Context, deviceCode string) (storage.DeviceCode, bool, error) {
	d, fast, err := c.store.PollDeviceCode(ctx, c.hash("device", deviceCode), c.now())
	if errors.Is(err, storage.ErrNotFound) {
		return d, false, ErrNotFound
	}
	return d, fast, err
}

// Consume spends an approved device code: it yields tokens once.
func (c *Codes) Consume(ctx context.Context, deviceCode string) error {
	err := c.store.ConsumeDeviceCode(ctx, c.hash("device", deviceCode))
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	return nil
}

// Now is the codes' clock.
func (c *Codes) Now() time.Time { return c.now() }
