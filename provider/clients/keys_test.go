package clients

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// jwksOf is a JWK Set of keys (public or private, as given), kid k1, k2…
func jwksOf(t *testing.T, keys ...any) string {
	t.Helper()
	var set jose.JSONWebKeySet
	for i, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, KeyID: fmt.Sprintf("k%d", i+1), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestKeysValidation(t *testing.T) {
	ctx := context.Background()
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	good := jwksOf(t, &rsa2048.PublicKey, &p256.PublicKey, edPub)
	many := make([]any, 21)
	for i := range many {
		many[i] = edPub
	}
	dupKid := strings.Replace(jwksOf(t, &p256.PublicKey, edPub), `"kid":"k2"`, `"kid":"k1"`, 1)
	web := func(k Keys) Spec {
		return Spec{ID: "c", RedirectURIs: []string{"https://app.example/cb"}, Keys: k}
	}
	native := func(k Keys) Spec {
		return Spec{ID: "c", Public: true, RedirectURIs: []string{"https://app.example/cb"}, Keys: k}
	}
	pkj := AuthPrivateKeyJWT
	r, _ := newRegistry(t)
	for _, tc := range []struct {
		name string
		spec Spec
		want string // "" accepted, else a part of the message
	}{
		{"secret default", web(Keys{}), ""},
		{"client_secret_post", web(Keys{TokenEndpointAuthMethod: AuthSecretPost}), ""},
		{"client_secret_basic", web(Keys{TokenEndpointAuthMethod: AuthSecretBasic}), ""},
		{"private_key_jwt with jwks", web(Keys{TokenEndpointAuthMethod: pkj, JWKS: good}), ""},
		{"private_key_jwt with jwks_uri", web(Keys{TokenEndpointAuthMethod: pkj, JWKSURI: "https://app.example/jwks.json"}), ""},
		{"jwks without private_key_jwt", web(Keys{JWKS: good}), ""},
		{"public none", native(Keys{TokenEndpointAuthMethod: AuthNone}), ""},
		{"unknown method", web(Keys{TokenEndpointAuthMethod: "client_secret_jwt"}), "token_endpoint_auth_method must be"},
		{"confidential none", web(Keys{TokenEndpointAuthMethod: AuthNone}), "none is for public clients"},
		{"public secret", native(Keys{TokenEndpointAuthMethod: AuthSecretPost}), "a public client authenticates with none"},
		{"public private_key_jwt", native(Keys{TokenEndpointAuthMethod: pkj, JWKS: good}), "a public client authenticates with none"},
		{"private_key_jwt without keys", web(Keys{TokenEndpointAuthMethod: pkj}), "needs its public keys"},
		{"both jwks and jwks_uri", web(Keys{TokenEndpointAuthMethod: pkj, JWKS: good, JWKSURI: "https://app.example/jwks.json"}), "not both"},
		{"private RSA key", web(Keys{TokenEndpointAuthMethod: pkj, JWKS: jwksOf(t, rsa2048)}), "holds a private key"},
		{"private EC key", web(Keys{TokenEndpointAuthMethod: pkj, JWKS: jwksOf(t, p256)}), "holds a private key"},
		{"private Ed25519 key", web(Keys{TokenEndpointAuthMethod: pkj, JWKS: jwksOf(t, edPriv)}), "holds a private key"},
		{"symmetric key", web(Keys{TokenEndpointAuthMethod: pkj, JWKS: jwksOf(t, []byte("0123456789abcdef0123456789abcdef"))}), "symmetric"},
		{"RSA 1024", web(Keys{TokenEndpointAuthMethod: pkj, JWKS: jwksOf(t, &rsa1024.PublicKey)}), "at least 2048"},
		{"P-384", web(Keys{TokenEndpointAuthMethod: pkj, JWKS: jwksOf(t, &p384.PublicKey)}), "only P-256"},
		{"duplicate kid", web(Keys{TokenEndpointAuthMethod: pkj, JWKS: dupKid}), "each kid must be unique"},
		{"21 keys", web(Keys{TokenEndpointAuthMethod: pkj, JWKS: jwksOf(t, many...)}), "at most 20"},
		{"no keys", web(Keys{TokenEndpointAuthMethod: pkj, JWKS: `{"keys":[]}`}), "has no keys"},
		{"not a set", web(Keys{TokenEndpointAuthMethod: pkj, JWKS: `{"kty":"OKP"}`}), "must be a JWK Set"},
		{"not JSON", web(Keys{TokenEndpointAuthMethod: pkj, JWKS: `keys`}), "must be a JWK Set"},
		{"over 64 KiB", web(Keys{TokenEndpointAuthMethod: pkj, JWKS: `{"keys":[],"x":"` + strings.Repeat("a", 64<<10) + `"}`}), "at most 64 KiB"},
		{"jwks_uri http", web(Keys{JWKSURI: "http://app.example/jwks"}), "must be an https URL"},
		{"jwks_uri http loopback, issuer not loopback", web(Keys{JWKSURI: "http://127.0.0.1/jwks"}), "must be an https URL"},
		{"jwks_uri user info", web(Keys{JWKSURI: "https://u:p@app.example/jwks"}), "user name or password"},
		{"jwks_uri fragment", web(Keys{JWKSURI: "https://app.example/jwks#x"}), "fragment"},
		{"jwks_uri relative", web(Keys{JWKSURI: "/jwks"}), "absolute"},
		{"jwks_uri too long", web(Keys{JWKSURI: "https://app.example/" + strings.Repeat("a", 2000)}), "at most 2,000"},
		{"request_uri with fragment", web(Keys{RequestURIs: []string{"https://app.example/req#abc"}}), ""},
		{"request_uri http", web(Keys{RequestURIs: []string{"http://app.example/req"}}), "must be an https URL"},
		{"request alg none", web(Keys{RequestObjectSigningAlg: "none"}), ""},
		{"request alg EdDSA", web(Keys{RequestObjectSigningAlg: "EdDSA"}), ""},
		{"request alg HS256", web(Keys{RequestObjectSigningAlg: "HS256"}), "request_object_signing_alg must be"},
		{"pairwise", web(Keys{SubjectType: storage.SubjectPairwise}), ""},
		{"pairwise with sector", web(Keys{SubjectType: storage.SubjectPairwise, SectorIdentifierURI: "https://app.example/sector.json"}), ""},
		{"subject type unknown", web(Keys{SubjectType: "secret"}), "subject_type must be public or pairwise"},
		{"sector without pairwise", web(Keys{SectorIdentifierURI: "https://app.example/sector.json"}), "is for pairwise subjects"},
		{"sector http", web(Keys{SubjectType: storage.SubjectPairwise, SectorIdentifierURI: "http://app.example/s"}), "must be an https URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := r.List(ctx)
			tc.spec.ID = fmt.Sprintf("c%d", len(before))
			c, _, err := r.Create(ctx, tc.spec)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.SubjectType == "" {
					t.Fatal("no subject type stored")
				}
				return
			}
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Kind() != fault.Invalid || !strings.Contains(fe.Message(), tc.want) {
				t.Fatalf("Create = %v, want a refusal saying %q", err, tc.want)
			}
			if list, _ := r.List(ctx); len(list) != len(before) {
				t.Fatal("a refused client was stored")
			}
		})
	}
}

// While the issuer is on loopback (development, the tests) a client's
// URLs may be http on loopback; otherwise never.
func TestKeysLoopbackIssuer(t *testing.T) {
	ctx := context.Background()
	r, h := newRegistry(t)
	spec := Spec{ID: "c", RedirectURIs: []string{"https://app.example/cb"}, Keys: Keys{JWKSURI: "http://127.0.0.1:9/jwks", RequestURIs: []string{"http://localhost:9/r"}}}
	if _, err := r.Check(ctx, spec); err == nil {
		t.Fatal("http loopback accepted without a loopback issuer")
	}
	for issuer, ok := range map[string]bool{"http://127.0.0.1:8080": true, "https://id.example": false} {
		r2, _ := NewRegistry(r.store, h, WithIssuer(issuer))
		if _, err := r2.Check(ctx, spec); (err == nil) != ok {
			t.Errorf("issuer %s: Check = %v", issuer, err)
		}
	}
	r3, _ := NewRegistry(r.store, h, WithIssuer("http://127.0.0.1:8080"))
	spec.Keys = Keys{JWKSURI: "http://app.example/jwks"}
	if _, err := r3.Check(ctx, spec); err == nil {
		t.Fatal("http on a non-loopback host accepted")
	}
}

// Turning a client to private_key_jwt drops its secret in the same write;
// turning it back leaves it without one until rotate-secret; its subject
// type never changes.
func TestKeysUpdate(t *testing.T) {
	ctx := context.Background()
	r, _ := newRegistry(t)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	c, secret, err := r.Create(ctx, Spec{ID: "c", RedirectURIs: []string{"https://app.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err = r.Update(ctx, "c", func(s *Spec) { s.TokenEndpointAuthMethod, s.JWKS = AuthPrivateKeyJWT, jwksOf(t, edPub) })
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SecretHash) != 0 || r.SecretMatches(ctx, c, secret) || NeedsSecret(c) {
		t.Fatal("the secret survived the switch to private_key_jwt")
	}
	if _, err := r.RotateSecret(ctx, "c", 0); err == nil {
		t.Fatal("a private_key_jwt client was given a secret")
	}
	if _, err := r.Update(ctx, "c", func(s *Spec) { s.Secret = strings.Repeat("s", 32) }); err == nil {
		t.Fatal("a private_key_jwt client took a secret on update")
	}
	c, err = r.Update(ctx, "c", func(s *Spec) { s.TokenEndpointAuthMethod = AuthSecretBasic })
	if err != nil {
		t.Fatal(err)
	}
	if !NeedsSecret(c) {
		t.Fatal("back to client_secret_basic: NeedsSecret false")
	}
	fresh, err := r.RotateSecret(ctx, "c", 0)
	if err != nil {
		t.Fatal(err)
	}
	c, _ = r.Get(ctx, "c")
	if !r.SecretMatches(ctx, c, fresh) {
		t.Fatal("the rotated secret does not match")
	}
	if _, err := r.Update(ctx, "c", func(s *Spec) { s.SubjectType = storage.SubjectPairwise }); err == nil || !strings.Contains(err.Error(), "cannot change") {
		t.Fatalf("subject type changed: %v", err)
	}
	// Apps: pairwise by default, and they keep their subject type.
	app, err := r.RegisterApp(ctx, AppSpec{Type: AppWeb, RedirectURIs: []string{"https://app.example/cb"}, Display: Display{Name: "App"}}, "", storage.RegisteredOpenly)
	if err != nil || app.Client.SubjectType != storage.SubjectPairwise {
		t.Fatalf("app: %v, subject type %q", err, app.Client.SubjectType)
	}
	if _, err := r.UpdateApp(ctx, app.Client.ID, AppSpec{Type: AppWeb, RedirectURIs: []string{"https://app.example/cb"}, Display: Display{Name: "App"},
		Keys: Keys{SubjectType: storage.SubjectPublic}}); err == nil {
		t.Fatal("an app's subject type changed")
	}
	upd, err := r.UpdateApp(ctx, app.Client.ID, AppSpec{AuthMethod: AuthPrivateKeyJWT, RedirectURIs: []string{"https://app.example/cb"}, Display: Display{Name: "App"},
		Keys: Keys{JWKS: jwksOf(t, edPub)}})
	if err != nil || len(upd.SecretHash) != 0 || upd.SubjectType != storage.SubjectPairwise {
		t.Fatalf("app to private_key_jwt: %v (secret kept: %v)", err, len(upd.SecretHash) != 0)
	}
	if _, err := r.UpdateApp(ctx, app.Client.ID, AppSpec{AuthMethod: AuthSecretBasic, RedirectURIs: []string{"https://app.example/cb"}, Display: Display{Name: "App"}}); err == nil {
		t.Fatal("an app left private_key_jwt without a secret")
	}
}

// A change of keys is recorded by the names the admin API spells them,
// with the secret dropped by the switch to private_key_jwt.
func TestKeysChangesRecorded(t *testing.T) {
	f := newAuditFixture(t)
	ctx := audit.WithOrigin(context.Background(), byAdmin)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, _, err := f.reg.Create(ctx, Spec{ID: "shop", RedirectURIs: []string{"https://shop.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	f.wantOne(t, "Create", audit.ClientCreated, "", "shop", `{}`)
	if _, err := f.reg.Update(ctx, "shop", func(s *Spec) {
		s.TokenEndpointAuthMethod, s.JWKS, s.RequestURIs = AuthPrivateKeyJWT, jwksOf(t, edPub), []string{"https://shop.example/r"}
	}); err != nil {
		t.Fatal(err)
	}
	f.wantOne(t, "Update to private_key_jwt", audit.ClientChanged, "", "shop", `{"fields":["tokenEndpointAuthMethod","jwks","requestUris"],"secret":"set"}`)
}

// The sector check (OpenID Connect Core §8.1, filled by the pairwise
// part) gets the URI and the redirect URIs, and its refusal is the
// registry's.
func TestKeysSectorCheck(t *testing.T) {
	ctx := context.Background()
	r, h := newRegistry(t)
	var got []string
	check := func(_ context.Context, uri string, redirects []string) error {
		got = append([]string{uri}, redirects...)
		if strings.Contains(uri, "bad") {
			return invalid("the sector document does not list the redirect URIs").On(sectorIdentifierField)
		}
		return nil
	}
	r2, _ := NewRegistry(r.store, h, WithSectorCheck(check))
	spec := Spec{ID: "p", RedirectURIs: []string{"https://a.example/cb"}, Keys: Keys{SubjectType: storage.SubjectPairwise, SectorIdentifierURI: "https://a.example/sector.json"}}
	if _, _, err := r2.Create(ctx, spec); err != nil || strings.Join(got, " ") != "https://a.example/sector.json https://a.example/cb" {
		t.Fatalf("Create = %v, check saw %v", err, got)
	}
	spec.ID, spec.SectorIdentifierURI = "q", "https://bad.example/sector.json"
	if _, _, err := r2.Create(ctx, spec); err == nil || !strings.Contains(err.Error(), "does not list") {
		t.Fatalf("a refused sector: %v", err)
	}
	// A pairwise client without a sector_identifier_uri is checked too
	// (its redirect hosts); a public one is not.
	got = nil
	spec.ID, spec.SectorIdentifierURI = "r", ""
	if _, _, err := r2.Create(ctx, spec); err != nil || strings.Join(got, " ") != " https://a.example/cb" {
		t.Fatalf("Create without a sector URI = %v, check saw %q", err, got)
	}
	got = nil
	spec.ID, spec.SubjectType = "s", storage.SubjectPublic
	if _, _, err := r2.Create(ctx, spec); err != nil || got != nil {
		t.Fatalf("Create of a public client = %v, check saw %q", err, got)
	}
}
