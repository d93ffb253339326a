package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clientkeys/clientkeystest"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// assertionClaims are the claims of a good assertion by clientID for aud.
func assertionClaims(clientID, aud string) map[string]any {
	now := time.Now()
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return map[string]any{"iss": clientID, "sub": clientID, "aud": aud, "iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "jti": base64.RawURLEncoding.EncodeToString(b)}
}

// assertion is a good assertion by clientID for the token endpoint.
func assertion(t *testing.T, k clientkeystest.Key, s *server, clientID string) string {
	return k.SignClaims(t, assertionClaims(clientID, s.issuer+provider.TokenPath))
}

func assertionForm(assertion string, form url.Values) url.Values {
	out := url.Values{"client_assertion_type": {provider.ClientAssertionType}, "client_assertion": {assertion}}
	for k, v := range form {
		out[k] = v
	}
	return out
}

// jwksHost serves a client's key set over plain http on loopback (the test
// issuer is loopback, so tonearm fetches it) and counts the fetches.
type jwksHost struct {
	mu      sync.Mutex
	body    string
	fetches atomic.Int32
	url     string
}

func newJWKSHost(t *testing.T, body string) *jwksHost {
	h := &jwksHost{body: body}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h.fetches.Add(1)
		h.mu.Lock()
		defer h.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write([]byte(h.body))
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/jwks.json"
	return h
}

func (h *jwksHost) set(body string) { h.mu.Lock(); h.body = body; h.mu.Unlock() }

func pkSpec(id string, keys clients.Keys, grants ...string) clients.Spec {
	keys.TokenEndpointAuthMethod = provider.PrivateKeyJWT
	spec := clients.Spec{ID: id, Keys: keys, Scopes: []string{"openid", "profile"}, GrantTypes: grants}
	if len(grants) == 1 && grants[0] == "client_credentials" {
		spec.Scopes = []string{"profile"}
	}
	return spec
}

// x/oauth2's client-credentials client, unmodified, with the assertion in
// its EndpointParams.
func ccToken(s *server, clientID, assertion string) (*oauth2.Token, error) {
	cc := clientcredentials.Config{ClientID: clientID, TokenURL: s.issuer + provider.TokenPath, AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{"client_assertion_type": {provider.ClientAssertionType}, "client_assertion": {assertion}}}
	return cc.Token(context.Background())
}

// private_key_jwt with each algorithm, keys inline and at a jwks_uri, for
// client credentials (x/oauth2's clientcredentials) and the code flow
// (go-oidc + x/oauth2); a rotated key at the jwks_uri works at once.
func TestI33PrivateKeyJWTClients(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA} {
		k := clientkeystest.NewKey(t, alg, "key-"+string(alg))
		inline := "cc-inline-" + strings.ToLower(string(alg))
		s.client(pkSpec(inline, clients.Keys{JWKS: clientkeystest.JWKS(t, k)}, "client_credentials"))
		host := newJWKSHost(t, clientkeystest.JWKS(t, k))
		byURI := "cc-uri-" + strings.ToLower(string(alg))
		s.client(pkSpec(byURI, clients.Keys{JWKSURI: host.url}, "client_credentials"))
		for _, id := range []string{inline, byURI} {
			tok, err := ccToken(s, id, assertion(t, k, s, id))
			if err != nil || tok.AccessToken == "" {
				t.Fatalf("%s: client credentials: %v", id, err)
			}
		}
		// aud may also be the issuer (RFC 7523 §3).
		if _, err := ccToken(s, inline, k.SignClaims(t, assertionClaims(inline, s.issuer))); err != nil {
			t.Fatalf("%s: aud = issuer: %v", inline, err)
		}
	}

	// Rotation: the client publishes a new key under a new kid and signs
	// with it at once; tonearm refetches its jwks_uri on the unknown kid.
	oldKey, newKey := clientkeystest.NewKey(t, jose.ES256, "2026-01"), clientkeystest.NewKey(t, jose.EdDSA, "2026-02")
	host := newJWKSHost(t, clientkeystest.JWKS(t, oldKey))
	s.client(pkSpec("rotator", clients.Keys{JWKSURI: host.url}, "client_credentials"))
	if _, err := ccToken(s, "rotator", assertion(t, oldKey, s, "rotator")); err != nil {
		t.Fatal(err)
	}
	if _, err := ccToken(s, "rotator", assertion(t, oldKey, s, "rotator")); err != nil || host.fetches.Load() != 1 {
		t.Fatalf("second token: %v, %d fetches (want the cached set)", err, host.fetches.Load())
	}
	host.set(clientkeystest.JWKS(t, newKey))
	if _, err := ccToken(s, "rotator", assertion(t, newKey, s, "rotator")); err != nil || host.fetches.Load() != 2 {
		t.Fatalf("rotated key: %v, %d fetches", err, host.fetches.Load())
	}

	// The code flow through go-oidc and x/oauth2, with the assertion on
	// Exchange.
	web := clientkeystest.NewKey(t, jose.PS256, "web-1")
	webHost := newJWKSHost(t, clientkeystest.JWKS(t, web))
	s.client(pkSpec("pk-web", clients.Keys{JWKSURI: webHost.url}, "authorization_code", "refresh_token"))
	s.user("kim")
	r := s.rp("pk-web", "", "profile")
	r.conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	verifier := oauth2.GenerateVerifier()
	back := s.authorize(s.browser(), r.conf.AuthCodeURL("state-pk", oauth2.S256ChallengeOption(verifier)), "kim", true)
	tok, err := r.conf.Exchange(r.ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier),
		oauth2.SetAuthURLParam("client_assertion_type", provider.ClientAssertionType),
		oauth2.SetAuthURLParam("client_assertion", assertion(t, web, s, "pk-web")))
	if err != nil {
		t.Fatalf("code exchange with an assertion: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(r.ctx, raw)
	if err != nil || idt.Subject == "" {
		t.Fatalf("ID token: %v", err)
	}
	// Without the assertion the code is not exchanged.
	back = s.authorize(s.browser(), r.conf.AuthCodeURL("state-pk2", oauth2.S256ChallengeOption(verifier)), "kim", false)
	if _, err := r.conf.Exchange(r.ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_client") {
		t.Fatalf("exchange without an assertion: %v", err)
	}

	// Discovery says so.
	p := get(t, http.DefaultClient, s.issuer+provider.DiscoveryPath)
	var doc map[string]any
	_ = json.Unmarshal([]byte(p.body), &doc)
	for _, field := range []string{"token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
		if !strings.Contains(string(mustJSON(doc[field])), `"private_key_jwt"`) {
			t.Errorf("discovery %s = %v", field, doc[field])
		}
	}
	for _, field := range []string{"token_endpoint_auth_signing_alg_values_supported", "introspection_endpoint_auth_signing_alg_values_supported", "revocation_endpoint_auth_signing_alg_values_supported"} {
		if got := string(mustJSON(doc[field])); got != `["RS256","PS256","ES256","EdDSA","Ed25519"]` {
			t.Errorf("discovery %s = %s", field, got)
		}
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// The other endpoints take the assertion too, with their own URL as aud:
// introspection, revocation, PAR and device authorization.
func TestI33PrivateKeyJWTOtherEndpoints(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	k := clientkeystest.NewKey(t, jose.EdDSA, "ed-1")
	s.client(pkSpec("machine", clients.Keys{JWKS: clientkeystest.JWKS(t, k)}, "client_credentials"))
	s.client(pkSpec("pusher", clients.Keys{JWKS: clientkeystest.JWKS(t, k)}, "authorization_code"))
	s.client(pkSpec("telly", clients.Keys{JWKS: clientkeystest.JWKS(t, k)}, clients.DeviceCodeGrant))
	tok, err := ccToken(s, "machine", assertion(t, k, s, "machine"))
	if err != nil {
		t.Fatal(err)
	}
	at := func(id, path string) string { return k.SignClaims(t, assertionClaims(id, s.issuer+path)) }
	// Without client_id or scope (both optional, RFC 7523 §2.2, RFC 6749
	// §3.3) the assertion's client gets its registered scopes.
	status, body, _ := s.formPostHeader(t, provider.TokenPath, assertionForm(at("machine", provider.TokenPath), url.Values{"grant_type": {"client_credentials"}}), nil)
	if status != http.StatusOK || body["scope"] != "profile" {
		t.Fatalf("client credentials without client_id and scope: %d %v", status, body)
	}

	status, body, _ = s.formPostHeader(t, provider.IntrospectPath, assertionForm(at("machine", provider.IntrospectPath), url.Values{"token": {tok.AccessToken}}), nil)
	if status != http.StatusOK || body["active"] != true || body["client_id"] != "machine" {
		t.Fatalf("introspection with an assertion: %d %v", status, body)
	}
	// A bad assertion at introspection is invalid_client, not "inactive".
	status, body, hdr := s.formPostHeader(t, provider.IntrospectPath, assertionForm(clientkeystest.NewKey(t, jose.EdDSA, "ed-1").SignClaims(t, assertionClaims("machine", s.issuer+provider.IntrospectPath)), url.Values{"token": {tok.AccessToken}}), nil)
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" || hdr.Get("WWW-Authenticate") == "" {
		t.Fatalf("introspection with a forged assertion: %d %v %v", status, body, hdr)
	}
	status, body, _ = s.formPostHeader(t, provider.RevokePath, assertionForm(at("machine", provider.RevokePath), url.Values{"token": {tok.AccessToken}}), nil)
	if status != http.StatusOK {
		t.Fatalf("revocation with an assertion: %d %v", status, body)
	}
	status, body, _ = s.formPostHeader(t, provider.IntrospectPath, assertionForm(at("machine", provider.TokenPath), url.Values{"token": {tok.AccessToken}}), nil)
	if status != http.StatusOK || body["active"] != false {
		t.Fatalf("introspection after revocation: %d %v", status, body)
	}

	push := parForm(oauth2.GenerateVerifier())
	push.Set("client_id", "pusher")
	status, body, _ = s.formPostHeader(t, provider.PARPath, assertionForm(at("pusher", provider.PARPath), push), nil)
	if status != http.StatusCreated || !strings.HasPrefix(body["request_uri"].(string), provider.PARRequestURIPrefix) {
		t.Fatalf("PAR with an assertion: %d %v", status, body)
	}
	status, body, _ = s.formPostHeader(t, provider.PARPath, push, nil)
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Fatalf("PAR without an assertion: %d %v", status, body)
	}

	status, body, _ = s.formPostHeader(t, provider.DeviceAuthorizationPath, assertionForm(at("telly", provider.DeviceAuthorizationPath), url.Values{"scope": {"openid"}}), nil)
	code, _ := body["device_code"].(string)
	if status != http.StatusOK || code == "" {
		t.Fatalf("device authorization with an assertion: %d %v", status, body)
	}
	status, body, _ = s.formPostHeader(t, provider.TokenPath, assertionForm(at("telly", provider.TokenPath), url.Values{"grant_type": {provider.DeviceCodeGrant}, "device_code": {code}}), nil)
	if status != http.StatusBadRequest || body["error"] != "authorization_pending" {
		t.Fatalf("device poll with an assertion: %d %v", status, body)
	}
	status, body, _ = s.formPostHeader(t, provider.DeviceAuthorizationPath, url.Values{"client_id": {"telly"}, "scope": {"openid"}}, nil)
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Fatalf("device authorization without an assertion: %d %v", status, body)
	}
}

// The forged assertions of the issue, each refused with invalid_client and
// a challenge, on both databases; a jti is used once across replicas, and
// of two at the same instant exactly one wins.
func TestI33PrivateKeyJWTAttacks(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s2 := s.second()
		k, neighbourKey := clientkeystest.NewKey(t, jose.RS256, "rsa-1"), clientkeystest.NewKey(t, jose.ES256, "ec-1")
		s.client(pkSpec("machine", clients.Keys{JWKS: clientkeystest.JWKS(t, k)}, "client_credentials"))
		s.client(pkSpec("neighbour", clients.Keys{JWKS: clientkeystest.JWKS(t, neighbourKey)}, "client_credentials"))
		// A secret client with the same keys registered (for request
		// objects, say): its keys do not make an assertion a credential.
		_, secret := s.client(clients.Spec{ID: "secretive", GrantTypes: []string{"client_credentials"}, Scopes: []string{"profile"},
			Keys: clients.Keys{JWKS: clientkeystest.JWKS(t, k)}})
		cc := url.Values{"grant_type": {"client_credentials"}}
		refused := func(name string, srv *server, form url.Values, set func(*http.Request)) {
			t.Helper()
			status, body, hdr := srv.formPostHeader(t, provider.TokenPath, form, set)
			if status != http.StatusUnauthorized || body["error"] != "invalid_client" || body["access_token"] != nil ||
				!strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("%s: %d %v %q", name, status, body, hdr.Get("WWW-Authenticate"))
			}
		}
		accepted := func(name string, srv *server, form url.Values, set func(*http.Request)) {
			t.Helper()
			if status, body, _ := srv.formPostHeader(t, provider.TokenPath, form, set); status != http.StatusOK || body["access_token"] == nil {
				t.Fatalf("%s: %d %v", name, status, body)
			}
		}
		claims := func(change func(map[string]any)) map[string]any {
			c := assertionClaims("machine", s.issuer+provider.TokenPath)
			change(c)
			return c
		}
		b64 := base64.RawURLEncoding.EncodeToString
		now := time.Now()

		refused("wrong key", s, assertionForm(assertion(t, clientkeystest.NewKey(t, jose.RS256, "rsa-1"), s, "machine"), cc), nil)
		payload := mustJSON(claims(func(map[string]any) {}))
		refused("alg none", s, assertionForm(b64([]byte(`{"alg":"none","typ":"JWT"}`))+"."+b64(payload)+".", cc), nil)
		der, _ := x509.MarshalPKIXPublicKey(k.Private.Public())
		for name, secret := range map[string][]byte{"DER": der, "PEM": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "JWKS": []byte(clientkeystest.JWKS(t, k))} {
			signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithHeader("kid", "rsa-1"))
			jws, _ := signer.Sign(payload)
			hs, _ := jws.CompactSerialize()
			refused("HS256 with the public key's "+name+" as secret", s, assertionForm(hs, cc), nil)
		}
		refused("expired", s, assertionForm(k.SignClaims(t, claims(func(c map[string]any) {
			c["exp"], c["iat"] = now.Add(-5*time.Minute).Unix(), now.Add(-10*time.Minute).Unix()
		})), cc), nil)
		refused("exp 2 h ahead", s, assertionForm(k.SignClaims(t, claims(func(c map[string]any) { c["exp"] = now.Add(2 * time.Hour).Unix() })), cc), nil)
		refused("no exp", s, assertionForm(k.SignClaims(t, claims(func(c map[string]any) { delete(c, "exp") })), cc), nil)
		refused("no jti", s, assertionForm(k.SignClaims(t, claims(func(c map[string]any) { delete(c, "jti") })), cc), nil)
		refused("iat in the future", s, assertionForm(k.SignClaims(t, claims(func(c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() })), cc), nil)
		refused("another client's sub and iss", s, assertionForm(k.SignClaims(t, claims(func(c map[string]any) { c["sub"], c["iss"] = "neighbour", "neighbour" })), cc), nil)
		refused("another client's iss", s, assertionForm(k.SignClaims(t, claims(func(c map[string]any) { c["iss"] = "neighbour" })), cc), nil)
		refused("client_id of another client", s, assertionForm(assertion(t, k, s, "machine"), url.Values{"grant_type": {"client_credentials"}, "client_id": {"neighbour"}}), nil)
		refused("wrong aud", s, assertionForm(k.SignClaims(t, claims(func(c map[string]any) { c["aud"] = "https://evil.example/oauth2/token" })), cc), nil)
		refused("aud of another endpoint", s, assertionForm(k.SignClaims(t, claims(func(c map[string]any) { c["aud"] = s.issuer + provider.IntrospectPath })), cc), nil)
		refused("a secret from a private_key_jwt client", s, url.Values{"grant_type": {"client_credentials"}, "client_id": {"machine"}, "client_secret": {secret}}, nil)
		refused("Basic from a private_key_jwt client", s, cc, func(r *http.Request) { r.SetBasicAuth("machine", secret) })
		refused("no credential from a private_key_jwt client", s, url.Values{"grant_type": {"client_credentials"}, "client_id": {"machine"}}, nil)
		refused("an assertion and a secret", s, assertionForm(assertion(t, k, s, "machine"), url.Values{"grant_type": {"client_credentials"}, "client_secret": {secret}}), nil)
		refused("an assertion from a secret client", s2, assertionForm(assertion(t, k, s, "secretive"), cc), nil)
		accepted("the secret client with its secret", s2, cc, func(r *http.Request) { r.SetBasicAuth("secretive", secret) })

		// A jwks_uri tonearm must not fetch: a private address, a redirect
		// (to the client's own good key set), a body that never ends.
		goodSet := newJWKSHost(t, clientkeystest.JWKS(t, k))
		redirect := httptest.NewServer(http.RedirectHandler(goodSet.url, http.StatusFound))
		t.Cleanup(redirect.Close)
		endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"keys":[`))
			for r.Context().Err() == nil {
				if _, err := w.Write([]byte(`{"kty":"oct","k":"AAAA"},`)); err != nil {
					return
				}
			}
		}))
		t.Cleanup(endless.Close)
		for name, uri := range map[string]string{"private": "https://10.20.30.40/jwks.json", "metadata": "https://169.254.169.254/jwks.json",
			"redirecting": redirect.URL + "/jwks.json", "endless": endless.URL + "/jwks.json"} {
			id := "uri-" + name
			s.client(pkSpec(id, clients.Keys{JWKSURI: uri}, "client_credentials"))
			refused("a jwks_uri that is "+name, s, assertionForm(assertion(t, k, s, id), cc), nil)
		}
		if goodSet.fetches.Load() != 0 {
			t.Errorf("the redirect was followed")
		}

		// A jti is used once, on any replica.
		good := assertionForm(assertion(t, k, s, "machine"), cc)
		accepted("a good assertion", s, good, nil)
		refused("the same assertion again", s, good, nil)
		refused("the same assertion on another replica", s2, good, nil)
		// Two at the same instant: exactly one wins.
		race := assertionForm(assertion(t, k, s, "machine"), cc)
		var wg sync.WaitGroup
		var won, lost atomic.Int32
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				srv := []*server{s, s2}[i%2]
				status, _, _ := srv.formPostHeader(t, provider.TokenPath, race, nil)
				switch status {
				case http.StatusOK:
					won.Add(1)
				case http.StatusUnauthorized:
					lost.Add(1)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 || lost.Load() != 5 {
			t.Errorf("concurrent uses of one assertion: %d won, %d refused", won.Load(), lost.Load())
		}

		// A client switched to private_key_jwt on one replica authenticates
		// with an assertion at once on another that cached it (re-read on
		// failure), and its old secret stops working there.
		// (Straight in storage, as another replica's write lands.)
		if _, err := s.app.store.UpdateClient(context.Background(), "secretive", func(c storage.Client) (storage.Client, error) {
			c.TokenEndpointAuthMethod = provider.PrivateKeyJWT
			return c, nil
		}); err != nil {
			t.Fatal(err)
		}
		accepted("an assertion right after the switch", s2, assertionForm(assertion(t, k, s, "secretive"), cc), nil)
		refused("the old secret after the switch", s2, cc, func(r *http.Request) { r.SetBasicAuth("secretive", secret) })
	})
}

// With the database unable to write, the jti cannot be recorded: the
// answer is 503 with Retry-After, as elsewhere, not a 401 that tells the
// client its key is wrong. (Not parallel: the file-size limit is the
// process's.)
func TestI33PrivateKeyJWTDiskFull(t *testing.T) {
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "tonearm.db"), options{})
	k := clientkeystest.NewKey(t, jose.ES256, "ec-1")
	s.client(pkSpec("machine", clients.Keys{JWKS: clientkeystest.JWKS(t, k)}, "client_credentials"))
	if _, err := ccToken(s, "machine", assertion(t, k, s, "machine")); err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	full := old
	full.Cur = 1
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &full); err != nil {
		t.Fatal(err)
	}
	status, body, hdr := s.formPostHeader(t, provider.TokenPath, assertionForm(assertion(t, k, s, "machine"), url.Values{"grant_type": {"client_credentials"}}), nil)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" || hdr.Get("Retry-After") == "" {
		t.Fatalf("assertion with the disk full: %d %v %v", status, body, hdr)
	}
}
