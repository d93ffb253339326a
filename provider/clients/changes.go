package clients

import (
	"bytes"
	"context"
	"errors"
	"slices"
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
	_, err := r.updateClient(ctx, id, event, func(c storage.Client) (storage.Client, error) {
		if c.Public {
			return c, invalid("a public client has no secret")
		}
		if c.TokenEndpointAuthMethod == AuthPrivateKeyJWT {
			return c, invalid("a private_key_jwt client has no secret: it proves itself with its keys (change its token endpoint auth method to use a secret)")
		}
		c.OldSecretHash, c.OldSecretExpiresAt = nil, time.Time{}
		if keepOld > 0 {
			c.OldSecretHash, c.OldSecretExpiresAt = c.SecretHash, r.now().UTC().Add(keepOld)
		}
		c.SecretHash = hash
		return c, nil
	})
	return err
}

// updateClient rewrites client id with change under its row lock and
// records event with what changed, by name: detail "fields" lists the
// changed fields as the admin API spells them (never their values;
// "disabled" also says which way), and "secret": "set" a secret that moved
// (unless event already says how). A change that leaves the client as it is
// writes and records nothing and returns the stored client.
func (r *Registry) updateClient(ctx context.Context, id string, event audit.Change, change func(storage.Client) (storage.Client, error)) (storage.Client, error) {
	var out storage.Client
	err := audit.ApplyDiff(ctx, r.store, r.now(), event, func(ctx context.Context) (map[string]any, error) {
		var detail map[string]any
		stored, err := r.store.UpdateClient(ctx, id, func(old storage.Client) (storage.Client, error) {
			out = old
			next, err := change(old)
			if err != nil {
				return old, err
			}
			fields, secretMoved := clientChanges(old, next)
			if len(fields) == 0 && !secretMoved {
				return old, audit.ErrUnchanged
			}
			detail = map[string]any{}
			if len(fields) > 0 {
				detail["fields"] = fields
			}
			if slices.Contains(fields, "disabled") {
				detail["disabled"] = next.Disabled
			}
			if _, said := event.Detail["secret"]; secretMoved && !said {
				detail["secret"] = "set"
			}
			return next, nil
		})
		if err == nil {
			out = stored
		}
		return detail, err
	})
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Client{}, ErrNotFound
	}
	if err != nil {
		return storage.Client{}, err
	}
	return out, nil
}

// clientChanges names the fields that differ between a and b, as the admin
// API spells them, and whether the secret (or a kept old one) moved.
func clientChanges(a, b storage.Client) (fields []string, secretMoved bool) {
	for _, f := range []struct {
		name    string
		changed bool
	}{
		{"redirectUris", !slices.Equal(a.RedirectURIs, b.RedirectURIs)},
		{"postLogoutRedirectUris", !slices.Equal(a.PostLogoutRedirectURIs, b.PostLogoutRedirectURIs)},
		{"grantTypes", !slices.Equal(a.GrantTypes, b.GrantTypes) || !slices.Equal(a.ResponseTypes, b.ResponseTypes)},
		{"scope", !slices.Equal(a.Scopes, b.Scopes)},
		{"audience", !slices.Equal(a.Audience, b.Audience)},
		{"firstParty", a.FirstParty != b.FirstParty},
		{"allowNoPkce", a.AllowNoPKCE != b.AllowNoPKCE},
		{"requirePar", a.RequirePAR != b.RequirePAR},
		{"requireDpop", a.RequireDPoP != b.RequireDPoP},
		{"backchannelLogoutUri", a.BackchannelLogoutURI != b.BackchannelLogoutURI},
		{"idTokenAlg", a.IDTokenAlg != b.IDTokenAlg},
		{"name", a.Name != b.Name},
		{"logoUri", a.LogoURI != b.LogoURI},
		{"clientUri", a.ClientURI != b.ClientURI},
		{"policyUri", a.PolicyURI != b.PolicyURI},
		{"tosUri", a.TosURI != b.TosURI},
		{"disabled", a.Disabled != b.Disabled},
		{"tokenEndpointAuthMethod", a.TokenEndpointAuthMethod != b.TokenEndpointAuthMethod},
		{"jwks", a.JWKS != b.JWKS},
		{"jwksUri", a.JWKSURI != b.JWKSURI},
		{"requestUris", !slices.Equal(a.RequestURIs, b.RequestURIs)},
		{"requestObjectSigningAlg", a.RequestObjectSigningAlg != b.RequestObjectSigningAlg},
		{"subjectType", a.SubjectType != b.SubjectType},
		{"sectorIdentifierUri", a.SectorIdentifierURI != b.SectorIdentifierURI},
	} {
		if f.changed {
			fields = append(fields, f.name)
		}
	}
	secretMoved = !bytes.Equal(a.SecretHash, b.SecretHash) || !bytes.Equal(a.OldSecretHash, b.OldSecretHash) ||
		!a.OldSecretExpiresAt.Equal(b.OldSecretExpiresAt) || !bytes.Equal(a.RegistrationTokenHash, b.RegistrationTokenHash)
	return fields, secretMoved
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
