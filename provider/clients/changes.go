package clients

import (
	"context"
	"errors"
	"time"

	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// Every change the registry makes is written with its audit event in one
// transaction (audit.Apply): the admin API, the console, the developer
// page, RFC 7591/7592 registration and the command line get the same event
// from here, with the actor their transport put in the context. Changes
// made by an admin or the operator are client.* events; those made by an
// app's developer (or with its registration access token) are app.*
// events about that developer.

// apply writes a change and records it in one transaction.
func (r *Registry) apply(ctx context.Context, c audit.Change, write func(ctx context.Context) error) error {
	return audit.Apply(ctx, r.store, r.now(), c, write)
}

// SetSecret replaces a confidential client's secret with one its owner
// chose (≥ 32 characters); an earlier kept secret ends.
func (r *Registry) SetSecret(ctx context.Context, id, secret string) error {
	if len(secret) < minSecretBytes {
		return invalid("a client secret must be at least %d characters", minSecretBytes)
	}
	hash, err := r.hasher.Hash(ctx, []byte(secret))
	if err != nil {
		return err
	}
	return r.replaceSecret(ctx, id, hash, 0, audit.Change{Type: audit.ClientChanged, Client: id, Detail: map[string]any{"secret": "set"}})
}

// MaxKeepOld bounds how long a rotated-out secret may stay valid.
const MaxKeepOld = 30 * 24 * time.Hour

// RotateSecret gives a confidential client a new generated secret, returned
// once. keepOld > 0 keeps the old secret valid that long (its clients
// switch over meanwhile); 0 ends it at once, as does any earlier kept one.
func (r *Registry) RotateSecret(ctx context.Context, id string, keepOld time.Duration) (string, error) {
	return r.rotate(ctx, id, keepOld, audit.Change{Type: audit.ClientChanged, Client: id,
		Detail: map[string]any{"secret": "rotated", "keep_old": keepOld.String()}})
}

// RotateAppSecret is RotateSecret done by the app's developer.
func (r *Registry) RotateAppSecret(ctx context.Context, id string, keepOld time.Duration) (string, error) {
	cur, err := r.Get(ctx, id)
	if err != nil {
		return "", err
	}
	return r.rotate(ctx, id, keepOld, audit.Change{Type: audit.AppChanged, User: cur.Owner, Client: id, Detail: map[string]any{"secret": "rotated"}})
}

func (r *Registry) rotate(ctx context.Context, id string, keepOld time.Duration, event audit.Change) (string, error) {
	if keepOld < 0 || keepOld > MaxKeepOld {
		return "", invalid("the old secret can be kept from 0s to %s", MaxKeepOld)
	}
	secret := randomSecret()
	hash, err := r.hasher.Hash(ctx, []byte(secret))
	if err != nil {
		return "", err
	}
	if err := r.replaceSecret(ctx, id, hash, keepOld, event); err != nil {
		return "", err
	}
	return secret, nil
}

// replaceSecret stores hash as a confidential client's secret, keeping the
// old one valid for keepOld (0: it ends now, as does any kept earlier).
func (r *Registry) replaceSecret(ctx context.Context, id string, hash []byte, keepOld time.Duration, event audit.Change) error {
	err := r.apply(ctx, event, func(ctx context.Context) error {
		_, err := r.store.UpdateClient(ctx, id, func(c storage.Client) (storage.Client, error) {
			if c.Public {
				return c, invalid("a public client has no secret")
			}
			c.OldSecretHash, c.OldSecretExpiresAt = nil, time.Time{}
			if keepOld > 0 {
				c.OldSecretHash, c.OldSecretExpiresAt = c.SecretHash, r.now().UTC().Add(keepOld)
			}
			c.SecretHash = hash
			return c, nil
		})
		return err
	})
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

// Delete removes a client with its consents and tokens.
func (r *Registry) Delete(ctx context.Context, id string) error {
	return r.delete(ctx, id, audit.Change{Type: audit.ClientDeleted, Client: id})
}

// DeleteApp is Delete done by the app's developer (on /developer or with
// its registration access token, RFC 7592 §2.3).
func (r *Registry) DeleteApp(ctx context.Context, id string) error {
	cur, err := r.Get(ctx, id)
	if err != nil {
		return err
	}
	return r.delete(ctx, id, audit.Change{Type: audit.AppDeleted, User: cur.Owner, Client: id})
}

func (r *Registry) delete(ctx context.Context, id string, event audit.Change) error {
	err := r.apply(ctx, event, func(ctx context.Context) error { return r.store.DeleteClient(ctx, id) })
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNotFound
	}
	return err
}
