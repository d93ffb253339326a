package connectors

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/sqlitetest"
)

const issuer = "https://id.example"

// clock moves only when told.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newRegistry(t *testing.T) (*Registry, *sqlstore.Store, *clock) {
	t.Helper()
	store := sqlitetest.Open(t)
	box, err := seal.New(bytes.Repeat([]byte("b"), 32))
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now()}
	r, err := New(store, box, issuer+"/", nil, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return r, store, c
}

func TestNewRefusesMissingParts(t *testing.T) {
	t.Parallel()
	box, _ := seal.New(bytes.Repeat([]byte("b"), 32))
	store := sqlitetest.Open(t)
	for name, args := range map[string]struct {
		store  Store
		box    *seal.Box
		issuer string
	}{"no store": {nil, box, issuer}, "no box": {store, nil, issuer}, "no issuer": {store, box, ""}} {
		if _, err := New(args.store, args.box, args.issuer, nil, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestCreateValidation: each refused definition says which flag is wrong
// and stores nothing; a valid one is stored with its secret sealed.
func TestCreateValidation(t *testing.T) {
	t.Parallel()
	r, store, _ := newRegistry(t)
	ctx := context.Background()
	ok := Spec{ID: "mb", Kind: storage.ConnectorMusicBrainz, Name: "MusicBrainz", ClientID: "cid", ClientSecret: "s3cret"}
	for name, c := range map[string]struct {
		mutate func(*Spec)
		want   string
	}{
		"upper-case id":           {func(s *Spec) { s.ID = "MB" }, "id must be"},
		"id with a slash":         {func(s *Spec) { s.ID = "m/b" }, "id must be"},
		"no name":                 {func(s *Spec) { s.Name = "  " }, "name is required"},
		"no client id":            {func(s *Spec) { s.ClientID = "" }, "clientId is required"},
		"no secret":               {func(s *Spec) { s.ClientSecret = "" }, "client secret is required"},
		"a secret too long":       {func(s *Spec) { s.ClientSecret = strings.Repeat("s", 1025) }, "too long"},
		"a scope with a space":    {func(s *Spec) { s.Scopes = []string{"a b"} }, "is not a valid scope"},
		"an unknown kind":         {func(s *Spec) { s.Kind = "saml" }, "kind must be"},
		"musicbrainz with issuer": {func(s *Spec) { s.Issuer = "https://x.example" }, "issuer is for oidc"},
		"plain http base":         {func(s *Spec) { s.BaseURL = "http://mb.example" }, "https"},
		"a base with a query":     {func(s *Spec) { s.BaseURL = "https://mb.example/?a=1" }, "without query"},
		"a base with credentials": {func(s *Spec) { s.BaseURL = "https://u:p@mb.example" }, "without query"},
		"oidc without issuer":     {func(s *Spec) { s.Kind = storage.ConnectorOIDC }, "issuer is required"},
		"oidc with a base URL": {func(s *Spec) {
			s.Kind, s.Issuer, s.BaseURL = storage.ConnectorOIDC, "https://x.example", "https://y.example"
		}, "baseUrl is for musicbrainz"},
		"oidc on http, not looping": {func(s *Spec) { s.Kind, s.Issuer = storage.ConnectorOIDC, "http://x.example" }, "loopback"},
	} {
		spec := ok
		c.mutate(&spec)
		if _, err := r.Create(ctx, spec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
	if list, err := r.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("refused definitions stored: %v %v", list, err)
	}
	c, err := r.Create(ctx, ok)
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL != DefaultMusicBrainzURL || c.Scopes == nil {
		t.Fatalf("created = %+v", c)
	}
	stored, err := store.GetConnector(ctx, "mb")
	if err != nil || bytes.Contains(stored.ClientSecret, []byte("s3cret")) {
		t.Fatalf("the stored secret is not sealed: %q %v", stored.ClientSecret, err)
	}
	if _, err := r.Create(ctx, ok); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a second connector with the id = %v", err)
	}
	// http is fine on loopback (a provider on the same machine).
	local := Spec{ID: "local", Kind: storage.ConnectorOIDC, Name: "Local", ClientID: "c", ClientSecret: "s", Issuer: "http://127.0.0.1:9/ "}
	if c, err := r.Create(ctx, local); err != nil || c.Issuer != "http://127.0.0.1:9" {
		t.Fatalf("a loopback issuer = %+v %v", c, err)
	}
	if got := r.CallbackURL("mb"); got != issuer+"/connectors/mb/callback" {
		t.Fatalf("CallbackURL = %q", got)
	}
}

// TestUpdateKeepsOrReplacesTheSecret: an empty secret keeps the sealed
// one, a new one replaces it; ID and kind never change; a refused change
// leaves the row as it was.
func TestUpdateKeepsOrReplacesTheSecret(t *testing.T) {
	t.Parallel()
	r, store, clk := newRegistry(t)
	ctx := context.Background()
	if _, err := r.Create(ctx, Spec{ID: "mb", Kind: storage.ConnectorMusicBrainz, Name: "MB", ClientID: "cid", ClientSecret: "first"}); err != nil {
		t.Fatal(err)
	}
	before, _ := store.GetConnector(ctx, "mb")
	clk.t = clk.t.Add(time.Hour)
	c, err := r.Update(ctx, "mb", func(s *Spec) { s.Name, s.ID, s.Kind = "MusicBrainz", "other", storage.ConnectorOIDC })
	if err != nil || c.ID != "mb" || c.Kind != storage.ConnectorMusicBrainz || c.Name != "MusicBrainz" ||
		!bytes.Equal(c.ClientSecret, before.ClientSecret) || !c.UpdatedAt.After(before.UpdatedAt) {
		t.Fatalf("rename = %+v %v", c, err)
	}
	if _, err := r.Update(ctx, "mb", func(s *Spec) { s.Name = "" }); err == nil {
		t.Fatal("an empty name accepted")
	}
	if after, _ := store.GetConnector(ctx, "mb"); after.Name != "MusicBrainz" {
		t.Fatalf("a refused update changed the row: %+v", after)
	}
	c, err = r.Update(ctx, "mb", func(s *Spec) { s.ClientSecret = "second" })
	if err != nil || bytes.Equal(c.ClientSecret, before.ClientSecret) {
		t.Fatalf("a new secret = %v", err)
	}
	if _, err := r.Update(ctx, "nothing", func(*Spec) {}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("updating an unknown connector = %v", err)
	}
	if err := r.Delete(ctx, "mb"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, "mb"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a deleted connector = %v", err)
	}
}

// musicBrainzStandIn answers the token and userinfo endpoints as
// MusicBrainz does; it checks the client's credentials in the form and the
// PKCE verifier against the challenge of the authorization URL.
func musicBrainzStandIn(t *testing.T, challenge *string, userinfo string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth2/token":
			sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
			if r.PostFormValue("client_id") != "cid" || r.PostFormValue("client_secret") != "s3cret" || r.PostFormValue("code") != "good" ||
				base64.RawURLEncoding.EncodeToString(sum[:]) != *challenge {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"error":"invalid_grant"}`))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"at-1","token_type":"Bearer","expires_in":3600}`))
		case "/oauth2/userinfo":
			if r.Header.Get("Authorization") != "Bearer at-1" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Write([]byte(userinfo))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestMusicBrainzRoundTrip: the authorization URL carries state and the
// S256 challenge; the callback's code is exchanged with the verifier and
// the person is read from userinfo; each failure maps to its error.
func TestMusicBrainzRoundTrip(t *testing.T) {
	t.Parallel()
	r, _, _ := newRegistry(t)
	ctx := context.Background()
	var challenge string
	userinfo := `{"sub":"rob","metabrainz_user_id":42,"email":"rob@example.org","email_verified":true}`
	srv := musicBrainzStandIn(t, &challenge, userinfo)
	r.client = srv.Client()
	c, err := r.Create(ctx, Spec{ID: "mb", Kind: storage.ConnectorMusicBrainz, Name: "MB", ClientID: "cid", ClientSecret: "s3cret", BaseURL: srv.URL, Scopes: []string{"email"}})
	if err != nil {
		t.Fatal(err)
	}
	round := Round{State: "st-1", Verifier: "v-0123456789012345678901234567890123456789012"}
	raw, err := r.Start(ctx, c, round)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	q := u.Query()
	challenge = q.Get("code_challenge")
	if u.Path != "/oauth2/authorize" || q.Get("state") != "st-1" || q.Get("code_challenge_method") != "S256" || q.Get("scope") != "profile email" ||
		q.Get("redirect_uri") != issuer+"/connectors/mb/callback" || q.Get("client_id") != "cid" {
		t.Fatalf("authorization URL = %s", raw)
	}
	id, err := r.Finish(ctx, c, round, url.Values{"code": {"good"}, "state": {"st-1"}})
	if err != nil || id != (Identity{Issuer: srv.URL, Subject: "42", Username: "rob", Email: "rob@example.org", EmailVerified: true}) {
		t.Fatalf("identity = %+v %v", id, err)
	}
	for name, tc := range map[string]struct {
		query url.Values
		round Round
		want  error
	}{
		"the person refused":  {url.Values{"error": {"access_denied"}}, round, ErrDenied},
		"an upstream error":   {url.Values{"error": {"server_error"}}, round, ErrUpstream},
		"no code":             {url.Values{"state": {"st-1"}}, round, ErrRejected},
		"a refused code":      {url.Values{"code": {"bad"}}, round, ErrRejected},
		"another verifier":    {url.Values{"code": {"good"}}, Round{State: "st-1", Verifier: strings.Repeat("w", 43)}, ErrRejected},
		"another base's name": {url.Values{"code": {"good"}, "iss": {"https://evil.example"}}, round, nil}, // RFC 9207 applies to oidc only
	} {
		_, err := r.Finish(ctx, c, tc.round, tc.query)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// A userinfo answer without the stable number is refused.
	bad := musicBrainzStandIn(t, &challenge, `{"sub":"rob"}`)
	r.client = bad.Client()
	c.BaseURL = bad.URL
	if _, err := r.Finish(ctx, c, round, url.Values{"code": {"good"}}); !errors.Is(err, ErrRejected) {
		t.Fatalf("userinfo without metabrainz_user_id = %v", err)
	}
	// An upstream that is gone.
	bad.Close()
	if _, err := r.Finish(ctx, c, round, url.Values{"code": {"good"}}); !errors.Is(err, ErrUpstream) {
		t.Fatalf("an unreachable upstream = %v", err)
	}
}

// oidcStandIn is an OpenID provider: discovery (counted), its JWKS, and a
// token endpoint whose ID token the test writes.
type oidcStandIn struct {
	*httptest.Server
	key         *rsa.PrivateKey
	discoveries atomic.Int32
	claims      func() map[string]any
}

func newOIDCStandIn(t *testing.T) *oidcStandIn {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	o := &oidcStandIn{key: key}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			o.discoveries.Add(1)
			json.NewEncoder(w).Encode(map[string]any{"issuer": o.URL, "authorization_endpoint": o.URL + "/authorize",
				"token_endpoint": o.URL + "/token", "jwks_uri": o.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}})
		case "/jwks":
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
		case "/token":
			signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
			idt, _ := jwt.Signed(signer).Claims(o.claims()).Serialize()
			json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "id_token": idt})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(o.Close)
	return o
}

// TestOpenIDRoundTrip: the ID token's nonce and expiry are checked (the
// expiry on the registry's clock); discovery is reused for its TTL and
// read again after it or after the connector changes.
func TestOpenIDRoundTrip(t *testing.T) {
	t.Parallel()
	r, _, clk := newRegistry(t)
	ctx := context.Background()
	up := newOIDCStandIn(t)
	r.client = up.Client()
	exp := clk.t.Add(5 * time.Minute)
	nonce := "n-1"
	up.claims = func() map[string]any {
		return map[string]any{"iss": up.URL, "sub": "u-7", "aud": "cid", "exp": exp.Unix(), "iat": clk.t.Unix(), "nonce": nonce,
			"preferred_username": "ann", "email": "ann@example.org", "email_verified": true, "name": "Ann"}
	}
	c, err := r.Create(ctx, Spec{ID: "up", Kind: storage.ConnectorOIDC, Name: "Up", ClientID: "cid", ClientSecret: "s", Issuer: up.URL})
	if err != nil {
		t.Fatal(err)
	}
	round := Round{State: "st", Nonce: "n-1", Verifier: strings.Repeat("v", 43)}
	raw, err := r.Start(ctx, c, round)
	if err != nil {
		t.Fatal(err)
	}
	if q, _ := url.Parse(raw); q.Query().Get("nonce") != "n-1" || q.Query().Get("code_challenge_method") != "S256" || q.Query().Get("scope") != "openid profile email" {
		t.Fatalf("authorization URL = %s", raw)
	}
	id, err := r.Finish(ctx, c, round, url.Values{"code": {"c"}, "iss": {up.URL}})
	if err != nil || id != (Identity{Issuer: up.URL, Subject: "u-7", Username: "ann", Email: "ann@example.org", Name: "Ann", EmailVerified: true}) {
		t.Fatalf("identity = %+v %v", id, err)
	}
	if _, err := r.Finish(ctx, c, round, url.Values{"code": {"c"}, "iss": {"https://evil.example"}}); !errors.Is(err, ErrRejected) {
		t.Fatalf("an answer naming another issuer (RFC 9207) = %v", err)
	}
	nonce = "someone else's"
	if _, err := r.Finish(ctx, c, round, url.Values{"code": {"c"}}); !errors.Is(err, ErrRejected) {
		t.Fatalf("another sign-in's nonce = %v", err)
	}
	nonce = "n-1"
	clk.t = exp.Add(time.Minute)
	if _, err := r.Finish(ctx, c, round, url.Values{"code": {"c"}}); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired ID token = %v", err)
	}
	// All of that on one discovery; the TTL has not run out yet (the
	// clock moved 6 minutes).
	if n := up.discoveries.Load(); n != 1 {
		t.Fatalf("%d discoveries within the TTL, want 1", n)
	}
	clk.t = clk.t.Add(discoveryTTL)
	exp = clk.t.Add(time.Minute)
	if _, err := r.Finish(ctx, c, round, url.Values{"code": {"c"}}); err != nil {
		t.Fatal(err)
	}
	if n := up.discoveries.Load(); n != 2 {
		t.Fatalf("%d discoveries after the TTL, want 2", n)
	}
	if _, err := r.Update(ctx, "up", func(s *Spec) { s.Name = "Upstream" }); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start(ctx, c, round); err != nil {
		t.Fatal(err)
	}
	if n := up.discoveries.Load(); n != 3 {
		t.Fatalf("%d discoveries after an update, want 3", n)
	}
}
