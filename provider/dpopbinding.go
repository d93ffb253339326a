package provider

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/tonearm-idp/tonearm/provider/dpop"
)

// DPoPKeyHeader names, in a session's private headers, the thumbprint of
// the key its tokens are bound to (RFC 9449): set at the authorization
// endpoint from dpop_jkt (§10), then by each token request from its proof.
// Codes and refresh tokens store the whole session, so it travels with
// them; access tokens carry it as cnf.jkt. The signer drops tonearm_
// headers, so it never reaches an ID token.
const DPoPKeyHeader = "tonearm_dpop_jkt"

// DPoP returns the proof verifier.
func (p *Provider) DPoP() *dpop.Verifier { return p.dpop }

// BoundKey is the jkt a session's tokens are bound to ("" for bearer).
func BoundKey(sess fosite.Session) string {
	s, ok := defaultSession(sess)
	if !ok || s.Headers == nil {
		return ""
	}
	jkt, _ := s.Headers.Extra[DPoPKeyHeader].(string)
	return jkt
}

// BindToKey binds the tokens issued next from sess to jkt ("" unbinds).
func BindToKey(sess fosite.Session, jkt string) {
	s, ok := defaultSession(sess)
	if !ok {
		return
	}
	if jkt == "" {
		if s.Headers != nil {
			delete(s.Headers.Extra, DPoPKeyHeader)
		}
		return
	}
	if s.Headers == nil {
		s.Headers = &jwt.Headers{}
	}
	if s.Headers.Extra == nil {
		s.Headers.Extra = map[string]interface{}{}
	}
	s.Headers.Extra[DPoPKeyHeader] = jkt
}

// defaultSession is the OpenID session a grant's session is, or wraps (the
// token exchange's session wraps one), so that every grant's tokens can be
// bound.
func defaultSession(sess fosite.Session) (*openid.DefaultSession, bool) {
	switch s := sess.(type) {
	case *openid.DefaultSession:
		return s, true
	case interface{ openID() *openid.DefaultSession }:
		return s.openID(), true
	}
	return nil, false
}

// AccessTokenKey is the cnf.jkt of an access token this server issued,
// read from its payload without verifying it again: call it only for a
// token already found live (its row is keyed by the hash of the exact
// bytes this server signed, see AccessTokenSignature).
func AccessTokenKey(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Cnf *confirmation `json:"cnf"`
	}
	if json.Unmarshal(raw, &c) != nil || c.Cnf == nil {
		return ""
	}
	return c.Cnf.JKT
}
