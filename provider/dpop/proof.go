package dpop

import (
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// ProofClaims are what a client puts in a proof (RFC 9449 §4.2).
type ProofClaims struct {
	Method, URL string
	// AccessToken, at a resource, is hashed into ath.
	AccessToken string
	Nonce       string
	IssuedAt    time.Time
}

// MakeProof signs a proof with key (the client's side: tests, and Go
// clients and resource servers that call other APIs with DPoP).
func MakeProof(key crypto.Signer, alg jose.SignatureAlgorithm, c ProofClaims) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	body := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti), "htm": c.Method, "htu": c.URL, "iat": c.IssuedAt.Unix()}
	if c.AccessToken != "" {
		body["ath"] = AccessTokenHash(c.AccessToken)
	}
	if c.Nonce != "" {
		body["nonce"] = c.Nonce
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		return "", err
	}
	obj, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a public key,
// base64url: a jkt.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}
