package main

import (
	"crypto/ecdsa"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/dpop"
)

// DPoP (RFC 9449) beyond the code flow: registration of --require-dpop,
// pushed requests, nonces at resources, the device grant, and the cost.

// BenchmarkI34ClientCredentials is a client-credentials token over HTTP
// on SQLite, as a bearer token and bound with DPoP (the proofs are made
// before the clock starts: what is measured is the server's side, one
// ES256 verification, the thumbprint and the jti's INSERT).
func BenchmarkI34ClientCredentials(b *testing.B) {
	s := startE2E(b, "sqlite://"+b.TempDir()+"/bench.db", options{})
	_, secret := s.client(clients.Spec{ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"account"}})
	form := url.Values{"grant_type": {"client_credentials"}}
	key := newDPoPKey(b)
	for _, bound := range []bool{false, true} {
		name := "bearer"
		if bound {
			name = "dpop"
		}
		b.Run(name, func(b *testing.B) {
			proofs := make([][]string, b.N)
			for i := range proofs {
				if bound {
					proofs[i] = []string{proofFor(b, key, http.MethodPost, s.issuer+provider.TokenPath, "")}
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if r := dpopDo(b, s.issuer, http.MethodPost, provider.TokenPath, form, "svc", secret, "", proofs[i]...); r.status != http.StatusOK {
					b.Fatalf("%d %v", r.status, r.body)
				}
			}
		})
	}
}

// --require-dpop everywhere a client is registered: the command line
// (create, show, update), apply and export, the admin API, and RFC 7591
// registration (dpop_bound_access_tokens); the stored flag is what the
// token endpoint enforces.
func TestI34RequireDPoPRegistration(t *testing.T) {
	t.Parallel()
	s := startE2EConfig(t, "sqlite://"+t.TempDir()+"/t.db", options{}, func(c *config.Config) { c.ClientRegistration = config.ClientRegistrationOpen })
	env := envFunc(map[string]string{"TONEARM_DATABASE_URL": s.cfg.DatabaseURL, "TONEARM_SECRET": string(s.cfg.Secret)})
	out, _, _, err := cliRun(t, env, "clients", "create", "--id", "m", "--grant-type", "client_credentials", "--scope", "admin", "--require-dpop", "--json")
	var created map[string]any
	if err != nil || json.Unmarshal([]byte(out), &created) != nil || created["dpop_bound_access_tokens"] != true {
		t.Fatalf("clients create --require-dpop: %v %s", err, out)
	}
	if out, _, _, err := cliRun(t, env, "clients", "show", "m"); err != nil || !strings.Contains(out, "dpop:                       required") {
		t.Fatalf("clients show: %v %s", err, out)
	}
	secret, _ := created["client_secret"].(string)
	form := url.Values{"grant_type": {"client_credentials"}}
	if r := dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, form, "m", secret, ""); r.status != http.StatusBadRequest || r.str("error") != "invalid_request" {
		t.Fatalf("m without a proof: %d %v", r.status, r.body)
	}
	if out, _, _, err := cliRun(t, env, "clients", "update", "m", "--require-dpop=false", "--json"); err != nil || !strings.Contains(out, `"dpop_bound_access_tokens":false`) {
		t.Fatalf("clients update --require-dpop=false: %v %s", err, out)
	}
	if !strings.Contains(exportOf(t, env), "requireDpop") {
		// Exported only when set: set it again through apply.
		if _, _, err := applyFile(t, env, "clients:\n  - id: m\n    grantTypes: [client_credentials]\n    scope: admin\n    requireDpop: true\n"); err != nil {
			t.Fatalf("apply requireDpop: %v", err)
		}
	}
	if exp := exportOf(t, env); !strings.Contains(exp, "requireDpop: true") {
		t.Fatalf("export after apply requireDpop: true:\n%s", exp)
	}
	// The admin API, with an admin token bound to a key.
	key := newDPoPKey(t)
	_, adminSecret := s.client(clients.Spec{ID: "ops", GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}})
	tok := dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, form, "ops", adminSecret, "", proofFor(t, key, http.MethodPost, s.issuer+provider.TokenPath, ""))
	access := tok.str("access_token")
	patch := func(body string) dpopReply {
		u := s.issuer + "/api/admin/clients/m"
		req, _ := http.NewRequest(http.MethodPatch, u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "DPoP "+access)
		req.Header.Set("DPoP", proofFor(t, key, http.MethodPatch, u, access))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return dpopReply{status: resp.StatusCode, body: out}
	}
	if r := patch(`{"requireDpop": false}`); r.status != http.StatusOK || r.body["requireDpop"] != false {
		t.Fatalf("PATCH requireDpop false: %d %v", r.status, r.body)
	}
	// RFC 7591: an app asks for DPoP-bound tokens.
	status, app := s.registerJSON(t, "", map[string]any{"redirect_uris": []string{redirectURI}, "client_name": "Bound", "dpop_bound_access_tokens": true,
		"grant_types": []string{"authorization_code"}})
	if status != http.StatusCreated || app["dpop_bound_access_tokens"] != true {
		t.Fatalf("registration with dpop_bound_access_tokens: %d %v", status, app)
	}
	id, _ := app["client_id"].(string)
	if c, err := s.app.clients.Get(t.Context(), id); err != nil || !c.RequireDPoP {
		t.Fatalf("the registered app: %+v %v", c, err)
	}
}

// A pushed request (PAR) sent with a proof is bound to its key (RFC 9449
// §10.1): the code is redeemed only with that key; a dpop_jkt naming
// another key than the proof's is refused.
func TestI34DPoPPushedRequest(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.user("ivy")
	s.client(clients.Spec{ID: "spa", Public: true, FirstParty: true, Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"}})
	key, thief := newDPoPKey(t), newDPoPKey(t)
	browser := s.browser()
	push := func(extra url.Values, proofs ...string) (dpopReply, string) {
		verifier := oauth2.GenerateVerifier()
		form := url.Values{"response_type": {"code"}, "client_id": {"spa"}, "redirect_uri": {redirectURI}, "scope": {"openid"}, "state": {random(t)},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}
		for k, v := range extra {
			form[k] = v
		}
		return dpopDo(t, s.issuer, http.MethodPost, provider.PARPath, form, "", "", "", proofs...), verifier
	}
	if r, _ := push(url.Values{"dpop_jkt": {jktOf(t, thief)}}, proofFor(t, key, http.MethodPost, s.issuer+provider.PARPath, "")); r.status != http.StatusBadRequest || r.str("error") != dpop.ErrInvalidProof {
		t.Fatalf("a push whose dpop_jkt is not the proof's key: %d %v", r.status, r.body)
	}
	if r, _ := push(nil, proofFor(t, key, http.MethodPost, s.issuer+provider.TokenPath, "")); r.status != http.StatusBadRequest || r.str("error") != dpop.ErrInvalidProof {
		t.Fatalf("a push with a proof for the token endpoint: %d %v", r.status, r.body)
	}
	code := func(login string) (string, string) {
		r, verifier := push(nil, proofFor(t, key, http.MethodPost, s.issuer+provider.PARPath, ""))
		if r.status != http.StatusCreated {
			t.Fatalf("push with a proof: %d %v", r.status, r.body)
		}
		back := s.authorize(browser, s.issuer+provider.AuthorizePath+"?"+url.Values{"client_id": {"spa"}, "request_uri": {r.str("request_uri")}}.Encode(), login, false)
		return back.Query().Get("code"), verifier
	}
	redeem := func(code, verifier string, k *ecdsa.PrivateKey) dpopReply {
		return dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"code_verifier": {verifier}, "client_id": {"spa"}, "redirect_uri": {redirectURI}}, "", "", "", proofFor(t, k, http.MethodPost, s.issuer+provider.TokenPath, ""))
	}
	c, v := code("ivy")
	if r := redeem(c, v, thief); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Fatalf("the code of a DPoP push redeemed with another key: %d %v", r.status, r.body)
	}
	c, v = code("")
	if r := redeem(c, v, key); r.status != http.StatusOK || tokenCnf(t, r.str("access_token")) != jktOf(t, key) {
		t.Fatalf("the code of a DPoP push redeemed with its key: %d %v", r.status, r.body)
	}
}

// With nonces on, a resource refuses a proof without the nonce with 401
// use_dpop_nonce and the nonce to use (§9).
func TestI34DPoPNonceAtResources(t *testing.T) {
	t.Parallel()
	s := startE2EConfig(t, "sqlite://"+t.TempDir()+"/t.db", options{}, func(c *config.Config) { c.DPoPNonce = config.DPoPNonceOn })
	_, secret := s.client(clients.Spec{ID: "ops", GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}})
	key := newDPoPKey(t)
	tokenURL, usersURL := s.issuer+provider.TokenPath, s.issuer+"/api/admin/users"
	form := url.Values{"grant_type": {"client_credentials"}}
	nonce := dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, form, "ops", secret, "", proofFor(t, key, http.MethodPost, tokenURL, "")).header.Get("DPoP-Nonce")
	p, _ := dpop.MakeProof(key, jose.ES256, dpop.ProofClaims{Method: http.MethodPost, URL: tokenURL, Nonce: nonce})
	tok := dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, form, "ops", secret, "", p)
	access := tok.str("access_token")
	if tok.status != http.StatusOK || access == "" {
		t.Fatalf("token with the nonce: %d %v", tok.status, tok.body)
	}
	r := dpopDo(t, s.issuer, http.MethodGet, "/api/admin/users", nil, "", "", "DPoP "+access, proofFor(t, key, http.MethodGet, usersURL, access))
	if r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) || r.header.Get("DPoP-Nonce") == "" {
		t.Fatalf("a resource proof without the nonce: %d %q %q", r.status, r.header.Get("WWW-Authenticate"), r.header.Get("DPoP-Nonce"))
	}
	p, _ = dpop.MakeProof(key, jose.ES256, dpop.ProofClaims{Method: http.MethodGet, URL: usersURL, AccessToken: access, Nonce: r.header.Get("DPoP-Nonce")})
	if r := dpopDo(t, s.issuer, http.MethodGet, "/api/admin/users", nil, "", "", "DPoP "+access, p); r.status != http.StatusOK {
		t.Fatalf("a resource proof with the nonce: %d %v", r.status, r.body)
	}
}

// The device grant (RFC 8628) with DPoP: the device's poll carries a
// proof, its tokens are bound, and its refresh token (a public client's)
// needs the device's key.
func TestI34DPoPDeviceGrant(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.client(clients.Spec{ID: "scrobbler", Public: true, RedirectURIs: []string{}, GrantTypes: []string{clients.DeviceCodeGrant, "refresh_token"},
		Scopes: []string{"openid", "offline_access"}})
	u := s.user("couch")
	browser := s.browser()
	s.signInPage(t, browser, u.Username)
	start := dpopDo(t, s.issuer, http.MethodPost, provider.DeviceAuthorizationPath, url.Values{"client_id": {"scrobbler"}, "scope": {"openid offline_access"}}, "", "", "")
	if start.status != http.StatusOK {
		t.Fatalf("device authorization: %d %v", start.status, start.body)
	}
	s.decideDevice(t, browser, start.str("verification_uri_complete"), "allow")
	key := newDPoPKey(t)
	tokenURL := s.issuer + provider.TokenPath
	poll := dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, url.Values{"grant_type": {clients.DeviceCodeGrant}, "device_code": {start.str("device_code")}, "client_id": {"scrobbler"}},
		"", "", "", proofFor(t, key, http.MethodPost, tokenURL, ""))
	if poll.status != http.StatusOK || poll.str("token_type") != "DPoP" || tokenCnf(t, poll.str("access_token")) != jktOf(t, key) {
		t.Fatalf("a device poll with a proof: %d %v", poll.status, poll.body)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {poll.str("refresh_token")}, "client_id": {"scrobbler"}}
	if r := dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, refresh, "", "", ""); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Fatalf("the device's refresh token without its key: %d %v", r.status, r.body)
	}
	if r := dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, refresh, "", "", "", proofFor(t, key, http.MethodPost, tokenURL, "")); r.status != http.StatusOK || r.str("token_type") != "DPoP" {
		t.Fatalf("the device's refresh token with its key: %d %v", r.status, r.body)
	}
}

// The console's client forms carry the DPoP box: create with it ticked,
// the edit page shows it, and saving without it clears it.
func TestI34RequireDPoPConsole(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.admin("boss")
	console := s.browser()
	s.signInPage(t, console, "boss")
	f := accountForm(t, get(t, console, s.issuer+"/admin/clients"), "/admin/clients")
	f.values["grant_type"] = []string{"client_credentials"}
	if p := submit(t, console, f, map[string]string{"client_id": "boxed", "scope": "admin", "require_dpop": "yes"}); p.status != http.StatusOK {
		t.Fatalf("console create: %d\n%s", p.status, p.body)
	}
	if c, err := s.app.store.GetClient(t.Context(), "boxed"); err != nil || !c.RequireDPoP {
		t.Fatalf("the console's client: %+v %v", c, err)
	}
	page := get(t, console, s.issuer+"/admin/clients/boxed")
	if !strings.Contains(page.body, `name="require_dpop" value="yes" checked`) {
		t.Fatalf("the edit page does not show the DPoP box ticked:\n%s", page.body)
	}
	edit := accountForm(t, page, "/admin/clients/boxed/update")
	delete(edit.values, "require_dpop")
	if p := submit(t, console, edit, nil); p.status != http.StatusOK {
		t.Fatalf("console edit: %d\n%s", p.status, p.body)
	}
	if c, _ := s.app.store.GetClient(t.Context(), "boxed"); c.RequireDPoP {
		t.Fatal("unticking the box kept RequireDPoP")
	}
}

// BenchmarkI34Refresh is a public client's refresh over HTTP on SQLite
// (each refresh rotates the token: one chain per sub-benchmark), as a
// bearer token and bound with DPoP (the proofs made before the clock
// starts).
func BenchmarkI34Refresh(b *testing.B) {
	s := startE2E(b, "sqlite://"+b.TempDir()+"/bench.db", options{})
	s.user("ivy")
	s.client(clients.Spec{ID: "spa", Public: true, FirstParty: true, Scopes: []string{"openid", "offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"}})
	browser := s.browser()
	key := newDPoPKey(b)
	tokenURL := s.issuer + provider.TokenPath
	for i, bound := range []bool{false, true} {
		name := "bearer"
		if bound {
			name = "dpop"
		}
		login := ""
		if i == 0 {
			login = "ivy"
		}
		code, verifier := dpopCode(s, browser, login, url.Values{"scope": {"openid offline_access"}})
		var proof []string
		if bound {
			proof = []string{proofFor(b, key, http.MethodPost, tokenURL, "")}
		}
		tok := dpopDo(b, s.issuer, http.MethodPost, provider.TokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"code_verifier": {verifier}, "client_id": {"spa"}, "redirect_uri": {redirectURI}}, "", "", "", proof...)
		refresh := tok.str("refresh_token")
		if refresh == "" {
			b.Fatalf("no refresh token: %v", tok.body)
		}
		b.Run(name, func(b *testing.B) {
			proofs := make([][]string, b.N)
			for i := range proofs {
				if bound {
					proofs[i] = []string{proofFor(b, key, http.MethodPost, tokenURL, "")}
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := dpopDo(b, s.issuer, http.MethodPost, provider.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {"spa"}}, "", "", "", proofs[i]...)
				if r.status != http.StatusOK {
					b.Fatalf("%d %v", r.status, r.body)
				}
				refresh = r.str("refresh_token")
			}
		})
	}
}

// A confidential client's refresh token is not bound (it authenticates,
// RFC 9449 §5): a refresh without a proof gets a bearer token, and one
// with a proof an access token bound to that proof's key.
func TestI34DPoPConfidentialRefresh(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.user("ivy")
	_, secret := s.client(clients.Spec{ID: "web", FirstParty: true, Scopes: []string{"openid", "offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"}})
	r := s.rp("web", secret, "offline_access")
	key, other := newDPoPKey(t), newDPoPKey(t)
	verifier := oauth2.GenerateVerifier()
	code := s.authorize(s.browser(), r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(verifier)), "ivy", false).Query().Get("code")
	tokenURL := s.issuer + provider.TokenPath
	tok := dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {redirectURI}}, "web", secret, "", proofFor(t, key, http.MethodPost, tokenURL, ""))
	if tok.status != http.StatusOK || tok.str("token_type") != "DPoP" {
		t.Fatalf("code exchange with a proof: %d %v", tok.status, tok.body)
	}
	refresh := func(rt string, proofs ...string) dpopReply {
		return dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web", secret, "", proofs...)
	}
	plain := refresh(tok.str("refresh_token"))
	if plain.status != http.StatusOK || !strings.EqualFold(plain.str("token_type"), "bearer") || tokenCnf(t, plain.str("access_token")) != "" {
		t.Fatalf("a confidential refresh without a proof: %d %v, want a bearer token", plain.status, plain.body)
	}
	bound := refresh(plain.str("refresh_token"), proofFor(t, other, http.MethodPost, tokenURL, ""))
	if bound.status != http.StatusOK || tokenCnf(t, bound.str("access_token")) != jktOf(t, other) {
		t.Fatalf("a confidential refresh with a new key's proof: %d %v, want a token bound to it", bound.status, bound.body)
	}
}
