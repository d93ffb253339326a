package fositestore

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/tonearm-idp/tonearm/storage"
)

func fullSession() *openid.DefaultSession {
	s := &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{Subject: "user-1", AuthTime: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), Extra: map[string]interface{}{"sid": "s-1"}},
		Headers: &jwt.Headers{Extra: map[string]interface{}{}},
		Subject: "user-1", Username: "alice",
	}
	s.SetExpiresAt(fosite.AccessToken, time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC))
	return s
}

// An access token's session is stored lean, and reads back what the token
// needs; codes and refresh tokens keep the whole session; rows written in
// the full form before still read.
func TestSessionEncoding(t *testing.T) {
	lean, err := encodeSession(storage.KindAccessToken, fullSession())
	if err != nil {
		t.Fatal(err)
	}
	full, _ := json.Marshal(fullSession())
	if len(lean) != 9+len("alice") || lean[0] != leanBinary {
		t.Fatalf("lean session is %d bytes (full %d): %x", len(lean), len(full), lean)
	}
	jsonLean := []byte(fmt.Sprintf(`{"v":1,"u":"alice","a":%d}`, fullSession().Claims.AuthTime.Unix()))
	for name, raw := range map[string][]byte{"lean": lean, "lean JSON (older rows)": jsonLean, "full (older rows)": full} {
		got := &openid.DefaultSession{}
		if err := decodeSession(raw, got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name != "full (older rows)" {
			// The row's subject and expiry columns (loadRow).
			got.Subject = "user-1"
			got.SetExpiresAt(fosite.AccessToken, fullSession().GetExpiresAt(fosite.AccessToken))
		}
		if got.GetSubject() != "user-1" || got.GetUsername() != "alice" || !got.Claims.AuthTime.Equal(fullSession().Claims.AuthTime) ||
			!got.GetExpiresAt(fosite.AccessToken).Equal(time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC).Truncate(time.Microsecond)) &&
				!got.GetExpiresAt(fosite.AccessToken).Equal(time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)) {
			t.Fatalf("%s: decoded %+v (exp %v)", name, got, got.GetExpiresAt(fosite.AccessToken))
		}
	}
	for _, kind := range []string{storage.KindRefreshToken, storage.KindAuthorizeCode, storage.KindOpenID} {
		raw, _ := encodeSession(kind, fullSession())
		if string(raw) != string(full) {
			t.Fatalf("%s session was not kept whole", kind)
		}
	}
}

// An access token whose authorization asked userinfo for claims by name
// keeps that request in its lean session.
func TestSessionEncodingUserinfoClaims(t *testing.T) {
	s := fullSession()
	s.Headers.Extra[UserinfoClaimsHeader] = `{"userinfo":{"name":null}}`
	raw, err := encodeSession(storage.KindAccessToken, s)
	if err != nil {
		t.Fatal(err)
	}
	if raw[0] != leanClaims || len(raw) != 11+len("alice")+len(`{"userinfo":{"name":null}}`) {
		t.Fatalf("lean session with claims: %x", raw)
	}
	got := &openid.DefaultSession{}
	if err := decodeSession(raw, got); err != nil {
		t.Fatal(err)
	}
	if got.Username != "alice" || !got.Claims.AuthTime.Equal(s.Claims.AuthTime) || got.Headers.Extra[UserinfoClaimsHeader] != `{"userinfo":{"name":null}}` {
		t.Fatalf("decoded %+v %+v", got, got.Headers)
	}
	if err := decodeSession(raw[:12], &openid.DefaultSession{}); err == nil {
		t.Fatal("a truncated session decoded")
	}
}
