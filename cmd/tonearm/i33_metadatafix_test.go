package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clientkeys/clientkeystest"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

// Issue 33, what an outside tester found in the surfaces that register a
// client's keys: unusable keys accepted, an unreadable file called a usage
// error, jwks as a string taken by apply, introspection's odd error for a
// caller without credentials, and a large form called empty.

// i33fixEC is a JWK Set of one public EC P-256 key with members (JSON
// members without braces, e.g. `"alg":"RS256"`) added to it.
func i33fixEC(t *testing.T, members string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1"}}})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(string(b), `{"kty"`, "{"+members+`,"kty"`, 1)
}

// An EC key with alg RS256, a key with use enc, key_ops without verify:
// no assertion could ever be verified with them, so every surface refuses
// them when they are registered, saying why, and stores nothing.
func TestI33FixUnusableKeysRefused(t *testing.T) {
	t.Parallel()
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	s := startE2E(t, dbURL, options{})
	cli := i33mCLI(s, dbURL)
	ecRS256, enc, noVerify := i33fixEC(t, `"alg":"RS256"`), i33fixEC(t, `"use":"enc"`), i33fixEC(t, `"key_ops":["encrypt"]`)
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, []byte(ecRS256), 0o600); err != nil {
		t.Fatal(err)
	}
	pkj := []string{"clients", "create", "--token-endpoint-auth-method", "private_key_jwt", "--redirect-uri", "https://c.example/cb"}
	if _, err := cli("", append(pkj, "--id", "cli-alg", "--jwks-file", file)...); err == nil || !strings.Contains(err.Error(), `an EC key with alg "RS256": an EC key signs ES256`) {
		t.Fatalf("clients create with an EC key for RS256: %v", err)
	}
	if _, err := cli(enc, append(pkj, "--id", "cli-enc", "--jwks-file", "-")...); err == nil || !strings.Contains(err.Error(), `use "enc"`) {
		t.Fatalf("clients create with a use enc key: %v", err)
	}
	i33mNoClient(t, s, "cli-alg")
	i33mNoClient(t, s, "cli-enc")

	s.admin("boss")
	ops := s.opsToken()
	var set map[string]any
	_ = json.Unmarshal([]byte(noVerify), &set)
	r := s.want(s.call(nil, http.MethodPost, "/api/admin/clients", ops, map[string]any{"clientId": "api-ops", "redirectUris": []string{"https://a.example/cb"},
		"tokenEndpointAuthMethod": "private_key_jwt", "jwks": set}), http.StatusBadRequest)
	if !strings.Contains(r.errMsg(), `without "verify"`) {
		t.Fatalf("admin API with key_ops without verify: %s", r.raw)
	}
	i33mNoClient(t, s, "api-ops")

	s.user("dora")
	b := s.browser()
	s.signInPage(t, b, "dora")
	iat := s.initialToken(t, b)
	_ = json.Unmarshal([]byte(ecRS256), &set)
	before, _ := s.app.store.ListClients(t.Context())
	status, body := s.registerJSON(t, iat, map[string]any{"client_name": "Bad keys", "redirect_uris": []string{redirectURI},
		"token_endpoint_auth_method": "private_key_jwt", "jwks": set})
	if desc, _ := body["error_description"].(string); status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" || !strings.Contains(desc, "an EC key signs ES256") {
		t.Fatalf("RFC 7591 with an EC key for RS256: %d %v", status, body)
	}
	if after, _ := s.app.store.ListClients(t.Context()); len(after) != len(before) {
		t.Fatal("RFC 7591 stored a client with an unusable key")
	}
}

// A file a flag names that cannot be read is a failure (exit 1) naming
// the flag and the file; exit 2 stays for a command line tonearm cannot
// read.
func TestI33FixUnreadableFileExits1(t *testing.T) {
	t.Parallel()
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	s := startE2E(t, dbURL, options{})
	cli := i33mCLI(s, dbURL)
	missing, dir := filepath.Join(t.TempDir(), "nonexistent.json"), t.TempDir()
	for _, args := range [][]string{
		{"clients", "create", "--id", "x", "--token-endpoint-auth-method", "private_key_jwt", "--jwks-file", missing},
		{"clients", "update", "x", "--jwks-file", missing},
		{"apply", "-f", missing},
		{"apply", "-f", dir},
		{"clients", "create", "--id", "x", "--jwks-file", dir},
	} {
		_, err := cli("", args...)
		flagName, file := args[len(args)-2], args[len(args)-1]
		if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), flagName+": cannot read "+file+": ") {
			t.Errorf("%v: %v (exit %d), want exit 1 saying %s cannot be read", args, err, exitCode(err), file)
		}
	}
	i33mNoClient(t, s, "x")
	// A file over apply's bound is refused whole, never applied in part
	// (its first 4 MiB are a valid file here).
	long := filepath.Join(dir, "long.yaml")
	valid := "clients:\n  - id: x\n    redirectUris: [https://x.example/cb]\n"
	if err := os.WriteFile(long, []byte(valid+strings.Repeat("# padding\n", 420_000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cli("", "apply", "-f", long); err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "larger than 4 MiB") {
		t.Errorf("apply of a file over 4 MiB: %v", err)
	}
	i33mNoClient(t, s, "x")
	if _, err := cli("", "clients", "create", "--jwks-file"); err == nil || exitCode(err) != 2 {
		t.Errorf("a flag without its value: %v (exit %d), want exit 2", err, exitCode(err))
	}
}

// jwks in an apply file is a mapping; a string (even one holding the JSON
// of a JWK Set) is a value of the wrong kind, as in the admin API and RFC
// 7591, and nothing is created.
func TestI33FixApplyJWKSString(t *testing.T) {
	t.Parallel()
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	s := startE2E(t, dbURL, options{})
	cli := i33mCLI(s, dbURL)
	public, _ := i33mJWKS(t)
	quoted, _ := json.Marshal(public)
	file := "clients:\n  - id: stringy\n    redirectUris: [https://s.example/cb]\n    tokenEndpointAuthMethod: private_key_jwt\n    jwks: " + string(quoted) + "\n"
	_, err := cli(file, "apply", "-f", "-")
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "line 5: jwks must be a mapping (a JWK Set), not the string") {
		t.Fatalf("apply with jwks as a string: %v", err)
	}
	i33mNoClient(t, s, "stringy")
	list := "clients:\n  - id: listy\n    redirectUris: [https://s.example/cb]\n    jwks: [1]\n"
	if _, err := cli(list, "apply", "-f", "-"); err == nil || !strings.Contains(err.Error(), "line 4: jwks must be a mapping (a JWK Set), not a list") {
		t.Fatalf("apply with jwks as a list: %v", err)
	}
	// The mapping still works.
	ok := strings.Replace(file, string(quoted), public, 1)
	if out, err := cli(ok, "apply", "-f", "-"); err != nil || !strings.Contains(out, "create client stringy") {
		t.Fatalf("apply with jwks as a mapping: %v %s", err, out)
	}
}

// Introspection by a caller without client authentication, or with a
// wrong secret, is invalid_client with the Basic challenge (RFC 7662 §2.3,
// RFC 6749 §5.2), as revocation answers it.
func TestI33FixIntrospectionInvalidClient(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	s.client(clients.Spec{ID: "svc", Secret: strings.Repeat("s", 32), GrantTypes: []string{"client_credentials"}, Scopes: []string{"openid"}})
	basic := func(secret string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth("svc", secret) }
	}
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") }
	for name, tc := range map[string]struct {
		form url.Values
		set  func(*http.Request)
		// revocation too: the same answer there (without any client_id
		// fosite's revocation answers invalid_request instead).
		revocation bool
	}{
		"no credentials":        {url.Values{"token": {"x"}}, nil, false},
		"client_id only":        {url.Values{"token": {"x"}, "client_id": {"svc"}}, nil, true},
		"a wrong Basic secret":  {url.Values{"token": {"x"}}, basic("wrong"), true},
		"a wrong posted secret": {url.Values{"token": {"x"}, "client_id": {"svc"}, "client_secret": {"wrong"}}, nil, true},
		"a bearer token":        {url.Values{"token": {"x"}}, bearer, false},
		"an access_token field": {url.Values{"token": {"x"}, "access_token": {"y"}}, nil, false},
	} {
		paths := []string{provider.IntrospectPath}
		if tc.revocation {
			paths = append(paths, provider.RevokePath)
		}
		for _, path := range paths {
			status, body, hdr := s.formPostHeader(t, path, tc.form, tc.set)
			if status != http.StatusUnauthorized || body["error"] != "invalid_client" || hdr.Get("WWW-Authenticate") != `Basic realm="tonearm"` {
				t.Errorf("%s at %s: %d %v %q, want 401 invalid_client", name, path, status, body, hdr.Get("WWW-Authenticate"))
			}
		}
	}
	// The right secret still introspects.
	if status, body := s.formPost(t, provider.IntrospectPath, url.Values{"token": {"x"}}, basic(strings.Repeat("s", 32))); status != http.StatusOK || body["active"] != false {
		t.Fatalf("introspection with the right secret: %d %v", status, body)
	}
}

// A body over the bound (64 KiB) is 413 invalid_request saying so, at
// every endpoint that reads a form, never "The POST body can not be
// empty"; the sign-in and sign-out pages say it is too large.
func TestI33FixBodyTooLarge(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	s.client(clients.Spec{ID: "svc", Secret: strings.Repeat("s", 32), GrantTypes: []string{"client_credentials"}, Scopes: []string{"openid"}})
	big := "grant_type=client_credentials&client_id=svc&token=x&pad=" + strings.Repeat("a", 70<<10)
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded",
		"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("svc:"+strings.Repeat("s", 32)))}
	for _, path := range []string{provider.TokenPath, provider.IntrospectPath, provider.RevokePath, provider.PARPath, provider.DeviceAuthorizationPath, provider.UserinfoPath} {
		resp, body := s.rawCall(t, http.MethodPost, path, form, big)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || body != `{"error":"invalid_request","error_description":"The request body is larger than 65536 bytes."}` {
			t.Errorf("%s: %d %s, want 413 invalid_request saying the body is too large", path, resp.StatusCode, body)
		}
	}
	for _, path := range []string{provider.AuthorizePath, provider.LogoutPath} {
		resp, body := s.rawCall(t, http.MethodPost, path, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, big)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "The request is too large.") {
			t.Errorf("%s: %d, want 413 saying the request is too large\n%s", path, resp.StatusCode, body)
		}
	}
	// Under the bound, the form is read.
	resp, body := s.rawCall(t, http.MethodPost, provider.TokenPath, form, "grant_type=client_credentials&pad="+strings.Repeat("a", 60000))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a 60 KB token request: %d %s", resp.StatusCode, body)
	}
}

// A key registered with RFC 9864's name for EdDSA over Ed25519 ("alg":
// "Ed25519"), which registration accepts, verifies EdDSA assertions: it
// is not left aside as a key for another algorithm.
func TestI33FixEd25519AlgName(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	k := clientkeystest.NewKey(t, jose.EdDSA, "ed-1")
	set := strings.Replace(clientkeystest.JWKS(t, k), `"alg":"EdDSA"`, `"alg":"Ed25519"`, 1)
	if !strings.Contains(set, `"alg":"Ed25519"`) {
		t.Fatalf("no Ed25519 alg in %s", set)
	}
	s.client(clients.Spec{ID: "ed", GrantTypes: []string{"client_credentials"}, Scopes: []string{"openid"},
		Keys: clients.Keys{TokenEndpointAuthMethod: clients.AuthPrivateKeyJWT, JWKS: set}})
	status, body := s.formPost(t, provider.TokenPath, assertionForm(assertion(t, k, s, "ed"), url.Values{"grant_type": {"client_credentials"}}), nil)
	if status != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("an assertion signed with an Ed25519-named key: %d %v", status, body)
	}
}
