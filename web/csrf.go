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
	return c.mac(c.browser(w, r))
}

// browser returns this browser's random cookie value, setting the cookie
// first if it has none (and adding it to r, so that later calls in the
// same request see the same value).
func (c *CSRF) browser(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(c.name); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	ck := &http.Cookie{Name: c.name, Value: v, Path: "/", HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode}
	http.SetCookie(w, ck)
	r.AddCookie(ck)
	return v
}

// Binding returns a value that names this browser for purpose (an HMAC
// of its cookie), setting the cookie if it has none: what a server-side
// record stores to be usable from this browser only.
func (c *CSRF) Binding(w http.ResponseWriter, r *http.Request, purpose string) []byte {
	return c.bindingOf(c.browser(w, r), purpose)
}

// BindingOf is Binding without setting a cookie (nil: the browser has
// none).
func (c *CSRF) BindingOf(r *http.Request, purpose string) []byte {
	ck, err := r.Cookie(c.name)
	if err != nil || len(ck.Value) != 43 {
		return nil
	}
	return c.bindingOf(ck.Value, purpose)
}

func (c *CSRF) bindingOf(cookie, purpose string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("binding:" + purpose + ":" + cookie))
	return m.Sum(nil)
}

// Valid reports whether the form's token matches this browser's cookie.
func (c *CSRF) Valid(r *http.Request) bool {
	ck, err := r.Cookie(c.name)
	if err != nil || ck.Value == "" {
		return false
	}
	return hmac.Equal([]byte(r.PostFormValue("csrf_token")), []byte(c.mac(ck.Value)))
}
