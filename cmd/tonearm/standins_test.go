package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Stand-ins for the providers people sign in through: MusicBrainz's OAuth2
// server, answering as https://musicbrainz.org/doc/Development/OAuth2 says,
// and a hostile OpenID provider that forges what a test asks it to. The
// real connector code talks to them over HTTP.

func hexToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// mbAccount is a MetaBrainz account the stand-in signs in.
type mbAccount struct {
	ID            int
	Name, Email   string
	EmailVerified bool
}

type mbCode struct {
	account                       mbAccount
	redirect, challenge, clientID string
}

type fakeMusicBrainz struct {
	*httptest.Server
	clientID, secret, redirect string

	mu      sync.Mutex
	account mbAccount // who "signs in" at the authorize endpoint
	deny    bool      // the person refuses
	broken  bool      // the token endpoint fails
	codes   map[string]mbCode
	tokens  map[string]mbAccount
}

func newFakeMusicBrainz(t *testing.T, redirect string) *fakeMusicBrainz {
	f := &fakeMusicBrainz{clientID: "mb-" + hexToken()[:8], secret: hexToken(), redirect: redirect,
		codes: map[string]mbCode{}, tokens: map[string]mbAccount{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth2/authorize", f.authorize)
	mux.HandleFunc("POST /oauth2/token", f.token)
	mux.HandleFunc("GET /oauth2/userinfo", f.userinfo)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeMusicBrainz) signIn(a mbAccount) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.account, f.deny, f.broken = a, false, false
}

func (f *fakeMusicBrainz) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") != f.clientID || q.Get("redirect_uri") != f.redirect ||
		!strings.Contains(" "+q.Get("scope")+" ", " profile ") {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(f.redirect)
	v := url.Values{"state": {q.Get("state")}}
	f.mu.Lock()
	if f.deny {
		v.Set("error", "access_denied")
	} else {
		code := hexToken()
		f.codes[code] = mbCode{account: f.account, redirect: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), clientID: q.Get("client_id")}
		v.Set("code", code)
	}
	f.mu.Unlock()
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (f *fakeMusicBrainz) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	c, ok := f.codes[r.PostForm.Get("code")]
	delete(f.codes, r.PostForm.Get("code"))
	w.Header().Set("Content-Type", "application/json")
	if !ok || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("client_id") != f.clientID ||
		r.PostForm.Get("client_secret") != f.secret || r.PostForm.Get("redirect_uri") != c.redirect ||
		(c.challenge != "" && s256(r.PostForm.Get("code_verifier")) != c.challenge) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
		return
	}
	tok := hexToken()
	f.tokens[tok] = c.account
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600, "refresh_token": hexToken()})
}

func (f *fakeMusicBrainz) userinfo(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	a, ok := f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	f.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	info := map[string]any{"sub": a.Name, "profile": f.URL + "/user/" + a.Name, "metabrainz_user_id": a.ID}
	if a.Email != "" {
		info["email"], info["email_verified"] = a.Email, a.EmailVerified
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(info)
}

// hostileOIDC is an OpenID provider that signs its ID tokens as told:
// with its published key, or forged (another key), or with another
// nonce.
type hostileOIDC struct {
	*httptest.Server
	clientID, secret string
	key, forger      *rsa.PrivateKey

	mu    sync.Mutex
	forge string            // "", "signature", "nonce", "audience", "expired"
	codes map[string]string // code → nonce
}

func newHostileOIDC(t *testing.T) *hostileOIDC {
	h := &hostileOIDC{clientID: "down", secret: hexToken(), codes: map[string]string{}}
	var err error
	if h.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if h.forger, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": h.URL, "authorization_endpoint": h.URL + "/auth", "token_endpoint": h.URL + "/token", "jwks_uri": h.URL + "/jwks",
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &h.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /auth", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		code := hexToken()
		h.mu.Lock()
		h.codes[code] = q.Get("nonce")
		h.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", h.token)
	h.Server = httptest.NewServer(mux)
	t.Cleanup(h.Close)
	return h
}

func (h *hostileOIDC) setForge(how string) {
	h.mu.Lock()
	h.forge = how
	h.mu.Unlock()
}

func (h *hostileOIDC) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	h.mu.Lock()
	nonce, ok := h.codes[r.PostForm.Get("code")]
	delete(h.codes, r.PostForm.Get("code"))
	forge := h.forge
	h.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
		return
	}
	key, aud, exp := h.key, h.clientID, time.Now().Add(time.Minute)
	switch forge {
	case "signature":
		key = h.forger
	case "nonce":
		nonce = "not-" + nonce
	case "audience":
		aud = "someone-else"
	case "expired":
		exp = time.Now().Add(-time.Hour)
	}
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	raw, _ := jwt.Signed(signer).Claims(map[string]any{
		"iss": h.URL, "sub": "hostile-1", "aud": aud, "exp": exp.Unix(), "iat": time.Now().Unix(), "nonce": nonce,
		"preferred_username": "mallory", "email": "mallory@example.org", "email_verified": true,
	}).Serialize()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": hexToken(), "token_type": "Bearer", "expires_in": 60, "id_token": raw})
}
