package fositestore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/tonearm-idp/tonearm/storage"
)

// An access token's session is stored lean: only what reading the token
// back needs that the row does not already hold (the username and the
// sign-in time; subject and expiry are columns). The rest of the OpenID
// session — the ID token's claims and headers, mostly empty — matters to
// codes and refresh tokens, which issue ID tokens. The lean form is
// binary: a version byte (leanBinary), the sign-in time as 8 bytes of
// big-endian Unix seconds (0: none), then the username. Rows written
// before it hold the JSON form (leanSession).
const leanBinary = 0x01

// leanClaims is the lean form of an access token whose authorization
// asked userinfo for claims by name (OpenID Connect Core §5.5): the
// version byte, the sign-in time as in leanBinary, the username's length
// as 2 bytes big-endian, the username, then the claims request (JSON).
const leanClaims = 0x02

// UserinfoClaimsHeader names, in a session's ID-token headers, the
// userinfo member of the authorization's claims request: it travels from
// the code to every token of the grant, and is never written into a token
// (the signer drops tonearm_ headers).
const UserinfoClaimsHeader = "tonearm_userinfo_claims"

// leanSession is the older JSON lean form, still read.
type leanSession struct {
	V        int    `json:"v"`
	Subject  string `json:"s,omitempty"`
	Username string `json:"u,omitempty"`
	Expires  int64  `json:"e,omitempty"` // unix microseconds
	AuthTime int64  `json:"a,omitempty"` // unix seconds
}

var leanPrefix = []byte(`{"v":1`)

func encodeSession(kind string, sess fosite.Session) ([]byte, error) {
	os, ok := sess.(*openid.DefaultSession)
	if !ok || kind != storage.KindAccessToken {
		return json.Marshal(sess)
	}
	out := make([]byte, 9, 9+len(os.Username))
	out[0] = leanBinary
	if os.Claims != nil && !os.Claims.AuthTime.IsZero() {
		binary.BigEndian.PutUint64(out[1:9], uint64(os.Claims.AuthTime.Unix()))
	}
	claims := userinfoClaims(os)
	if claims == "" || len(os.Username) > math.MaxUint16 {
		return append(out, os.Username...), nil
	}
	out[0] = leanClaims
	out = binary.BigEndian.AppendUint16(out, uint16(len(os.Username)))
	return append(append(out, os.Username...), claims...), nil
}

// userinfoClaims is the userinfo claims request a session carries ("" if
// none).
func userinfoClaims(os *openid.DefaultSession) string {
	if os.Headers == nil {
		return ""
	}
	c, _ := os.Headers.Extra[UserinfoClaimsHeader].(string)
	return c
}

func decodeSession(raw []byte, sess fosite.Session) error {
	os, ok := sess.(*openid.DefaultSession)
	if ok && len(raw) >= 11 && raw[0] == leanClaims {
		n := int(binary.BigEndian.Uint16(raw[9:11]))
		if len(raw) < 11+n {
			return errors.New("fositestore: truncated session")
		}
		// The leanBinary form of its first fields, then the claims.
		lean := append(append([]byte{leanBinary}, raw[1:9]...), raw[11:11+n]...)
		if err := decodeSession(lean, sess); err != nil {
			return err
		}
		if os.Headers == nil {
			os.Headers = &jwt.Headers{}
		}
		if os.Headers.Extra == nil {
			os.Headers.Extra = map[string]interface{}{}
		}
		os.Headers.Extra[UserinfoClaimsHeader] = string(raw[11+n:])
		return nil
	}
	if ok && len(raw) >= 9 && raw[0] == leanBinary {
		os.Username = string(raw[9:])
		if os.Claims == nil {
			os.Claims = &jwt.IDTokenClaims{Extra: map[string]interface{}{}}
		}
		if t := int64(binary.BigEndian.Uint64(raw[1:9])); t != 0 {
			os.Claims.AuthTime = time.Unix(t, 0).UTC()
		}
		return nil
	}
	if !ok || !bytes.HasPrefix(raw, leanPrefix) {
		return json.Unmarshal(raw, sess)
	}
	var l leanSession
	if err := json.Unmarshal(raw, &l); err != nil {
		return err
	}
	os.Subject, os.Username = l.Subject, l.Username
	if os.Claims == nil {
		os.Claims = &jwt.IDTokenClaims{Extra: map[string]interface{}{}}
	}
	os.Claims.Subject = l.Subject
	if l.AuthTime != 0 {
		os.Claims.AuthTime = time.Unix(l.AuthTime, 0).UTC()
	}
	if l.Expires != 0 {
		os.SetExpiresAt(fosite.AccessToken, time.UnixMicro(l.Expires).UTC())
	}
	return nil
}
