package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/storage"
)

// Issue 33, part 1: the metadata of clients that authenticate with their
// keys, send request objects and get pairwise subjects, on every surface
// that registers a client, and refused (nothing written) when a JWK Set
// holds a private key.

// i33mJWKS returns a JWK Set of a new Ed25519 key: its public half, and
// the same set with the private key in it (what a careless operator pastes).
func i33mJWKS(t *testing.T) (public, private string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(k any) string {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k, KeyID: "k1", Algorithm: "EdDSA", Use: "sig"}}})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return enc(pub), enc(priv)
}

// i33mCLI runs tonearm against s's database, with stdin.
func i33mCLI(s *server, dbURL string) func(stdin string, args ...string) (string, error) {
	env := envFunc(map[string]string{"TONEARM_DATABASE_URL": dbURL, "TONEARM_SECRET": string(s.cfg.Secret)})
	return func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), args, env, strings.NewReader(stdin), &out, io.Discard)
		return out.String(), err
	}
}

func i33mNoClient(t *testing.T, s *server, id string) {
	t.Helper()
	if _, err := s.app.store.GetClient(context.Background(), id); err == nil {
		t.Fatalf("the refused client %s was stored", id)
	}
}

func TestI33MetadataCLIAndApply(t *testing.T) {
	t.Parallel()
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	s := startE2E(t, dbURL, options{})
	cli := i33mCLI(s, dbURL)
	ctx := context.Background()
	public, private := i33mJWKS(t)
	dir := t.TempDir()
	pubFile, privFile := filepath.Join(dir, "jwks.json"), filepath.Join(dir, "private.json")
	if err := os.WriteFile(pubFile, []byte(public), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(privFile, []byte(private), 0o600); err != nil {
		t.Fatal(err)
	}

	// create --jwks-file, then show --json in RFC 7591 names. The sector
	// document is fetched and must list the redirect URI (OIDC Core §8.1).
	sector := newSectorServer(t).uri("/signer.json", "https://signer.example/cb")
	out, err := cli("", "clients", "create", "--id", "signer", "--token-endpoint-auth-method", "private_key_jwt", "--jwks-file", pubFile,
		"--redirect-uri", "https://signer.example/cb", "--request-uri", "https://signer.example/req#h1", "--request-object-signing-alg", "EdDSA",
		"--subject-type", "pairwise", "--sector-identifier-uri", sector, "--json")
	if err != nil || strings.Contains(out, "client_secret") {
		t.Fatalf("clients create private_key_jwt: %v %s", err, out)
	}
	out, err = cli("", "clients", "show", "signer", "--json")
	var shown map[string]any
	if err != nil || json.Unmarshal([]byte(out), &shown) != nil {
		t.Fatalf("clients show: %v %s", err, out)
	}
	keys, _ := shown["jwks"].(map[string]any)["keys"].([]any)
	if shown["token_endpoint_auth_method"] != "private_key_jwt" || len(keys) != 1 || keys[0].(map[string]any)["kid"] != "k1" ||
		shown["subject_type"] != "pairwise" || shown["request_object_signing_alg"] != "EdDSA" ||
		shown["sector_identifier_uri"] != sector || shown["request_uris"].([]any)[0] != "https://signer.example/req#h1" {
		t.Fatalf("clients show --json: %s", out)
	}
	if out, err = cli("", "clients", "list", "--json"); err != nil || !strings.Contains(out, `"jwks":{"keys":[`) {
		t.Fatalf("clients list --json: %v %s", err, out)
	}
	// A private key in the file: refused, said plainly, nothing stored.
	if _, err := cli("", "clients", "create", "--id", "careless", "--token-endpoint-auth-method", "private_key_jwt", "--jwks-file", privFile,
		"--redirect-uri", "https://c.example/cb"); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Fatalf("a private key in --jwks-file: %v", err)
	}
	i33mNoClient(t, s, "careless")
	if _, err := cli("", "clients", "update", "signer", "--subject-type", "public"); err == nil || !strings.Contains(err.Error(), "cannot change") {
		t.Fatalf("subject type changed: %v", err)
	}

	// A secret client turned to private_key_jwt loses its secret; turned
	// back, it is told to rotate one, which then works.
	out, err = cli("", "clients", "create", "--id", "svc", "--grant-type", "client_credentials", "--scope", "openid", "--json")
	var created map[string]any
	if err != nil || json.Unmarshal([]byte(out), &created) != nil {
		t.Fatalf("create svc: %v %s", err, out)
	}
	secret := created["client_secret"].(string)
	if _, err := cli("", "clients", "update", "svc", "--token-endpoint-auth-method", "private_key_jwt", "--jwks-file", "-"); err == nil {
		t.Fatal("an empty --jwks-file - was accepted")
	}
	if _, err := cli(public, "clients", "update", "svc", "--token-endpoint-auth-method", "private_key_jwt", "--jwks-file", "-"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.app.store.GetClient(ctx, "svc"); len(c.SecretHash) != 0 || c.JWKS == "" {
		t.Fatalf("after the switch to private_key_jwt: secret kept %v, jwks %q", len(c.SecretHash) != 0, c.JWKS)
	}
	if got := s.post(provider.TokenPath, "svc", secret, url.Values{"grant_type": {"client_credentials"}}); got.status != http.StatusUnauthorized {
		t.Fatalf("the old secret after the switch: %d %v", got.status, got.body)
	}
	if out, err = cli("", "clients", "rotate-secret", "svc"); err == nil {
		t.Fatalf("rotate-secret on a private_key_jwt client: %s", out)
	}
	out, err = cli("", "clients", "update", "svc", "--token-endpoint-auth-method", "client_secret_basic")
	if err != nil || !strings.Contains(out, "tonearm clients rotate-secret svc") {
		t.Fatalf("back to a secret: %v %s", err, out)
	}
	out, err = cli("", "clients", "rotate-secret", "svc", "--json")
	var rotated map[string]string
	if err != nil || json.Unmarshal([]byte(out), &rotated) != nil {
		t.Fatalf("rotate-secret: %v %s", err, out)
	}
	if got := s.post(provider.TokenPath, "svc", rotated["secret"], url.Values{"grant_type": {"client_credentials"}}); got.status != http.StatusOK {
		t.Fatalf("the rotated secret: %d %v", got.status, got.body)
	}

	// apply / export: a round trip, jwks inline.
	file := `clients:
  - id: applied
    redirectUris: [https://applied.example/cb]
    tokenEndpointAuthMethod: private_key_jwt
    jwks: ` + public + `
    requestUris: [https://applied.example/req]
    subjectType: pairwise
`
	if out, err = cli(file, "apply", "-f", "-"); err != nil || !strings.Contains(out, "create client applied") {
		t.Fatalf("apply: %v %s", err, out)
	}
	exported, err := cli("", "export")
	if err != nil || !strings.Contains(exported, "tokenEndpointAuthMethod: private_key_jwt") || !strings.Contains(exported, "kty: OKP") ||
		!strings.Contains(exported, "subjectType: pairwise") {
		t.Fatalf("export: %v\n%s", err, exported)
	}
	if out, err = cli(exported, "apply", "-f", "-"); err != nil || strings.TrimSpace(out) != "nothing to change" {
		t.Fatalf("apply of the export: %v\n%s\n%s", err, out, exported)
	}
	// A file that leaves the subject type out keeps it (it cannot change).
	withoutSubject := regexp.MustCompile(`(?m)^\s*subjectType: pairwise\n`).ReplaceAllString(exported, "")
	if out, err = cli(withoutSubject, "apply", "-f", "-"); err != nil || strings.TrimSpace(out) != "nothing to change" {
		t.Fatalf("apply without subjectType: %v\n%s", err, out)
	}
	js, err := cli("", "export", "--json")
	if err != nil || !strings.Contains(js, `"jwks": {`) {
		t.Fatalf("export --json: %v\n%s", err, js)
	}
	if out, err = cli(js, "apply", "-f", "-"); err != nil || strings.TrimSpace(out) != "nothing to change" {
		t.Fatalf("apply of the JSON export: %v\n%s", err, out)
	}
	bad := strings.Replace(file, "id: applied", "id: applied-bad", 1)
	bad = strings.Replace(bad, public, private, 1)
	if _, err := cli(bad, "apply", "-f", "-"); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Fatalf("apply with a private key: %v", err)
	}
	i33mNoClient(t, s, "applied-bad")
}

func TestI33MetadataAdminAPIAndConsole(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	ctx := context.Background()
	s.admin("boss")
	ops := s.opsToken()
	public, private := i33mJWKS(t)
	var set map[string]any
	_ = json.Unmarshal([]byte(public), &set)
	var privSet map[string]any
	_ = json.Unmarshal([]byte(private), &privSet)

	r := s.want(s.call(nil, http.MethodPost, "/api/admin/clients", ops, map[string]any{"clientId": "api-signer", "redirectUris": []string{"https://a.example/cb"},
		"tokenEndpointAuthMethod": "private_key_jwt", "jwks": set, "requestUris": []string{"https://a.example/r"}, "subjectType": "pairwise"}), http.StatusOK)
	if r.body["clientSecret"] != nil || r.body["tokenEndpointAuthMethod"] != "private_key_jwt" || r.body["subjectType"] != "pairwise" || r.body["jwks"] == nil {
		t.Fatalf("admin API create: %s", r.raw)
	}
	r = s.want(s.call(nil, http.MethodPatch, "/api/admin/clients/api-signer", ops, map[string]any{"requestObjectSigningAlg": "ES256",
		"requestUris": []string{"https://a.example/r2"}}), http.StatusOK)
	if r.body["requestObjectSigningAlg"] != "ES256" || r.body["requestUris"].([]any)[0] != "https://a.example/r2" || r.body["jwks"] == nil {
		t.Fatalf("admin API update: %s", r.raw)
	}
	list := s.want(s.call(nil, http.MethodGet, "/api/admin/clients", ops, nil), http.StatusOK)
	if !strings.Contains(list.raw, `"jwks":{"keys":[`) || !strings.Contains(list.raw, `"subjectType":"pairwise"`) {
		t.Fatalf("admin API list: %s", list.raw)
	}
	for what, body := range map[string]map[string]any{
		"a private key":      {"clientId": "api-bad", "redirectUris": []string{"https://a.example/cb"}, "tokenEndpointAuthMethod": "private_key_jwt", "jwks": privSet},
		"no keys":            {"clientId": "api-bad", "redirectUris": []string{"https://a.example/cb"}, "tokenEndpointAuthMethod": "private_key_jwt"},
		"an http jwks_uri":   {"clientId": "api-bad", "redirectUris": []string{"https://a.example/cb"}, "jwksUri": "http://a.example/jwks"},
		"none, confidential": {"clientId": "api-bad", "redirectUris": []string{"https://a.example/cb"}, "tokenEndpointAuthMethod": "none"},
	} {
		if r := s.want(s.call(nil, http.MethodPost, "/api/admin/clients", ops, body), http.StatusBadRequest); strings.Contains(r.errMsg(), "internal") {
			t.Fatalf("%s: %s", what, r.raw)
		}
		i33mNoClient(t, s, "api-bad")
	}
	if r := s.want(s.call(nil, http.MethodPatch, "/api/admin/clients/api-signer", ops, map[string]any{"subjectType": "public"}), http.StatusBadRequest); !strings.Contains(r.errMsg(), "cannot change") {
		t.Fatalf("subject type changed: %s", r.raw)
	}
	if r := s.want(s.call(nil, http.MethodPatch, "/api/admin/clients/api-signer", ops, map[string]any{"jwks": privSet}), http.StatusBadRequest); !strings.Contains(r.errMsg(), "private key") {
		t.Fatalf("a private key on update: %s", r.raw)
	}
	if c, _ := s.app.store.GetClient(ctx, "api-signer"); strings.Contains(c.JWKS, `"d"`) {
		t.Fatal("the private key was stored")
	}

	// The console's form.
	console := s.browser()
	s.signInPage(t, console, "boss")
	f := accountForm(t, get(t, console, s.issuer+"/admin/clients"), "/admin/clients")
	f.values["grant_type"] = []string{"authorization_code"}
	p := submit(t, console, f, map[string]string{"client_id": "console-bad", "redirect_uris": "https://c.example/cb",
		"token_endpoint_auth_method": "private_key_jwt", "jwks": private})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "holds a private key") {
		t.Fatalf("console, a private key: %d\n%s", p.status, p.body)
	}
	i33mNoClient(t, s, "console-bad")
	p = submit(t, console, f, map[string]string{"client_id": "console-signer", "redirect_uris": "https://c.example/cb",
		"token_endpoint_auth_method": "private_key_jwt", "jwks": public, "request_uris": "https://c.example/r1\nhttps://c.example/r2"})
	if p.status != http.StatusOK || strings.Contains(p.body, `id="client-secret"`) {
		t.Fatalf("console create: %d\n%s", p.status, p.body)
	}
	c, err := s.app.store.GetClient(ctx, "console-signer")
	if err != nil || c.TokenEndpointAuthMethod != "private_key_jwt" || c.JWKS == "" || len(c.RequestURIs) != 2 || c.SubjectType != storage.SubjectPublic || len(c.SecretHash) != 0 {
		t.Fatalf("console client: %+v %v", c, err)
	}
	// Its edit page keeps the keys when something else is saved.
	page := get(t, console, s.issuer+"/admin/clients/console-signer")
	if !strings.Contains(page.body, `id="subject-type">public<`) {
		t.Fatalf("the edit page does not show the subject type:\n%s", page.body)
	}
	edit := accountForm(t, page, "/admin/clients/console-signer/update")
	edit.values["grant_type"] = []string{"authorization_code"}
	if p := submit(t, console, edit, map[string]string{"name": "Signer", "redirect_uris": "https://c.example/cb", "token_endpoint_auth_method": "private_key_jwt", "jwks": public}); p.status != http.StatusOK {
		t.Fatalf("console edit: %d\n%s", p.status, p.body)
	}
	if c, _ := s.app.store.GetClient(ctx, "console-signer"); c.Name != "Signer" || c.JWKS == "" || c.TokenEndpointAuthMethod != "private_key_jwt" {
		t.Fatalf("after the edit: %+v", c)
	}
	if strings.Contains(page.body, "Rotate the secret") {
		t.Fatal("the console offers to rotate the secret of a private_key_jwt client")
	}
	// Back to a secret: the page says it has none yet; rotating gives one.
	edit = accountForm(t, get(t, console, s.issuer+"/admin/clients/console-signer"), "/admin/clients/console-signer/update")
	edit.values["grant_type"] = []string{"authorization_code"}
	if p := submit(t, console, edit, map[string]string{"redirect_uris": "https://c.example/cb", "token_endpoint_auth_method": "client_secret_basic", "jwks": ""}); p.status != http.StatusOK {
		t.Fatalf("console edit to a secret: %d\n%s", p.status, p.body)
	}
	page = get(t, console, s.issuer+"/admin/clients/console-signer")
	if !strings.Contains(page.body, `id="needs-secret"`) {
		t.Fatalf("the console does not say the client needs a secret:\n%s", page.body)
	}
	if p := submit(t, console, accountForm(t, page, "/admin/clients/console-signer/rotate"), nil); !strings.Contains(p.body, `id="client-secret"`) || strings.Contains(p.body, `id="needs-secret"`) {
		t.Fatalf("rotate: %d\n%s", p.status, p.body)
	}
}

func TestI33MetadataRegistrationAndDeveloper(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	ctx := context.Background()
	public, private := i33mJWKS(t)
	var set, privSet map[string]any
	_ = json.Unmarshal([]byte(public), &set)
	_ = json.Unmarshal([]byte(private), &privSet)
	s.user("dora")
	b := s.browser()
	s.signInPage(t, b, "dora")
	made := submit(t, b, accountForm(t, get(t, b, s.issuer+"/developer"), "/developer/tokens"), map[string]string{"expires_days": "1"})
	iat := initialTokenRe.FindStringSubmatch(made.body)
	if iat == nil {
		t.Fatalf("no initial access token:\n%s", made.body)
	}

	// RFC 7591 with jwks: private_key_jwt, no secret, pairwise by default.
	meta := map[string]any{"client_name": "Keyed", "redirect_uris": []string{redirectURI}, "token_endpoint_auth_method": "private_key_jwt",
		"jwks": set, "token_endpoint_auth_signing_alg": "EdDSA", "request_uris": []string{"https://keyed.example/r#x"}}
	status, app := s.registerJSON(t, iat[1], meta)
	if status != http.StatusCreated || app["client_secret"] != nil || app["token_endpoint_auth_method"] != "private_key_jwt" || app["subject_type"] != "pairwise" ||
		app["jwks"] == nil || app["request_uris"].([]any)[0] != "https://keyed.example/r#x" {
		t.Fatalf("register with jwks: %d %v", status, app)
	}
	id, rat := app["client_id"].(string), app["registration_access_token"].(string)
	if status, public := s.registerJSON(t, iat[1], map[string]any{"client_name": "Public subs", "redirect_uris": []string{redirectURI}, "subject_type": "public"}); status != http.StatusCreated || public["subject_type"] != "public" {
		t.Fatalf("register with subject_type public: %d %v", status, public)
	}
	// Bad metadata: invalid_client_metadata, said plainly, nothing written.
	before, _ := s.app.store.ListClients(ctx)
	for what, m := range map[string]map[string]any{
		"a private key": {"client_name": "Bad", "redirect_uris": []string{redirectURI}, "token_endpoint_auth_method": "private_key_jwt", "jwks": privSet},
		"HS256":         {"client_name": "Bad", "redirect_uris": []string{redirectURI}, "token_endpoint_auth_method": "private_key_jwt", "jwks": set, "token_endpoint_auth_signing_alg": "HS256"},
		"request none?": {"client_name": "Bad", "redirect_uris": []string{redirectURI}, "request_object_signing_alg": "HS256"},
		"subject":       {"client_name": "Bad", "redirect_uris": []string{redirectURI}, "subject_type": "shared"},
	} {
		status, body := s.registerJSON(t, iat[1], m)
		if desc, _ := body["error_description"].(string); status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" || desc == "" {
			t.Fatalf("%s: %d %v", what, status, body)
		}
		if what == "a private key" && !strings.Contains(body["error_description"].(string), "private key") {
			t.Fatalf("the refusal does not say why: %v", body)
		}
	}
	if after, _ := s.app.store.ListClients(ctx); len(after) != len(before) {
		t.Fatal("a refused registration was stored")
	}
	// RFC 7592: read and update, as registered.
	status, read := s.jsonCall(t, http.MethodGet, provider.RegisterPath+"/"+id, rat, nil)
	if status != http.StatusOK || read["token_endpoint_auth_method"] != "private_key_jwt" || read["jwks"] == nil || read["subject_type"] != "pairwise" {
		t.Fatalf("RFC 7592 read: %d %v", status, read)
	}
	upd := map[string]any{"client_id": id, "client_name": "Keyed", "redirect_uris": []string{redirectURI}, "jwks": set,
		"request_uris": []string{"https://keyed.example/r2"}, "request_object_signing_alg": "ES256"}
	status, updated := s.jsonCall(t, http.MethodPut, provider.RegisterPath+"/"+id, rat, upd)
	if status != http.StatusOK || updated["token_endpoint_auth_method"] != "private_key_jwt" || updated["request_object_signing_alg"] != "ES256" ||
		updated["request_uris"].([]any)[0] != "https://keyed.example/r2" || updated["subject_type"] != "pairwise" {
		t.Fatalf("RFC 7592 update: %d %v", status, updated)
	}
	upd["subject_type"] = "public"
	if status, body := s.jsonCall(t, http.MethodPut, provider.RegisterPath+"/"+id, rat, upd); status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" {
		t.Fatalf("RFC 7592 subject type change: %d %v", status, body)
	}
	delete(upd, "subject_type")
	upd["jwks"] = privSet
	if status, body := s.jsonCall(t, http.MethodPut, provider.RegisterPath+"/"+id, rat, upd); status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" {
		t.Fatalf("RFC 7592 private key: %d %v", status, body)
	}
	if c, _ := s.app.store.GetClient(ctx, id); strings.Contains(c.JWKS, `"d"`) || c.RequestObjectSigningAlg != "ES256" {
		t.Fatalf("after the refused update: %+v", c)
	}

	// /developer: pairwise preselected; private_key_jwt with a JWK Set.
	page := get(t, b, s.issuer+"/developer")
	if !strings.Contains(page.body, `id="subject-pairwise" name="subject_type" value="pairwise" checked`) {
		t.Fatalf("/developer does not preselect pairwise:\n%s", page.body)
	}
	f := accountForm(t, page, "/developer/apps")
	p := submit(t, b, f, map[string]string{"name": "Bad", "type": "web", "redirect_uris": redirectURI, "token_endpoint_auth_method": "private_key_jwt", "jwks": private})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "holds a private key") {
		t.Fatalf("/developer, a private key: %d\n%s", p.status, p.body)
	}
	p = submit(t, b, f, map[string]string{"name": "Dev keyed", "type": "web", "redirect_uris": redirectURI, "token_endpoint_auth_method": "private_key_jwt",
		"jwks": public, "request_uris": "https://dev.example/r"})
	newID := clientIDRe.FindStringSubmatch(p.body)
	if p.status != http.StatusOK || newID == nil || clientSecretRe.MatchString(p.body) {
		t.Fatalf("/developer register: %d\n%s", p.status, p.body)
	}
	c, err := s.app.store.GetClient(ctx, newID[1])
	if err != nil || c.TokenEndpointAuthMethod != "private_key_jwt" || c.SubjectType != storage.SubjectPairwise || len(c.SecretHash) != 0 || len(c.RequestURIs) != 1 {
		t.Fatalf("/developer app: %+v %v", c, err)
	}
	p = submit(t, b, f, map[string]string{"name": "Dev public", "type": "web", "redirect_uris": redirectURI, "subject_type": "public"})
	if newID = clientIDRe.FindStringSubmatch(p.body); newID == nil {
		t.Fatalf("/developer register with public subjects: %d\n%s", p.status, p.body)
	}
	if c, _ := s.app.store.GetClient(ctx, newID[1]); c.SubjectType != storage.SubjectPublic {
		t.Fatalf("/developer, public asked: %q", c.SubjectType)
	}
}
