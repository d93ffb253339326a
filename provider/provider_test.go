package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/tonearm-idp/tonearm/provider/keys"
	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/sqlitetest"
)

const testIssuer = "https://id.example.org"

func newKeys(tb testing.TB) *keys.Manager {
	tb.Helper()
	store := sqlitetest.Open(tb)
	box, _ := seal.New(seal.DeriveKey([]byte(strings.Repeat("k", 32)), "signing-keys"))
	m, err := keys.New(context.Background(), keys.Config{Store: store, Box: box, Retention: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func accessRequest(subject string) *fosite.Request {
	sess := NewSession()
	sess.Subject = subject
	sess.Claims.AuthTime = time.Now().Add(-time.Minute)
	sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
	r := fosite.NewRequest()
	r.Client = &fosite.DefaultClient{ID: "web"}
	r.GrantedScope = fosite.Arguments{"openid", "profile"}
	r.Session = sess
	return r
}

func TestAccessTokens(t *testing.T) {
	km := newKeys(t)
	s := &AccessTokenStrategy{Keys: km, Issuer: testIssuer, Lifespan: time.Hour}
	ctx := context.Background()
	token, sig, err := s.GenerateAccessToken(ctx, accessRequest("user-1"))
	if err != nil {
		t.Fatal(err)
	}
	if sig == "" || s.AccessTokenSignature(ctx, token) != sig {
		t.Fatal("signature does not match the token's last segment")
	}
	claims, err := s.ParseAccessToken(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if claims["sub"] != "user-1" || claims["client_id"] != "web" || claims["scope"] != "openid profile" || claims["iss"] != testIssuer || claims["auth_time"] == nil {
		t.Fatalf("claims = %v", claims)
	}
	// Client credentials: the subject is the client.
	cc := accessRequest("")
	tok2, _, _ := s.GenerateAccessToken(ctx, cc)
	if c, _ := s.ParseAccessToken(ctx, tok2); c["sub"] != "web" {
		t.Fatalf("client-credentials sub = %v", c["sub"])
	}

	parts := strings.Split(token, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","iss":"`+testIssuer+`","exp":9999999999}`)) + "." + parts[2]
	// An attacker's own key, with our kid in the header.
	evil, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	esKey, _ := km.Signing(keys.ES256)
	rsKey, _ := km.Signing(keys.RS256)
	forge := func(key any, alg jose.SignatureAlgorithm, kid, typ, payload string) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", kid))
		if err != nil {
			t.Fatal(err)
		}
		obj, _ := signer.Sign([]byte(payload))
		out, _ := obj.CompactSerialize()
		return out
	}
	valid := `{"iss":"` + testIssuer + `","sub":"x","exp":` + itoa(time.Now().Add(time.Hour).Unix()) + `}`
	cases := map[string]struct {
		token string
		want  *fosite.RFC6749Error
	}{
		"tampered payload":       {tampered, fosite.ErrTokenSignatureMismatch},
		"foreign key, our kid":   {forge(evil, jose.ES256, esKey.KID, "at+jwt", valid), fosite.ErrTokenSignatureMismatch},
		"ID token as access":     {forge(rsKey.Private, jose.RS256, rsKey.KID, "JWT", valid), fosite.ErrInvalidTokenFormat},
		"expired":                {forge(esKey.Private, jose.ES256, esKey.KID, "at+jwt", `{"iss":"`+testIssuer+`","exp":1}`), fosite.ErrTokenExpired},
		"other issuer":           {forge(esKey.Private, jose.ES256, esKey.KID, "at+jwt", `{"iss":"https://evil","exp":9999999999}`), fosite.ErrTokenClaim},
		"RS key with ES256 alg?": {forge(esKey.Private, jose.ES256, rsKey.KID, "at+jwt", valid), fosite.ErrTokenSignatureMismatch},
		"unknown kid":            {forge(esKey.Private, jose.ES256, "nope", "at+jwt", valid), fosite.ErrTokenSignatureMismatch},
		"garbage":                {"not-a-jwt", fosite.ErrInvalidTokenFormat},
		"alg none":               {"eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0.", fosite.ErrInvalidTokenFormat},
	}
	for name, c := range cases {
		err := s.ValidateAccessToken(ctx, nil, c.token)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// With the request stored at issuance, validation checks the stored expiry
// (fosite found the row by the token's signature).
func TestAccessTokenStoredRequest(t *testing.T) {
	s := &AccessTokenStrategy{Keys: newKeys(t), Issuer: testIssuer, Lifespan: time.Hour}
	ctx := context.Background()
	req := accessRequest("user-1")
	token, _, err := s.GenerateAccessToken(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ValidateAccessToken(ctx, req, token); err != nil {
		t.Fatalf("live stored token: %v", err)
	}
	req.GetSession().SetExpiresAt(fosite.AccessToken, time.Now().Add(-time.Second))
	if err := s.ValidateAccessToken(ctx, req, token); !errors.Is(err, fosite.ErrTokenExpired) {
		t.Fatalf("expired stored token = %v, want ErrTokenExpired", err)
	}
	if err := s.ValidateAccessToken(ctx, accessRequest("user-1"), "no-dots"); !errors.Is(err, fosite.ErrInvalidTokenFormat) {
		t.Fatalf("malformed token = %v", err)
	}
}

func TestIDTokenSigner(t *testing.T) {
	km := newKeys(t)
	s := &Signer{keys: km, alg: keys.RS256}
	ctx := context.Background()
	token, sig, err := s.Generate(ctx, jwt.MapClaims{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix()}, &jwt.Headers{})
	if err != nil || sig == "" {
		t.Fatal(err)
	}
	decoded, err := s.Decode(ctx, token)
	if err != nil || decoded.Claims["sub"] != "user-1" {
		t.Fatalf("Decode = %v, %v", decoded, err)
	}
	k, _ := km.Signing(keys.RS256)
	if decoded.Header["kid"] != k.KID {
		t.Fatalf("kid = %v, want %s", decoded.Header["kid"], k.KID)
	}
	// An ES256 token naming the RS256 key is refused (algorithm confusion).
	es, _ := km.Signing(keys.ES256)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: es.Private}, (&jose.SignerOptions{}).WithHeader("kid", k.KID))
	obj, _ := signer.Sign([]byte(`{"sub":"x"}`))
	forged, _ := obj.CompactSerialize()
	if _, err := s.Decode(ctx, forged); err == nil {
		t.Fatal("a token whose algorithm does not match its key decoded")
	}
}

// BenchmarkIDTokenSign signs one ID token (RS256, 2048-bit).
func BenchmarkIDTokenSign(b *testing.B) {
	s := &Signer{keys: newKeys(b), alg: keys.RS256}
	claims := jwt.MapClaims{"iss": testIssuer, "sub": "user-1", "aud": []string{"web"}, "exp": time.Now().Add(time.Hour).Unix(),
		"iat": time.Now().Unix(), "auth_time": time.Now().Unix(), "nonce": "nonce-123456", "preferred_username": "alice"}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := s.Generate(ctx, claims, &jwt.Headers{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAccessTokenSign signs one RFC 9068 access token (ES256).
func BenchmarkAccessTokenSign(b *testing.B) {
	s := &AccessTokenStrategy{Keys: newKeys(b), Issuer: testIssuer, Lifespan: time.Hour}
	req := accessRequest("user-1")
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := s.GenerateAccessToken(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAccessTokenVerify verifies one access token's signature and claims.
func BenchmarkAccessTokenVerify(b *testing.B) {
	s := &AccessTokenStrategy{Keys: newKeys(b), Issuer: testIssuer, Lifespan: time.Hour}
	ctx := context.Background()
	token, _, _ := s.GenerateAccessToken(ctx, accessRequest("user-1"))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := s.ParseAccessToken(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}
