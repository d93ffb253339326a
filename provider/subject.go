package provider

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
)

// Pairwise subject identifiers (OpenID Connect Core 1.0 §8.1): a client
// registered with subject_type pairwise sees, for a person, a sub of its
// own sector, so that two such apps cannot join their data on sub.
//
//	sub = base64url(HMAC-SHA256(k, sector ‖ 0x00 ‖ user ID))
//
// The HMAC is a PRF: without k nobody links two sectors' subs or finds the
// user ID; the 0x00 separates the sector (a host name, never containing
// one) from the user ID, so no two (sector, user) pairs share an input.
// Nothing is stored per person (no table to leak); the sub is stable for a
// person and a sector, on every replica and across restarts.
//
// k is not derived from TONEARM_SECRET directly: rotating that secret
// would change every pairwise sub, and each relying party would see its
// users as new people. It is derived from a random value made once per
// installation (instance_secrets), stored sealed under TONEARM_SECRET and
// re-sealed by tonearm reseal like every other sealed value: a copy of the
// database alone does not give it, and a rotation does not change it.

// pairwiseSecretName names the random value k is derived from.
const pairwiseSecretName = "pairwise-subjects"

// Subjects computes the sub each client sees for a person, and the sid
// it sees for a browser session (pairwisesid.go).
type Subjects struct{ key, sidKey []byte }

// InstanceSecrets is what LoadSubjects needs from storage.
type InstanceSecrets interface {
	EnsureInstanceSecret(ctx context.Context, name string, sealed []byte) ([]byte, error)
}

// instanceSecretContext binds a sealed instance secret to its name.
func instanceSecretContext(name string) string { return "instance-secret:" + name }

// LoadSubjects opens the installation's pairwise key, making it on the
// first start (every replica starting at once ends with the one stored
// first).
func LoadSubjects(ctx context.Context, store InstanceSecrets, box *seal.Box) (*Subjects, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	sealed, err := box.Seal(fresh, instanceSecretContext(pairwiseSecretName))
	if err != nil {
		return nil, err
	}
	stored, err := store.EnsureInstanceSecret(ctx, pairwiseSecretName, sealed)
	if err != nil {
		return nil, fmt.Errorf("reading the pairwise subject key: %w", err)
	}
	raw, err := box.Open(stored, instanceSecretContext(pairwiseSecretName))
	if err != nil {
		return nil, fmt.Errorf("the pairwise subject key was sealed under a secret that is neither TONEARM_SECRET nor one of TONEARM_PREVIOUS_SECRETS: %w", err)
	}
	return &Subjects{key: seal.DeriveKey(raw, "pairwise-sub"), sidKey: seal.DeriveKey(raw, "pairwise-sid")}, nil
}

// ResealStore is what ResealInstanceSecrets needs from storage.
type ResealStore interface {
	ResealColumn(ctx context.Context, column storage.SealedColumn, reseal storage.Reseal) (int, error)
}

// ResealInstanceSecrets seals the stored instance secrets (the pairwise
// key's seed) again under box's current key, after TONEARM_SECRET was
// rotated; the secrets themselves, and so every pairwise sub, stay.
func ResealInstanceSecrets(ctx context.Context, store ResealStore, box *seal.Box) (int, error) {
	return store.ResealColumn(ctx, storage.SealedInstanceSecrets, box.ResealFunc("instance secret", instanceSecretContext))
}

// For is the sub client sees for userID: the user ID itself for a public
// client, the pairwise identifier for a pairwise one. A subject that is the
// client itself (client credentials: tonearm's session subject is then the
// client ID) stays the client ID: it names no person.
func (s *Subjects) For(client fosite.Client, userID string) string {
	c, ok := asPairwise(client)
	if !ok || userID == "" || userID == c.GetID() {
		return userID
	}
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(clientSector(c)))
	m.Write([]byte{0})
	m.Write([]byte(userID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// asPairwise is client when it is registered with pairwise subjects.
func asPairwise(client fosite.Client) (*fositestore.Client, bool) {
	c, ok := client.(*fositestore.Client)
	return c, ok && c.SubjectType == storage.SubjectPairwise
}

// clientSector is c's sector (see Sector).
func clientSector(c *fositestore.Client) string {
	return Sector(c.SectorIdentifierURI, c.RedirectURIs, c.ID)
}

// Sector is a pairwise client's sector (OpenID Connect Core §8.1): the
// host of its sector_identifier_uri when it has one, else the host of its
// redirect URIs (registration refuses a pairwise client whose redirect
// URIs have several hosts and no sector_identifier_uri). A client without
// redirect URIs (the device grant), or registered before that rule with
// several hosts, is a sector of its own, "client:" and its ID (a host name
// has no colon but in an IPv6 literal, which has no "client").
func Sector(sectorIdentifierURI string, redirectURIs []string, clientID string) string {
	if h := host(sectorIdentifierURI); h != "" {
		return h
	}
	if hosts := RedirectHosts(redirectURIs); len(hosts) == 1 && !loopbackSector(hosts) {
		return hosts[0]
	}
	return "client:" + clientID
}

// RedirectHosts are the distinct hosts of redirect URIs, in order.
func RedirectHosts(redirectURIs []string) []string {
	var hosts []string
	for _, r := range redirectURIs {
		if h := host(r); h != "" && !has(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// host is a URL's host without port, in lower case ("" when it has none).
func host(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// SubjectFor is the sub client sees for userID (see Subjects): every sub
// tonearm gives a client, and every comparison with a sub a client sends
// back, goes through it.
func (p *Provider) SubjectFor(client fosite.Client, userID string) string {
	return p.subjects.For(client, userID)
}

// ClientSubject is what SubjectFor is for the client registered as
// clientID (read through the client cache).
func (p *Provider) ClientSubject(ctx context.Context, clientID, userID string) (string, error) {
	c, err := p.store.GetClient(ctx, clientID)
	if err != nil {
		return "", err
	}
	return p.subjects.For(c, userID), nil
}

// IsSubjectOf reports whether sub is userID as the client registered as
// clientID sees them (an id_token_hint's sub, for its aud).
func (p *Provider) IsSubjectOf(ctx context.Context, clientID, sub, userID string) bool {
	if sub == "" || userID == "" {
		return false
	}
	want, err := p.ClientSubject(ctx, clientID, userID)
	if err != nil {
		want = userID // a client since deleted: as a public one (a pairwise sub never equals a user ID)
	}
	return hmac.Equal([]byte(want), []byte(sub))
}

// setClientSubject makes the ID-token sub of a new authorization's session the
// one its client sees (the session's Subject stays the user ID: tonearm's
// rows are the person's). fosite compares an id_token_hint's sub with it
// (prompt=none): a hint issued to another pairwise client names another
// sub, and is refused with login_required.
func (p *Provider) setClientSubject(session fosite.Session, client fosite.Client) {
	if s, ok := session.(*openid.DefaultSession); ok && s.Claims != nil && s.Subject != "" {
		s.Claims.Subject = p.subjects.For(client, s.Subject)
	}
}

// subjectIDTokens signs every ID token (code exchange, refresh, device
// grant) with the sub and the sid its client sees, computed from the
// session's user ID and browser session at each issue: a session stored
// before it was computed, or restored with the user ID as the claim, still
// gives the right one.
type subjectIDTokens struct {
	openid.OpenIDConnectTokenStrategy
	subjects *Subjects
}

// GenerateIDToken implements openid.OpenIDConnectTokenStrategy.
func (t subjectIDTokens) GenerateIDToken(ctx context.Context, lifespan time.Duration, req fosite.Requester) (string, error) {
	s, ok := req.GetSession().(*openid.DefaultSession)
	if !ok || s.Claims == nil {
		return t.OpenIDConnectTokenStrategy.GenerateIDToken(ctx, lifespan, req)
	}
	if s.Subject != "" {
		s.Claims.Subject = t.subjects.For(req.GetClient(), s.Subject)
	}
	if sid, _ := s.Claims.Extra["sid"].(string); sid != "" {
		// Only the signed token carries the client's sid: the session
		// keeps the real one, which the stored request rows are looked up
		// by to send back-channel logouts (fositestore).
		s.Claims.Extra["sid"] = t.subjects.SID(req.GetClient(), sid)
		defer func() { s.Claims.Extra["sid"] = sid }()
	}
	return t.OpenIDConnectTokenStrategy.GenerateIDToken(ctx, lifespan, req)
}
