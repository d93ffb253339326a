package main

import (
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tonearm-idp/tonearm/provider/clientkeys/clientkeystest"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// One unmodified openid-client v6 relying party uses everything issue 33
// added at once, as an organisation keeping its key in a KMS would: it
// authenticates with private_key_jwt (EdDSA), sends its authorization
// request as a signed request object carrying a claims parameter, gets the
// answer by form_post, and sees a pairwise subject — the same one on its
// second sign-in, and not the user ID.
func TestI33OpenIDClientEverythingTogether(t *testing.T) {
	t.Parallel()
	openidClient(t) // skip (or fail under CI) before anything else
	s := startE2E(t, sqliteURL(t), options{})
	u := s.user("kms-person")
	key := clientkeystest.NewKey(t, jose.EdDSA, "kms-1")
	der, err := x509.MarshalPKCS8PrivateKey(key.Private)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freeLoopbackPort(t)
	callback := "http://127.0.0.1:" + strconv.Itoa(port) + "/callback"
	s.client(clients.Spec{ID: "kms-app", FirstParty: true, RedirectURIs: []string{callback}, Scopes: []string{"openid", "profile"},
		Keys: clients.Keys{TokenEndpointAuthMethod: "private_key_jwt", JWKS: clientkeystest.JWKS(t, key), SubjectType: storage.SubjectPairwise}})

	var subs []any
	for range 2 {
		rp := startOpenIDClient(t, s.issuer, port, "--client-id", "kms-app", "--auth", "private_key_jwt", "--key", keyFile, "--kid", key.KID,
			"--alg", "EdDSA", "--request", "jar", "--response-mode", "form_post", "--scope", "openid",
			"--param", `claims={"id_token":{"preferred_username":null}}`)
		if q, err := url.Parse(rp.AuthURL); err != nil || q.Query().Get("request") == "" || q.Query().Has("claims") {
			t.Fatalf("openid-client's URL does not carry everything in a request object: %s", rp.AuthURL)
		}
		o := s.signInThroughOpenIDClient(t, rp, "kms-person", false)
		if !o.OK || o.Method != "POST" || !o.IDToken || !o.AccessToken {
			t.Fatalf("openid-client outcome: %+v", o)
		}
		// Only openid was asked as a scope: preferred_username comes by name.
		if o.Claims["preferred_username"] != "kms-person" {
			t.Fatalf("the claim asked by name is not in the ID token: %v", o.Claims)
		}
		if o.Claims["sub"] == u.ID || o.Claims["sub"] == "" || o.Userinfo["sub"] != o.Claims["sub"] {
			t.Fatalf("pairwise sub: ID token %v, userinfo %v, user ID %s", o.Claims["sub"], o.Userinfo["sub"], u.ID)
		}
		subs = append(subs, o.Claims["sub"])
	}
	if subs[0] != subs[1] {
		t.Fatalf("the pairwise sub changed between two sign-ins: %v", subs)
	}
}
