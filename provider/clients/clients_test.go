package clients

import (
	"context"
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/storage/sqlstore"
)

func newRegistry(t *testing.T) (*Registry, *SecretHasher) {
	store, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	h, err := NewSecretHasher([]byte(strings.Repeat("h", 32)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRegistry(store, h)
	if err != nil {
		t.Fatal(err)
	}
	return r, h
}

func TestCreateConfidential(t *testing.T) {
	r, h := newRegistry(t)
	ctx := context.Background()
	c, secret, err := r.Create(ctx, Spec{ID: "web", RedirectURIs: []string{"https://app.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil || len(raw) < 32 {
		t.Fatalf("generated secret %q: want ≥ 256 bits", secret)
	}
	if strings.Contains(string(c.SecretHash), secret) || len(c.SecretHash) != 32 {
		t.Fatal("secret stored in clear")
	}
	if err := h.Compare(ctx, c.SecretHash, []byte(secret)); err != nil {
		t.Fatalf("right secret refused: %v", err)
	}
	if err := h.Compare(ctx, c.SecretHash, []byte(secret+"x")); !errors.Is(err, ErrSecretMismatch) {
		t.Fatal("wrong secret accepted")
	}
	if err := h.Compare(ctx, nil, []byte("")); err == nil {
		t.Fatal("empty hash accepted an empty secret")
	}
	if c.GrantTypes[0] != "authorization_code" || len(c.Scopes) == 0 || c.Public {
		t.Fatalf("defaults = %+v", c)
	}
	if _, _, err := r.Create(ctx, Spec{ID: "web", RedirectURIs: []string{"https://app.example/cb"}}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate ID = %v", err)
	}
	list, err := r.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %v, %v", list, err)
	}
	if err := r.Delete(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete = %v", err)
	}
}

func TestCreateValidation(t *testing.T) {
	r, _ := newRegistry(t)
	cb := []string{"https://app.example/cb"}
	for name, spec := range map[string]Spec{
		"bad id":                {ID: "has space", RedirectURIs: cb},
		"empty id":              {ID: "", RedirectURIs: cb},
		"no redirect":           {ID: "a"},
		"relative redirect":     {ID: "a", RedirectURIs: []string{"/cb"}},
		"fragment":              {ID: "a", RedirectURIs: []string{"https://app.example/cb#x"}},
		"http non-loopback":     {ID: "a", RedirectURIs: []string{"http://app.example/cb"}},
		"javascript scheme":     {ID: "a", RedirectURIs: []string{"javascript:alert(1)"}},
		"unknown grant":         {ID: "a", RedirectURIs: cb, GrantTypes: []string{"password"}},
		"implicit-free refresh": {ID: "a", GrantTypes: []string{"refresh_token"}},
		"public with secret":    {ID: "a", RedirectURIs: cb, Public: true, Secret: strings.Repeat("s", 40)},
		"public cc":             {ID: "a", Public: true, GrantTypes: []string{"client_credentials"}},
		"short secret":          {ID: "a", RedirectURIs: cb, Secret: "short"},
		"unknown scope":         {ID: "a", RedirectURIs: cb, Scopes: []string{"openid superuser"}},
		"admin for public":      {ID: "a", RedirectURIs: cb, Public: true, Scopes: []string{"openid", "admin"}},
		"http logo":             {ID: "a", RedirectURIs: cb, Display: Display{LogoURI: "http://app.example/logo.png"}},
		"javascript logo":       {ID: "a", RedirectURIs: cb, Display: Display{LogoURI: "javascript:alert(1)"}},
		"html data logo":        {ID: "a", RedirectURIs: cb, Display: Display{LogoURI: "data:text/html;base64,PHNjcmlwdD4="}},
		"data logo with quote":  {ID: "a", RedirectURIs: cb, Display: Display{LogoURI: `data:image/png;base64,AAAA" onerror="x`}},
		"huge data logo":        {ID: "a", RedirectURIs: cb, Display: Display{LogoURI: "data:image/png;base64," + strings.Repeat("A", 70000)}},
		"javascript policy":     {ID: "a", RedirectURIs: cb, Display: Display{PolicyURI: "javascript:alert(1)"}},
		"relative client uri":   {ID: "a", RedirectURIs: cb, Display: Display{ClientURI: "/about"}},
		"long name":             {ID: "a", RedirectURIs: cb, Display: Display{Name: strings.Repeat("n", 101)}},
		"control in name":       {ID: "a", RedirectURIs: cb, Display: Display{Name: "a\nb"}},
	} {
		_, _, err := r.Create(context.Background(), spec)
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: %v, want a ValidationError", name, err)
		}
	}
	// Accepted shapes.
	for name, spec := range map[string]Spec{
		"public native loopback": {ID: "cli", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}},
		"private-use scheme":     {ID: "app", Public: true, RedirectURIs: []string{"org.example.app:/cb"}},
		"machine client":         {ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}},
		"admin console":          {ID: "console", RedirectURIs: []string{"https://console.example/cb"}, Scopes: []string{"openid", "account", "admin"}},
		"display metadata": {ID: "shown", RedirectURIs: cb, Display: Display{Name: "Listening Party ♫", LogoURI: "https://app.example/logo.svg",
			ClientURI: "https://app.example/", PolicyURI: "https://app.example/privacy", TosURI: "http://localhost:3000/terms"}},
		"data logo": {ID: "inline-logo", RedirectURIs: cb, Display: Display{LogoURI: "data:image/svg+xml;base64,PHN2Zy8+"}},
	} {
		if _, _, err := r.Create(context.Background(), spec); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
}

// TestURIRule: one rule for redirect, post-logout redirect and back-channel
// logout URIs, on the operator's path (Create, Update, Check) and the
// developers' (RegisterApp, UpdateApp) alike: no wildcard host, no user
// info, at most MaxURILength characters.
func TestURIRule(t *testing.T) {
	r, _ := newRegistry(t)
	ctx := context.Background()
	long := "https://app.example/cb?" + strings.Repeat("a", MaxURILength-len("https://app.example/cb?")+1)
	bad := map[string]string{
		"wildcard host":       "https://*.example.com/cb",
		"bare wildcard":       "https://*/cb",
		"private wildcard":    "org.example.app://*/cb",
		"user and password":   "https://user:password@app.example/cb",
		"user only":           "https://user@app.example/cb",
		"9,000 characters":    "https://app.example/cb?" + strings.Repeat("a", 9000),
		"2,001 characters":    long,
		"loopback with creds": "http://u:p@127.0.0.1/cb",
	}
	if len(long) != MaxURILength+1 {
		t.Fatalf("long URI is %d characters", len(long))
	}
	for name, uri := range bad {
		for _, shape := range []struct {
			field string
			spec  Spec
		}{
			{"redirect_uris", Spec{ID: "c", Public: true, RedirectURIs: []string{uri}}},
			{"post_logout_redirect_uris", Spec{ID: "c", Public: true, RedirectURIs: []string{"https://app.example/cb"}, PostLogoutRedirectURIs: []string{uri}}},
		} {
			_, _, err := r.Create(ctx, shape.spec)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != shape.field || len(ve.Message) > 300 {
				t.Errorf("%s as %s: Create = %v, want a short ValidationError on %s", name, shape.field, err, shape.field)
			}
			if _, err := r.Check(ctx, shape.spec); !errors.As(err, &ve) {
				t.Errorf("%s as %s: Check = %v", name, shape.field, err)
			}
		}
		if strings.HasPrefix(uri, "https://") {
			if _, _, err := r.Create(ctx, Spec{ID: "c", RedirectURIs: []string{"https://app.example/cb"}, BackchannelLogoutURI: uri}); err == nil {
				t.Errorf("%s as the back-channel logout URI accepted", name)
			}
		}
		app := AppSpec{Type: AppNative, RedirectURIs: []string{uri}, Display: Display{Name: "App"}}
		if _, err := r.RegisterApp(ctx, app, "", ""); err == nil {
			t.Errorf("%s: RegisterApp accepted it", name)
		}
		app = AppSpec{Type: AppNative, RedirectURIs: []string{"https://app.example/cb"}, PostLogoutRedirectURIs: []string{uri}, Display: Display{Name: "App"}}
		if _, err := r.RegisterApp(ctx, app, "", ""); err == nil {
			t.Errorf("%s: RegisterApp accepted it as a post-logout redirect URI", name)
		}
	}
	// Editing goes through the same rule.
	if _, _, err := r.Create(ctx, Spec{ID: "edited", RedirectURIs: []string{"https://app.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	for name, uri := range bad {
		if _, err := r.Update(ctx, "edited", func(s *Spec) { s.RedirectURIs = []string{uri} }); err == nil {
			t.Errorf("%s: Update accepted it", name)
		}
	}
	// At the cap, and the ordinary shapes, pass.
	atCap := long[:MaxURILength]
	for _, uri := range []string{atCap, "https://app.example/cb", "http://127.0.0.1:8080/cb", "org.example.app:/cb"} {
		if _, err := r.Check(ctx, Spec{ID: "ok", Public: true, RedirectURIs: []string{uri}, PostLogoutRedirectURIs: []string{uri}}); err != nil {
			t.Errorf("%.40s… refused: %v", uri, err)
		}
	}
}

// After TONEARM_SECRET is rotated, a secret hashed under the previous key
// still matches, and nothing else does.
func TestSecretHasherPreviousKeys(t *testing.T) {
	ctx := context.Background()
	oldKey, newKey := []byte(strings.Repeat("o", 32)), []byte(strings.Repeat("n", 32))
	old, _ := NewSecretHasher(oldKey)
	hash, _ := old.Hash(ctx, []byte("client secret"))
	alone, _ := NewSecretHasher(newKey)
	if alone.Compare(ctx, hash, []byte("client secret")) == nil {
		t.Fatal("the new key alone matched a hash made under the old one")
	}
	ring, err := NewSecretHasher(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Compare(ctx, hash, []byte("client secret")); err != nil {
		t.Fatalf("Compare under the previous key = %v", err)
	}
	if ring.Compare(ctx, hash, []byte("another secret")) == nil || ring.Compare(ctx, nil, []byte("client secret")) == nil {
		t.Fatal("Compare matched a wrong secret or an empty hash")
	}
}

// A client secret hashed under a previous key is stored again under the
// current key the first time it is shown to match, so it keeps working
// once the previous secret is dropped.
func TestSecretRekeyedOnUse(t *testing.T) {
	ctx := context.Background()
	r, old := newRegistry(t) // keyed by "h"×32
	c, secret, err := r.Create(ctx, Spec{ID: "web", RedirectURIs: []string{"https://app.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	newKey := []byte(strings.Repeat("n", 32))
	ring, _ := NewSecretHasher(newKey, old.key)
	var rekeyed int
	ring.OnPreviousKey(func(ctx context.Context, oldHash, current []byte) {
		rekeyed++
		if _, err := r.store.(interface {
			RekeyClientHash(context.Context, []byte, []byte) (int64, error)
		}).RekeyClientHash(ctx, oldHash, current); err != nil {
			t.Error(err)
		}
	})
	r2, _ := NewRegistry(r.store, ring)
	if !r2.SecretMatches(ctx, c, secret) || rekeyed != 1 {
		t.Fatalf("the secret under the previous key: matched=%v rekeyed=%d", r2.SecretMatches(ctx, c, secret), rekeyed)
	}
	stored, _ := r.store.GetClient(ctx, "web")
	alone, _ := NewSecretHasher(newKey)
	if alone.Compare(ctx, stored.SecretHash, []byte(secret)) != nil {
		t.Fatal("the stored hash was not moved to the current key")
	}
	if !r2.SecretMatches(ctx, stored, secret) || rekeyed != 1 {
		t.Fatalf("a hash under the current key was rekeyed again (%d)", rekeyed)
	}
	if r2.SecretMatches(ctx, stored, "wrong") || rekeyed != 1 {
		t.Fatal("a wrong secret matched or rekeyed")
	}
}
