package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// CSRF protects the HTML forms with a signed double-submit token: a random
// HttpOnly cookie, and in each form the HMAC of that cookie under a server
// key. A cross-site page can neither read the cookie nor forge the MAC.
type CSRF struct {
	key    []byte
	name   string
	secure bool
}

// NewCSRF returns the protector; key is a 32-byte server key, issuer decides
// the cookie's Secure flag and __Host- prefix.
func NewCSRF(key []byte, issuer string) *CSRF {
	c := NewCookies(issuer)
	name := "tonearm_csrf"
	if c.secure {
		name = "__Host-tonearm_csrf"
	}
	return &CSRF{key: key, name: name, secure: c.secure}
}

func (c *CSRF) mac(cookie string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("csrf:" + cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Token returns the form token for this browser, setting the cookie first
// if it has none.
func (c *CSRF) Token(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(c.name); err == nil && len(ck.Value) == 43 {
		return c.mac(ck.Value)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: c.name, Value: v, Path: "/", HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode})
	return c.mac(v)
}

// Valid reports whether the form's token matches this browser's cookie.
func (c *CSRF) Valid(r *http.Request) bool {
	ck, err := r.Cookie(c.name)
	if err != nil || ck.Value == "" {
		return false
	}
	return hmac.Equal([]byte(r.PostFormValue("csrf_token")), []byte(c.mac(ck.Value)))
}
