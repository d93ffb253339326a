// Package keys manages tonearm's signing keys: generated on first start,
// stored in the database sealed with TONEARM_SECRET, shared by every replica,
// rotated with overlap, and published as a JWKS served from memory.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
)

// Algorithms tonearm signs with: RS256 for ID tokens (what every OpenID
// Connect library accepts), ES256 for access tokens (an order of magnitude
// cheaper to sign than RSA).
const (
	RS256 = "RS256"
	ES256 = "ES256"
)

// Algorithms lists every algorithm a signing key exists for.
var Algorithms = []string{RS256, ES256}

// Store is what the key manager needs from storage.
type Store interface {
	EnsureSigningKey(ctx context.Context, k storage.SigningKey) (bool, error)
	RotateSigningKey(ctx context.Context, k storage.SigningKey, now time.Time) error
	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int64, error)
}

// ErrUnknownKey: no published key has this ID.
var ErrUnknownKey = errors.New("keys: unknown key ID")

// Key is one usable signing key.
type Key struct {
	KID       string
	Alg       string
	Private   crypto.Signer // *rsa.PrivateKey or *ecdsa.PrivateKey
	CreatedAt time.Time
	RetiredAt time.Time // zero while it signs
}

// Public returns the verification key.
func (k *Key) Public() crypto.PublicKey { return k.Private.Public() }

type snapshot struct {
	signing map[string]*Key // alg → the key that signs
	byKID   map[string]*Key // every published key
	jwks    []byte
	etag    string
	loaded  time.Time
}

// Manager holds the current key set in memory.
type Manager struct {
	store     Store
	box       *seal.Box
	retention time.Duration
	now       func() time.Time
	log       *slog.Logger

	snap      atomic.Pointer[snapshot]
	refreshMu sync.Mutex
}

// Config wires a Manager.
type Config struct {
	Store Store
	Box   *seal.Box // seals private keys at rest
	// Retention is how long a rotated-out key stays published: at least
	// the longest lifetime of anything it signed.
	Retention time.Duration
	Now       func() time.Time
	Logger    *slog.Logger
}

// New loads the key set, creating the first key of each algorithm if the
// database has none (safe when replicas start at once).
func New(ctx context.Context, c Config) (*Manager, error) {
	if c.Store == nil || c.Box == nil || c.Retention <= 0 {
		return nil, errors.New("keys: Store, Box and a positive Retention are required")
	}
	m := &Manager{store: c.Store, box: c.Box, retention: c.Retention, now: c.Now, log: c.Logger}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	// A key is generated only for an algorithm that has none: an RSA key
	// costs tens of milliseconds of CPU, and a server, a replica or a
	// command starting on a database that has its keys needs none.
	stored, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: load: %w", err)
	}
	active := map[string]bool{}
	for _, sk := range stored {
		if sk.RetiredAt.IsZero() {
			active[sk.Alg] = true
		}
	}
	for _, alg := range Algorithms {
		if active[alg] {
			continue
		}
		k, err := m.generate(alg)
		if err != nil {
			return nil, err
		}
		created, err := m.store.EnsureSigningKey(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("keys: store first %s key: %w", alg, err)
		}
		if created {
			m.log.Info("generated signing key", "kid", k.KID, "alg", alg)
		}
	}
	if err := m.Refresh(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) generate(alg string) (storage.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return storage.SigningKey{}, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	if err != nil {
		return storage.SigningKey{}, err
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return storage.SigningKey{}, err
	}
	jwk := jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: alg, Use: "sig"}
	raw, err := jwk.MarshalJSON()
	if err != nil {
		return storage.SigningKey{}, err
	}
	sealed, err := m.box.Seal(raw, sealContext(kid))
	if err != nil {
		return storage.SigningKey{}, err
	}
	return storage.SigningKey{KID: kid, Alg: alg, Sealed: sealed, CreatedAt: m.now().UTC()}, nil
}

// thumbprint is the RFC 7638 SHA-256 thumbprint, base64url: a key ID that
// every replica derives identically from the key itself.
func thumbprint(pub crypto.PublicKey) (string, error) {
	t, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}

func sealContext(kid string) string { return "signing-key:" + kid }

// Rotate adds a new key for every algorithm that signs from now on; the
// old ones stay published for the retention period.
func (m *Manager) Rotate(ctx context.Context) ([]*Key, error) {
	var out []*Key
	for _, alg := range Algorithms {
		k, err := m.generate(alg)
		if err != nil {
			return nil, err
		}
		if err := m.store.RotateSigningKey(ctx, k, m.now()); err != nil {
			return nil, fmt.Errorf("keys: rotate %s: %w", alg, err)
		}
		out = append(out, &Key{KID: k.KID, Alg: alg, CreatedAt: k.CreatedAt})
	}
	if err := m.Refresh(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// Refresh reloads the key set from the database (another replica may have
// rotated) and rebuilds the published JWKS.
func (m *Manager) Refresh(ctx context.Context) error {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	return m.refreshLocked(ctx)
}

func (m *Manager) refreshLocked(ctx context.Context) error {
	stored, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: load: %w", err)
	}
	now := m.now()
	snap := &snapshot{signing: map[string]*Key{}, byKID: map[string]*Key{}, loaded: now}
	for _, sk := range stored {
		if !sk.RetiredAt.IsZero() && !now.Before(sk.RetiredAt.Add(m.retention)) {
			continue // past its overlap window: nothing it signed is still valid
		}
		k, err := m.open(sk)
		if err != nil {
			return err
		}
		snap.byKID[k.KID] = k
		if k.RetiredAt.IsZero() {
			if cur, ok := snap.signing[k.Alg]; !ok || k.CreatedAt.After(cur.CreatedAt) {
				snap.signing[k.Alg] = k
			}
		}
	}
	for _, alg := range Algorithms {
		if snap.signing[alg] == nil {
			return fmt.Errorf("keys: no active %s signing key in the database", alg)
		}
	}
	snap.jwks, snap.etag, err = buildJWKS(snap.byKID)
	if err != nil {
		return err
	}
	m.snap.Store(snap)
	return nil
}

func (m *Manager) open(sk storage.SigningKey) (*Key, error) {
	raw, err := m.box.Open(sk.Sealed, sealContext(sk.KID))
	if err != nil {
		return nil, fmt.Errorf("keys: signing key %s does not open with TONEARM_SECRET or any of TONEARM_PREVIOUS_SECRETS (sealed under another secret): %w", sk.KID, err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", sk.KID, err)
	}
	signer, ok := jwk.Key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: key %s is not a private key", sk.KID)
	}
	if rk, ok := signer.(*rsa.PrivateKey); ok {
		// A key read from its JWK has no precomputed values: without
		// them every RS256 signature would derive them again (a tenth of
		// its cost).
		rk.Precompute()
	}
	return &Key{KID: sk.KID, Alg: sk.Alg, Private: signer, CreatedAt: sk.CreatedAt, RetiredAt: sk.RetiredAt}, nil
}

func buildJWKS(byKID map[string]*Key) ([]byte, string, error) {
	kids := make([]string, 0, len(byKID))
	for kid := range byKID {
		kids = append(kids, kid)
	}
	sort.Strings(kids)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, kid := range kids {
		k := byKID[kid]
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: k.KID, Algorithm: k.Alg, Use: "sig"})
	}
	body, err := json.Marshal(set)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(body)
	return body, `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`, nil
}

// Signing returns the key that signs with alg now.
func (m *Manager) Signing(alg string) (*Key, error) {
	k := m.snap.Load().signing[alg]
	if k == nil {
		return nil, fmt.Errorf("keys: no %s signing key", alg)
	}
	return k, nil
}

// minLookupRefresh bounds how often an unknown key ID triggers a reload, so
// tokens with made-up key IDs cannot hammer the database.
const minLookupRefresh = 5 * time.Second

// Lookup returns the published key with this ID. An unknown ID reloads the
// set once (at most every few seconds): another replica may have rotated.
func (m *Manager) Lookup(ctx context.Context, kid string) (*Key, error) {
	if k := m.snap.Load().byKID[kid]; k != nil {
		return m.checkLive(k)
	}
	m.refreshMu.Lock()
	if m.now().Sub(m.snap.Load().loaded) >= minLookupRefresh {
		if err := m.refreshLocked(ctx); err != nil {
			m.log.Warn("signing key reload failed", "err", err)
		}
	}
	m.refreshMu.Unlock()
	if k := m.snap.Load().byKID[kid]; k != nil {
		return m.checkLive(k)
	}
	return nil, ErrUnknownKey
}

// checkLive refuses a retired key whose overlap window has passed since the
// snapshot was built.
func (m *Manager) checkLive(k *Key) (*Key, error) {
	if !k.RetiredAt.IsZero() && !m.now().Before(k.RetiredAt.Add(m.retention)) {
		return nil, ErrUnknownKey
	}
	return k, nil
}

// JWKS returns the public key set as JSON and its entity tag.
func (m *Manager) JWKS() ([]byte, string) {
	s := m.snap.Load()
	return s.jwks, s.etag
}

// Run reloads the key set every interval until ctx ends, and deletes keys
// whose overlap window is long past.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.Refresh(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("signing key reload failed", "err", err)
		}
		if _, err := m.store.DeleteSigningKeysRetiredBefore(ctx, m.now().Add(-2*m.retention)); err != nil && ctx.Err() == nil {
			m.log.Warn("retired signing key cleanup failed", "err", err)
		}
	}
}

// Published returns the keys in the JWKS, newest first.
func (m *Manager) Published() []*Key {
	s := m.snap.Load()
	out := make([]*Key, 0, len(s.byKID))
	for _, k := range s.byKID {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out
}
