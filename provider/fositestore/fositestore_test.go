package fositestore

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func newSession() fosite.Session {
	return &openid.DefaultSession{Claims: &jwt.IDTokenClaims{}, Headers: &jwt.Headers{}}
}

// Run the adapter on both databases: its behaviour is part of the storage
// contract fosite relies on.
func TestAdapter(t *testing.T) {
	for name, newURL := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "t.db") },
		"postgres": func(t *testing.T) string { return pgtest.URL(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store, err := sqlstore.Open(context.Background(), newURL(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			if _, err := store.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			testAdapter(t, store)
		})
	}
}

func request(client fosite.Client, subject string) *fosite.Request {
	sess := newSession().(*openid.DefaultSession)
	sess.Subject = subject
	sess.Claims.Subject = subject
	sess.Claims.Nonce = "nonce-123456"
	sess.SetExpiresAt(fosite.AuthorizeCode, time.Now().Add(10*time.Minute).Round(time.Second))
	r := fosite.NewRequest()
	r.ID = "req-" + subject
	r.Client = client
	r.RequestedScope = fosite.Arguments{"openid", "offline_access"}
	r.GrantedScope = fosite.Arguments{"openid"}
	r.Form = url.Values{
		"redirect_uri":   {"https://app.example/cb"},
		"code_challenge": {"challenge"},
		"client_secret":  {"top-secret-value"},
		"code":           {"raw-code-value"},
		"password":       {"hunter2"},
	}
	r.Session = sess
	return r
}

func testAdapter(t *testing.T, store *sqlstore.Store) {
	ctx := context.Background()
	a, err := New(store, newSession, Lifespans{AuthorizeCode: time.Minute, AccessToken: time.Hour, RefreshToken: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateClient(ctx, storage.Client{ID: "web", SecretHash: []byte{1}, RedirectURIs: []string{"https://app.example/cb"},
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}, FirstParty: true, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	client, err := a.GetClient(ctx, "web")
	if err != nil || client.GetID() != "web" || !client.(*Client).FirstParty {
		t.Fatalf("GetClient = %+v, %v", client, err)
	}
	if _, err := a.GetClient(ctx, "nope"); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("GetClient(missing) = %v, want fosite.ErrNotFound", err)
	}

	req := request(client, "user-1")
	if err := a.CreateAuthorizeCodeSession(ctx, "code-sig", req); err != nil {
		t.Fatal(err)
	}
	got, err := a.GetAuthorizeCodeSession(ctx, "code-sig", newSession())
	if err != nil {
		t.Fatal(err)
	}
	if got.GetID() != req.ID || got.GetSession().GetSubject() != "user-1" || !got.GetGrantedScopes().Has("openid") ||
		got.GetRequestForm().Get("redirect_uri") != "https://app.example/cb" || got.GetRequestForm().Get("code_challenge") != "challenge" {
		t.Fatalf("round trip lost data: %+v", got)
	}
	if n := got.GetSession().(*openid.DefaultSession).Claims.Nonce; n != "nonce-123456" {
		t.Fatalf("session claims lost: nonce %q", n)
	}
	for _, secret := range []string{"client_secret", "code", "password"} {
		if got.GetRequestForm().Has(secret) {
			t.Fatalf("the stored form keeps %q", secret)
		}
	}
	raw, _ := store.GetOAuthRequest(ctx, storage.KindAuthorizeCode, hashSignature("code-sig"))
	if strings.Contains(raw.Form, "top-secret") || strings.Contains(raw.Form, "hunter2") || raw.Signature == "code-sig" {
		t.Fatalf("row holds secrets or the raw signature: %+v", raw)
	}

	// Invalidation happens once; afterwards the request comes back with
	// ErrInvalidatedAuthorizeCode (fosite then revokes its tokens).
	if err := a.InvalidateAuthorizeCodeSession(ctx, "code-sig"); err != nil {
		t.Fatal(err)
	}
	if err := a.InvalidateAuthorizeCodeSession(ctx, "code-sig"); err == nil {
		t.Fatal("a code was invalidated twice")
	}
	got, err = a.GetAuthorizeCodeSession(ctx, "code-sig", newSession())
	if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || got == nil || got.GetID() != req.ID {
		t.Fatalf("used code = %v, %v; want the request and ErrInvalidatedAuthorizeCode", got, err)
	}
	if _, err := a.GetAuthorizeCodeSession(ctx, "other", newSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("unknown code = %v", err)
	}

	// Access and refresh tokens of one request: rotation deactivates the
	// refresh token (once) and deletes the access tokens.
	if err := a.CreateAccessTokenSession(ctx, "at-1", req); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateRefreshTokenSession(ctx, "rt-1", "at-1", req); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetAccessTokenSession(ctx, "at-1", nil); err != nil {
		t.Fatalf("GetAccessTokenSession with a nil session (revocation does this): %v", err)
	}
	if err := a.RotateRefreshToken(ctx, req.ID, "rt-1"); err != nil {
		t.Fatal(err)
	}
	if err := a.RotateRefreshToken(ctx, req.ID, "rt-1"); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("second rotation of one refresh token = %v, want ErrNotFound", err)
	}
	if r, err := a.GetRefreshTokenSession(ctx, "rt-1", newSession()); !errors.Is(err, fosite.ErrInactiveToken) || r == nil {
		t.Fatalf("rotated refresh token = %v, %v; want the request and ErrInactiveToken", r, err)
	}
	if _, err := a.GetAccessTokenSession(ctx, "at-1", newSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("access token survived rotation: %v", err)
	}

	// Revocation by request ID.
	if err := a.CreateRefreshTokenSession(ctx, "rt-2", "at-2", req); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateAccessTokenSession(ctx, "at-2", req); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeRefreshToken(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeAccessToken(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetRefreshTokenSession(ctx, "rt-2", newSession()); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Fatalf("revoked refresh token = %v", err)
	}
	if _, err := a.GetAccessTokenSession(ctx, "at-2", newSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("revoked access token = %v", err)
	}

	// OpenID and PKCE sessions.
	if err := a.CreateOpenIDConnectSession(ctx, "raw-code", req); err != nil {
		t.Fatal(err)
	}
	if r, err := a.GetOpenIDConnectSession(ctx, "raw-code", request(client, "x")); err != nil || r.GetSession().GetSubject() != "user-1" {
		t.Fatalf("GetOpenIDConnectSession = %v, %v", r, err)
	}
	if raw, err := store.GetOAuthRequest(ctx, storage.KindOpenID, "raw-code"); err == nil {
		t.Fatalf("OpenID session stored under the raw code: %+v", raw)
	}
	if err := a.DeleteOpenIDConnectSession(ctx, "raw-code"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetOpenIDConnectSession(ctx, "raw-code", request(client, "x")); !errors.Is(err, openid.ErrNoSessionFound) {
		t.Fatalf("deleted OpenID session = %v", err)
	}
	if err := a.CreatePKCERequestSession(ctx, "pkce-sig", req); err != nil {
		t.Fatal(err)
	}
	if r, err := a.GetPKCERequestSession(ctx, "pkce-sig", newSession()); err != nil || r.GetRequestForm().Get("code_challenge") != "challenge" {
		t.Fatalf("PKCE session = %v, %v", r, err)
	}
	// fosite's "delete" comes before it checks the verifier: the challenge
	// stays until its code is spent.
	if err := a.CreateAuthorizeCodeSession(ctx, "pkce-sig", request(client, "pkce")); err != nil {
		t.Fatal(err)
	}
	if err := a.DeletePKCERequestSession(ctx, "pkce-sig"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetPKCERequestSession(ctx, "pkce-sig", newSession()); err != nil {
		t.Fatalf("PKCE session after fosite's delete = %v, want it kept until the code is spent", err)
	}
	if err := a.InvalidateAuthorizeCodeSession(ctx, "pkce-sig"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetPKCERequestSession(ctx, "pkce-sig", newSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("PKCE session of a spent code = %v", err)
	}

	// Deleting the client kills its tokens.
	if err := a.CreateAccessTokenSession(ctx, "at-3", req); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteClient(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetAccessTokenSession(ctx, "at-3", newSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("token of a deleted client = %v", err)
	}
}
