package fositestore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
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
	return append(out, os.Username...), nil
}

func decodeSession(raw []byte, sess fosite.Session) error {
	os, ok := sess.(*openid.DefaultSession)
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
