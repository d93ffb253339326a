// Command dpop-proof prints a DPoP proof (RFC 9449 §4.2) for one request, so
// the DPoP examples in docs/resource-servers.md run with curl. The key is an
// ECDSA P-256 key in a PEM file, created when the file does not exist: keep
// it, since tokens are bound to it.
//
//	curl -H "DPoP: $(go run ./examples/resource-server/dpop-proof -key /tmp/dpop.pem -method POST -url http://127.0.0.1:8080/oauth2/token)" …
//	curl -H "Authorization: DPoP $TOKEN" -H "DPoP: $(go run ./examples/resource-server/dpop-proof -key /tmp/dpop.pem -url http://127.0.0.1:9090/listens -token "$TOKEN")" http://127.0.0.1:9090/listens
//
// A real client makes a new proof per request with its OAuth library (for
// example openid-client's DPoP option); this is for trying things out.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Proof signs a proof for method and url with key; with token (at a
// resource, not at the token endpoint) it carries ath, the token's SHA-256.
func Proof(key *ecdsa.PrivateKey, method, url, token string, now time.Time) (string, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, &jose.SignerOptions{
		ExtraHeaders: map[jose.HeaderKey]any{"typ": "dpop+jwt", "jwk": jose.JSONWebKey{Key: &key.PublicKey}},
	})
	if err != nil {
		return "", err
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	claims := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti), "htm": method, "htu": url, "iat": now.Unix()}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// loadKey reads the PEM key at path, or creates it (readable by its owner only).
func loadKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, err
		}
		return key, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
	}
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: not a PEM file", path)
	}
	return x509.ParseECPrivateKey(block.Bytes)
}

func main() {
	keyFile := flag.String("key", "dpop.pem", "the client's DPoP key (ECDSA P-256, PEM; created when missing)")
	method := flag.String("method", "GET", "the request's method (htm)")
	url := flag.String("url", "", "the request's URL without query (htu)")
	token := flag.String("token", "", "the access token sent with the request (ath); none at the token endpoint")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "dpop-proof: -url is required")
		os.Exit(2)
	}
	key, err := loadKey(*keyFile)
	if err == nil {
		var p string
		if p, err = Proof(key, *method, *url, *token, time.Now()); err == nil {
			fmt.Println(p)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "dpop-proof:", err)
	os.Exit(1)
}
