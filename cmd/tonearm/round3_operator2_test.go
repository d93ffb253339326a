package main

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

func sqliteURL(t *testing.T) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "tonearm.db")
}

// An API stored under tonearm's own API id (registered by a command line
// that worked out another issuer, or under an earlier issuer) is ignored:
// its scope is nobody's, never in discovery, never under tonearm's own
// audience; deleting it is allowed, deleting the built-in API is not.
func TestShadowOfOwnAPIIgnored(t *testing.T) {
	t.Parallel()
	s := startE2E(t, sqliteURL(t), options{})
	ctx := context.Background()
	own := s.issuer + "/api"
	_, secret := s.client(clients.Spec{ID: "machine", GrantTypes: []string{"client_credentials"}, Scopes: []string{"account"}})
	if err := s.app.store.CreateAPI(ctx, storage.API{ID: own, Name: "Shadow", Scopes: []storage.APIScope{{Name: "shadow:read"}}, Claims: []string{}, Introspectors: []string{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.store.UpdateClient(ctx, "machine", func(c storage.Client) (storage.Client, error) {
		c.Scopes = append(c.Scopes, "shadow:read")
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.app.apis.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	disco := s.want(s.call(nil, http.MethodGet, provider.DiscoveryPath, "", nil), http.StatusOK)
	if sc := asStrings(disco.body["scopes_supported"]); strings.Contains(strings.Join(sc, " "), "shadow:read") {
		t.Fatalf("scopes_supported lists the shadow's scope: %v", sc)
	}
	got := s.post(provider.TokenPath, "machine", secret, url.Values{"grant_type": {"client_credentials"}, "scope": {"shadow:read"}})
	if got.status == http.StatusOK {
		at, _ := got.body["access_token"].(string)
		payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(at+"..", ".")[1])
		if sc, _ := got.body["scope"].(string); strings.Contains(sc, "shadow:read") || strings.Contains(string(payload), own) {
			t.Fatalf("shadow:read granted under tonearm's own audience: %v %s", got.body, payload)
		}
	}
	if _, _, err := s.app.clients.Create(ctx, clients.Spec{ID: "other", GrantTypes: []string{"client_credentials"}, Scopes: []string{"shadow:read"}}); err == nil {
		t.Fatal("a client registered with the shadow's scope")
	}
	ops := s.opsToken()
	list := s.want(s.call(nil, http.MethodGet, "/api/admin/apis", ops, nil), http.StatusOK)
	if apis := list.body["apis"].([]any); len(apis) != 1 || apis[0].(map[string]any)["builtin"] != true {
		t.Fatalf("API list shows the shadow: %s", list.raw)
	}
	// The shadow goes once no client holds its scope; the built-in API stays.
	s.want(s.call(nil, http.MethodDelete, apiPath(own), ops, nil), http.StatusConflict)
	s.want(s.call(nil, http.MethodDelete, "/api/admin/clients/machine", ops, nil), http.StatusOK)
	s.want(s.call(nil, http.MethodDelete, apiPath(own), ops, nil), http.StatusOK)
	if _, err := s.app.store.GetAPI(ctx, own); err == nil {
		t.Fatal("the shadow is still stored")
	}
	s.want(s.call(nil, http.MethodDelete, apiPath(own), ops, nil), http.StatusBadRequest)
}

// tamper changes one character of the key part (before the dot) or of the
// signature part (after it) of an HMAC token.
func tamper(tok string, sigPart bool) string {
	i := strings.LastIndexByte(tok, '.') + 1
	if !sigPart {
		// The key part starts after fosite's prefix (ory_ac_, ory_rt_,
		// ory_dc_); base64url may hold '_' itself, so count, don't search.
		i = 0
		if strings.HasPrefix(tok, "ory_") {
			i = len("ory_ac_")
		}
	}
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

// A refresh token, an authorization code or a device code that is not
// valid gets invalid_grant (RFC 6749 §5.2, RFC 8628 §3.5), whichever part
// of it was changed: client libraries sign in again only on invalid_grant.
func TestTamperedGrantsAreInvalidGrant(t *testing.T) {
	t.Parallel()
	s := startE2E(t, sqliteURL(t), options{})
	s.user("alice")
	_, secret := s.client(clients.Spec{ID: "web", FirstParty: true})
	r := s.rp("web", secret, "profile", "offline_access")
	tok := s.codeFlow(r, s.browser(), "alice")
	if !strings.HasPrefix(tok.RefreshToken, "ory_rt_") {
		t.Fatalf("refresh token %q", tok.RefreshToken)
	}
	for name, rt := range map[string]string{
		"key changed":       tamper(tok.RefreshToken, false),
		"signature changed": tamper(tok.RefreshToken, true),
		"garbage":           "ory_rt_garbage",
		"no dot":            "nonsense",
	} {
		if got := s.refresh("web", secret, rt, ""); got.status != http.StatusBadRequest || got.errorCode() != "invalid_grant" {
			t.Errorf("refresh with %s: %d %v, want 400 invalid_grant", name, got.status, got.body)
		}
	}
	// The tampered ones changed nothing: the real token still refreshes.
	if got := s.refresh("web", secret, tok.RefreshToken, ""); got.status != http.StatusOK {
		t.Fatalf("the real refresh token after tampered ones: %d %v", got.status, got.body)
	}

	verifier := oauth2.GenerateVerifier()
	back := s.authorize(s.browser(), r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(t))), "alice", false)
	code := back.Query().Get("code")
	for name, c := range map[string]string{"key changed": tamper(code, false), "signature changed": tamper(code, true)} {
		got := s.post(provider.TokenPath, "web", secret, url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}})
		if got.status != http.StatusBadRequest || got.errorCode() != "invalid_grant" {
			t.Errorf("code with %s: %d %v, want 400 invalid_grant", name, got.status, got.body)
		}
	}
	// A forged code with the real one's signature part found the real
	// code's row, and the failed exchange spent it: whoever held half a
	// code could burn it (or, after its use, revoke the tokens it gave).
	if got := s.post(provider.TokenPath, "web", secret, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}); got.status != http.StatusOK {
		t.Errorf("the real code after forged ones: %d %v, want 200", got.status, got.body)
	}

	s.client(clients.Spec{ID: "tv", Public: true, RedirectURIs: []string{}, GrantTypes: []string{clients.DeviceCodeGrant}, Scopes: []string{"openid", "profile"}})
	status, auth := s.deviceStart(t, "tv", "openid profile")
	if status != http.StatusOK {
		t.Fatalf("device authorization: %d %v", status, auth)
	}
	dc := auth["device_code"].(string)
	c := byte('A')
	if dc[0] == 'A' {
		c = 'B'
	}
	if status, body := s.devicePoll(t, "tv", string(c)+dc[1:]); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("tampered device code: %d %v, want 400 invalid_grant", status, body)
	}
}

// Start-up and the files it leaves: a busy port (main, metrics or
// profiling) stops start-up with one line naming the setting and leaves no
// development secret behind; a started server's database and secret files
// are readable by their owner only.
func TestServeBusyPortsAndFileModes(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, setting := range []string{"TONEARM_LISTEN", "TONEARM_METRICS_LISTEN", "TONEARM_PPROF_LISTEN"} {
		dir := t.TempDir()
		env := map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(dir, "tonearm.db"), "TONEARM_LISTEN": "127.0.0.1:0", setting: busy.Addr().String()}
		var logs lockedBuffer
		// A server that starts anyway is stopped after a while.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := run(ctx, []string{"serve"}, envFunc(env), strings.NewReader(""), io.Discard, &logs)
		cancel()
		if err == nil || !strings.HasPrefix(err.Error(), setting+":") {
			t.Errorf("%s busy: %v, want an error naming it\n%s", setting, err, logs.String())
		}
		if strings.Contains(logs.String(), `"level":"ERROR"`) {
			t.Errorf("%s busy: an ERROR logged\n%s", setting, logs.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "tonearm.db.secret")); !os.IsNotExist(err) {
			t.Errorf("%s busy: the development secret file was created (%v)", setting, err)
		}
	}

	dir := t.TempDir()
	_, _, stop := startServer(t, map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(dir, "tonearm.db")})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tonearm.db", "tonearm.db.secret"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, info.Mode().Perm())
		}
	}
}

// tonearm migrate answers on standard output and logs only with -v, as
// docs/configuration.md says of every command.
func TestMigrateLogsOnlyWithV(t *testing.T) {
	t.Parallel()
	env := envFunc(map[string]string{"TONEARM_DATABASE_URL": sqliteURL(t)})
	for _, args := range [][]string{{"migrate"}, {"migrate", "-v"}} {
		var out, errs lockedBuffer
		if err := run(context.Background(), args, env, nil, &out, &errs); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !strings.Contains(out.String(), "migrations") && !strings.Contains(out.String(), "up to date") {
			t.Errorf("%v printed %q", args, out.String())
		}
		if verbose := len(args) == 2; (errs.String() != "") != verbose {
			t.Errorf("%v logged %q", args, errs.String())
		}
	}
}
