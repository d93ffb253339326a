package clients

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// Initial access tokens (RFC 7591 §3): a bearer token that lets its
// holder register apps at /oauth2/register, made by a developer on
// /developer (the apps are theirs) or by an operator on the command line.

// TokenStore is where initial access tokens live, with the audit events
// recorded as they are made and revoked (in the same transaction).
type TokenStore interface {
	audit.TxStore
	CreateRegistrationToken(ctx context.Context, t storage.RegistrationToken) error
	GetRegistrationTokenByHash(ctx context.Context, hash []byte, now time.Time) (storage.RegistrationToken, error)
	ListRegistrationTokens(ctx context.Context, owner string, all bool) ([]storage.RegistrationToken, error)
	DeleteRegistrationToken(ctx context.Context, id, owner string, all bool) error
	Users
}

// Users tells whether the developer who owns a token or an app is still
// an active account.
type Users interface {
	GetUser(ctx context.Context, id string) (storage.User, error)
}

// ownerActive reports whether owner may still act through a token: a
// token of a developer who is disabled or deleted is refused at use, even
// one the disabling missed (minted before this rule, or in a race with
// it). owner "" (the operator, open registration) is always active.
func ownerActive(ctx context.Context, users Users, owner string) (bool, error) {
	if owner == "" {
		return true, nil
	}
	u, err := users.GetUser(ctx, owner)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !u.Disabled, nil
}

// RegistrationTokens manages initial access tokens.
type RegistrationTokens struct {
	store  TokenStore
	hasher *SecretHasher
	now    func() time.Time
}

// NewRegistrationTokens returns the manager.
func NewRegistrationTokens(store TokenStore, hasher *SecretHasher, now func() time.Time) (*RegistrationTokens, error) {
	if store == nil || hasher == nil {
		return nil, errors.New("clients: registration tokens need a store and a hasher")
	}
	if now == nil {
		now = time.Now
	}
	return &RegistrationTokens{store: store, hasher: hasher, now: now}, nil
}

// MaxTokenTTL bounds an initial access token's life (0: never expires).
const MaxTokenTTL = 365 * 24 * time.Hour

// ErrTokenUnknown: no live initial access token has this value (or ID).
var ErrTokenUnknown = errors.New("clients: no such registration token")

// Create makes a token for owner ("" from the command line), valid for
// ttl (0: until revoked), and returns it with its clear value, shown
// once.
func (t *RegistrationTokens) Create(ctx context.Context, owner, description string, ttl time.Duration) (storage.RegistrationToken, string, error) {
	description = strings.TrimSpace(description)
	if len(description) > 100 {
		return storage.RegistrationToken{}, "", invalid("the description is at most 100 characters")
	}
	if ttl < 0 || ttl > MaxTokenTTL {
		return storage.RegistrationToken{}, "", invalid("an initial access token's lifetime must be from 0 (never) to %s", MaxTokenTTL)
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	value := "iat_" + randomSecret()
	hash, _ := t.hasher.Hash(ctx, []byte(value))
	now := t.now().UTC().Truncate(time.Microsecond)
	rec := storage.RegistrationToken{ID: hex.EncodeToString(id), TokenHash: hash, Owner: owner, Description: description, CreatedAt: now}
	if ttl > 0 {
		rec.ExpiresAt = now.Add(ttl)
	}
	if err := t.apply(ctx, owner, "created", rec.ID, func(ctx context.Context) error { return t.store.CreateRegistrationToken(ctx, rec) }); err != nil {
		return storage.RegistrationToken{}, "", err
	}
	return rec, value, nil
}

// Check returns the live token with this value, whose owner is an active
// account; ErrTokenUnknown.
func (t *RegistrationTokens) Check(ctx context.Context, value string) (storage.RegistrationToken, error) {
	if value == "" || len(value) > 200 {
		return storage.RegistrationToken{}, ErrTokenUnknown
	}
	// A token made before TONEARM_SECRET was rotated is stored under a
	// previous key's hash.
	hashes := t.hasher.Hashes([]byte(value))
	for i, hash := range hashes {
		rec, err := t.store.GetRegistrationTokenByHash(ctx, hash, t.now())
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return storage.RegistrationToken{}, err
		}
		if ok, err := ownerActive(ctx, t.store, rec.Owner); err != nil || !ok {
			if err == nil {
				err = ErrTokenUnknown
			}
			return storage.RegistrationToken{}, err
		}
		if i > 0 {
			t.hasher.stale(ctx, hash, hashes[0])
		}
		return rec, nil
	}
	return storage.RegistrationToken{}, ErrTokenUnknown
}

// List returns owner's tokens (every token with all).
func (t *RegistrationTokens) List(ctx context.Context, owner string, all bool) ([]storage.RegistrationToken, error) {
	return t.store.ListRegistrationTokens(ctx, owner, all)
}

// Revoke deletes a token of owner (any with all); ErrTokenUnknown.
func (t *RegistrationTokens) Revoke(ctx context.Context, id, owner string, all bool) error {
	err := t.apply(ctx, owner, "revoked", id, func(ctx context.Context) error { return t.store.DeleteRegistrationToken(ctx, id, owner, all) })
	if errors.Is(err, storage.ErrNotFound) {
		return ErrTokenUnknown
	}
	return err
}

// apply writes a change to the token id of owner ("" from the command
// line) and records it in one transaction. The event names the token
// (its ID, never its value) and the developer it belongs to.
func (t *RegistrationTokens) apply(ctx context.Context, owner, action, id string, write func(ctx context.Context) error) error {
	event := audit.Change{Type: audit.RegistrationTokens, User: owner, Detail: map[string]any{"action": action, "id": id}}
	return audit.Apply(ctx, t.store, t.now(), event, write)
}
