package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// The printed proof is what RFC 9449 §4.2 describes, and the key file is
// created once and then reused (a token is bound to it).
func TestProof(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dpop.pem")
	key, err := loadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := loadKey(path)
	if err != nil || !again.Equal(key) {
		t.Fatalf("the key file was not reused: %v", err)
	}
	p, err := Proof(key, "GET", "http://127.0.0.1:9090/listens", "a-token", time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := jose.ParseSignedCompact(p, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := obj.Signatures[0].Protected
	if h.ExtraHeaders[jose.HeaderType] != "dpop+jwt" || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		t.Fatalf("header %+v", h)
	}
	payload, err := obj.Verify(h.JSONWebKey)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	_ = json.Unmarshal(payload, &c)
	// base64url(SHA-256("a-token"))
	if c["htm"] != "GET" || c["htu"] != "http://127.0.0.1:9090/listens" || c["iat"] != float64(1700000000) || c["jti"] == "" ||
		c["ath"] != "H2B246R7od7QgCX_4G5XryF8FPlAfzP7pQ-ZsccBk4c" {
		t.Fatalf("claims %v", c)
	}
}
