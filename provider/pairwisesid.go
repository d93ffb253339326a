package provider

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"

	"github.com/ory/fosite"
)

// Pairwise session identifiers. An ID token's sid (OpenID Connect
// Back-Channel and Front-Channel Logout) names the browser session; were it
// the session's own identifier, two pairwise clients the person signed in to
// in one session could join their records on it, whatever their subs. So a
// pairwise client sees the session's sid encrypted under a key of its
// sector (the sector of its sub, see Sector):
//
//	sid' = base64url(AES-256(kₛ, sid)), kₛ = HMAC-SHA256(k_sid, sector)
//
// The session's sid is 16 random bytes (accounts.Service), one AES block,
// and one AES block is a pseudorandom permutation: the same session gives
// the same sid' to a sector (logout tokens and id_token_hints must name
// it), tonearm turns sid' back into the session's sid with the sector's key
// (SessionSID: an id_token_hint at logout), and without k_sid nobody links
// two sectors' sid's, nor finds the session's. k_sid is derived from the
// installation's pairwise key with a label of its own ("pairwise-sid"), so
// nothing is stored per session either. Public clients see the session's
// sid.

// SID is the sid client sees for the browser session sid.
func (s *Subjects) SID(client fosite.Client, sid string) string {
	c, ok := asPairwise(client)
	if !ok || sid == "" {
		return sid
	}
	sector := clientSector(c)
	raw, err := base64.RawURLEncoding.DecodeString(sid)
	if err != nil || len(raw) != aes.BlockSize {
		// A sid that is not one block (a session row older than the
		// 16-byte format, a test's) cannot be encrypted as one: a keyed
		// hash still keeps sectors apart, but it is one-way, so an
		// id_token_hint carrying it names no session (SessionSID) and
		// logout falls back to the browser's cookie. The input has a 0x00
		// a sector alone has not, so it never equals a sector's AES key.
		m := hmac.New(sha256.New, s.sidKey)
		m.Write([]byte(sector))
		m.Write([]byte{0})
		m.Write([]byte(sid))
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	out := make([]byte, aes.BlockSize)
	s.sectorCipher(sector).Encrypt(out, raw)
	return base64.RawURLEncoding.EncodeToString(out)
}

// SessionSID is the browser session's sid that client's sid names: the
// inverse of SID ("" when a pairwise client's sid is no encrypted block, so
// names no session one can find).
func (s *Subjects) SessionSID(client fosite.Client, sid string) string {
	c, ok := asPairwise(client)
	if !ok || sid == "" {
		return sid
	}
	raw, err := base64.RawURLEncoding.DecodeString(sid)
	if err != nil || len(raw) != aes.BlockSize {
		return ""
	}
	out := make([]byte, aes.BlockSize)
	s.sectorCipher(clientSector(c)).Decrypt(out, raw)
	return base64.RawURLEncoding.EncodeToString(out)
}

// sectorCipher is the AES-256 block cipher of a sector's sids.
func (s *Subjects) sectorCipher(sector string) cipher.Block {
	m := hmac.New(sha256.New, s.sidKey)
	m.Write([]byte(sector))
	block, err := aes.NewCipher(m.Sum(nil)) // 32 bytes: AES-256
	if err != nil {
		panic(err) // unreachable: a 32-byte key is always valid
	}
	return block
}

// ClientSID is what SID is for the client registered as clientID (read
// through the client cache).
func (p *Provider) ClientSID(ctx context.Context, clientID, sid string) (string, error) {
	c, err := p.store.GetClient(ctx, clientID)
	if err != nil {
		return "", err
	}
	return p.subjects.SID(c, sid), nil
}

// hintSessionSID is the browser session's sid an id_token_hint's sid names,
// read as its audience clientID sees sessions. A client since deleted is
// read as a public one: a pairwise sid then names no session.
func (p *Provider) hintSessionSID(ctx context.Context, clientID, sid string) string {
	c, err := p.store.GetClient(ctx, clientID)
	if err != nil {
		return sid
	}
	return p.subjects.SessionSID(c, sid)
}
