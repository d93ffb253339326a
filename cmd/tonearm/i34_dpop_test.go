package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/dpop"
)

// DPoP (RFC 9449): tokens bound to a client's key, refused to whoever holds
// them without it.

func newDPoPKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func jktOf(t testing.TB, k *ecdsa.PrivateKey) string {
	jkt, err := dpop.Thumbprint(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return jkt
}

// proofFor is a good proof by k for method at the issuer's path (with ath
// of token at a resource).
func proofFor(t testing.TB, k *ecdsa.PrivateKey, method, u, token string) string {
	p, err := dpop.MakeProof(k, jose.ES256, dpop.ProofClaims{Method: method, URL: u, AccessToken: token})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rawProof signs header and claims as a compact JWS: with alg none (no
// signature), HS256 (a MAC under "secret") or ES256 by k, whatever the
// header says, to forge what a library would never make.
func rawProof(t testing.TB, k *ecdsa.PrivateKey, header, claims map[string]any) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	switch header["alg"] {
	case "none":
		return input + "."
	case "HS256":
		m := hmac.New(sha256.New, []byte("secret"))
		m.Write([]byte(input))
		return input + "." + enc.EncodeToString(m.Sum(nil))
	}
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig[:])
}

func proofClaims(method, u string) map[string]any {
	return map[string]any{"jti": base64.RawURLEncoding.EncodeToString([]byte(time.Now().String())), "htm": method, "htu": u, "iat": time.Now().Unix()}
}

type dpopReply struct {
	status int
	body   map[string]any
	header http.Header
}

func (r dpopReply) str(name string) string { s, _ := r.body[name].(string); return s }

// dpopDo sends a request to base+path with the proofs as DPoP headers; a
// form is posted, auth is an Authorization header ("" none), and basic
// client credentials are sent when id is set.
func dpopDo(t testing.TB, base, method, path string, form url.Values, id, secret, auth string, proofs ...string) dpopReply {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return dpopReply{status: resp.StatusCode, body: out, header: resp.Header}
}

// tokenCnf is the cnf.jkt of a JWT access token.
func tokenCnf(t testing.TB, token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	_ = json.Unmarshal(raw, &c)
	return c.Cnf.JKT
}

// dpopCode runs the browser part of a code flow for the public client
// "spa" and returns the code and its verifier; extra adds to the request.
func dpopCode(s *server, browser *http.Client, username string, extra url.Values) (string, string) {
	verifier := oauth2.GenerateVerifier()
	q := url.Values{"response_type": {"code"}, "client_id": {"spa"}, "redirect_uri": {redirectURI}, "scope": {"openid account offline_access"},
		"state": {random(s.t)}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		q[k] = v
	}
	back := s.authorize(browser, s.issuer+provider.AuthorizePath+"?"+q.Encode(), username, false)
	code := back.Query().Get("code")
	if code == "" {
		s.t.Fatalf("no code: %v", back)
	}
	return code, verifier
}

func TestI34DPoPCodeFlowAndResources(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.user("ivy")
	s.client(clients.Spec{ID: "spa", Public: true, FirstParty: true, Scopes: []string{"openid", "account", "offline_access"},
		GrantTypes: []string{"authorization_code", "refresh_token"}})
	key, thief := newDPoPKey(t), newDPoPKey(t)
	browser := s.browser()
	tokenURL := s.issuer + provider.TokenPath
	redeem := func(code, verifier string, proofs ...string) dpopReply {
		return dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"code_verifier": {verifier}, "client_id": {"spa"}, "redirect_uri": {redirectURI}}, "", "", "", proofs...)
	}

	// A code asked for with dpop_jkt (§10) is redeemed only with that key.
	code, verifier := dpopCode(s, browser, "ivy", url.Values{"dpop_jkt": {jktOf(t, key)}})
	if r := redeem(code, verifier, proofFor(t, thief, http.MethodPost, tokenURL, "")); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Fatalf("a dpop_jkt code with another key's proof: %d %v, want 400 invalid_grant", r.status, r.body)
	}
	code, verifier = dpopCode(s, browser, "", url.Values{"dpop_jkt": {jktOf(t, key)}})
	if r := redeem(code, verifier); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Fatalf("a dpop_jkt code without a proof: %d %v, want 400 invalid_grant", r.status, r.body)
	}
	code, verifier = dpopCode(s, browser, "", url.Values{"dpop_jkt": {jktOf(t, key)}})
	tok := redeem(code, verifier, proofFor(t, key, http.MethodPost, tokenURL, ""))
	if tok.status != http.StatusOK || tok.str("token_type") != "DPoP" || tokenCnf(t, tok.str("access_token")) != jktOf(t, key) {
		t.Fatalf("a DPoP code exchange: %d %v, want token_type DPoP and cnf.jkt of the key", tok.status, tok.body)
	}
	access, refresh := tok.str("access_token"), tok.str("refresh_token")
	if refresh == "" {
		t.Fatal("no refresh token")
	}
	// The access token is still an RFC 9068 token, verifiable offline.
	if claims := verifyAccessToken(t, s.issuer, access); claims["client_id"] != "spa" {
		t.Fatalf("access token claims %v", claims)
	}

	userinfo, me := s.issuer+provider.UserinfoPath, s.issuer+"/api/me"
	for _, res := range []struct{ path, url string }{{provider.UserinfoPath, userinfo}, {"/api/me", me}} {
		if r := dpopDo(t, s.issuer, http.MethodGet, res.path, nil, "", "", "DPoP "+access, proofFor(t, key, http.MethodGet, res.url, access)); r.status != http.StatusOK {
			t.Fatalf("%s with the token and its key's proof: %d %v", res.path, r.status, r.body)
		}
		// A stolen token, without the key.
		for name, c := range map[string]struct {
			auth   string
			proofs []string
			code   string
		}{
			"as a bearer token":     {"Bearer " + access, nil, "invalid_token"},
			"without a proof":       {"DPoP " + access, nil, dpop.ErrInvalidProof},
			"with another key":      {"DPoP " + access, []string{proofFor(t, thief, http.MethodGet, res.url, access)}, dpop.ErrInvalidProof},
			"with a wrong ath":      {"DPoP " + access, []string{proofFor(t, key, http.MethodGet, res.url, access+"x")}, dpop.ErrInvalidProof},
			"for another URL":       {"DPoP " + access, []string{proofFor(t, key, http.MethodGet, s.issuer+"/other", access)}, dpop.ErrInvalidProof},
			"for another method":    {"DPoP " + access, []string{proofFor(t, key, http.MethodPost, res.url, access)}, dpop.ErrInvalidProof},
			"with two DPoP headers": {"DPoP " + access, []string{proofFor(t, key, http.MethodGet, res.url, access), proofFor(t, key, http.MethodGet, res.url, access)}, dpop.ErrInvalidProof},
		} {
			r := dpopDo(t, s.issuer, http.MethodGet, res.path, nil, "", "", c.auth, c.proofs...)
			challenge := r.header.Get("WWW-Authenticate")
			if r.status != http.StatusUnauthorized || !strings.HasPrefix(challenge, "DPoP ") || !strings.Contains(challenge, `error="`+c.code+`"`) {
				t.Errorf("%s %s: %d %q, want 401 with DPoP error=%q", res.path, name, r.status, challenge, c.code)
			}
		}
	}

	// Refresh (public client): bound to the key, §5.
	refreshWith := func(rt string, proofs ...string) dpopReply {
		return dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"spa"}}, "", "", "", proofs...)
	}
	if r := refreshWith(refresh); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Fatalf("a stolen refresh token without a proof: %d %v, want invalid_grant", r.status, r.body)
	}
	if r := refreshWith(refresh, proofFor(t, thief, http.MethodPost, tokenURL, "")); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Fatalf("a stolen refresh token with the thief's key: %d %v, want invalid_grant", r.status, r.body)
	}
	r := refreshWith(refresh, proofFor(t, key, http.MethodPost, tokenURL, ""))
	if r.status != http.StatusOK || r.str("token_type") != "DPoP" || tokenCnf(t, r.str("access_token")) != jktOf(t, key) {
		t.Fatalf("refresh with the key: %d %v", r.status, r.body)
	}
	if r := refreshWith(r.str("refresh_token")); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Fatalf("the rotated refresh token without a proof: %d %v, want invalid_grant", r.status, r.body)
	}

	// A code asked for without DPoP gives bearer tokens, taken as before.
	code, verifier = dpopCode(s, browser, "", nil)
	bearer := redeem(code, verifier)
	if bearer.status != http.StatusOK || !strings.EqualFold(bearer.str("token_type"), "bearer") || tokenCnf(t, bearer.str("access_token")) != "" {
		t.Fatalf("a bearer exchange: %d %v", bearer.status, bearer.body)
	}
	if r := dpopDo(t, s.issuer, http.MethodGet, "/api/me", nil, "", "", "Bearer "+bearer.str("access_token")); r.status != http.StatusOK {
		t.Fatalf("a bearer token at /api/me: %d %v", r.status, r.body)
	}
}

func TestI34DPoPProofRefusals(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	_, secret := s.client(clients.Spec{ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"account"}})
	key := newDPoPKey(t)
	tokenURL := s.issuer + provider.TokenPath
	form := url.Values{"grant_type": {"client_credentials"}}
	token := func(proofs ...string) dpopReply {
		return dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, form, "svc", secret, "", proofs...)
	}

	good := proofFor(t, key, http.MethodPost, tokenURL, "")
	r := token(good)
	if r.status != http.StatusOK || r.str("token_type") != "DPoP" || tokenCnf(t, r.str("access_token")) != jktOf(t, key) {
		t.Fatalf("client credentials with a proof: %d %v", r.status, r.body)
	}
	in := dpopDo(t, s.issuer, http.MethodPost, provider.IntrospectPath, url.Values{"token": {r.str("access_token")}}, "svc", secret, "")
	if cnf, _ := in.body["cnf"].(map[string]any); in.body["active"] != true || in.str("token_type") != "DPoP" || cnf["jkt"] != jktOf(t, key) {
		t.Fatalf("introspection of a DPoP-bound token: %v, want token_type DPoP and cnf.jkt", in.body)
	}
	if r := token(); r.status != http.StatusOK || !strings.EqualFold(r.str("token_type"), "bearer") {
		t.Fatalf("client credentials without a proof: %d %v, want a bearer token", r.status, r.body)
	}

	jwk := func(k *ecdsa.PrivateKey, private bool) map[string]any {
		j := jose.JSONWebKey{Key: &k.PublicKey}
		if private {
			j = jose.JSONWebKey{Key: k}
		}
		raw, _ := j.MarshalJSON()
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return m
	}
	hdr := func(alg string, private bool) map[string]any {
		return map[string]any{"typ": "dpop+jwt", "alg": alg, "jwk": jwk(key, private)}
	}
	old := proofClaims(http.MethodPost, tokenURL)
	old["iat"] = time.Now().Add(-2 * time.Minute).Unix()
	future := proofClaims(http.MethodPost, tokenURL)
	future["iat"] = time.Now().Add(time.Minute).Unix()
	for name, proofs := range map[string][]string{
		"a replayed proof":           {good},
		"another URL":                {proofFor(t, key, http.MethodPost, s.issuer+provider.UserinfoPath, "")},
		"another host":               {proofFor(t, key, http.MethodPost, "https://elsewhere.example"+provider.TokenPath, "")},
		"another method":             {proofFor(t, key, http.MethodGet, tokenURL, "")},
		"an expired iat":             {rawProof(t, key, hdr("ES256", false), old)},
		"a future iat":               {rawProof(t, key, hdr("ES256", false), future)},
		"alg none":                   {rawProof(t, key, hdr("none", false), proofClaims(http.MethodPost, tokenURL))},
		"alg HS256":                  {rawProof(t, key, hdr("HS256", false), proofClaims(http.MethodPost, tokenURL))},
		"a private jwk":              {rawProof(t, key, hdr("ES256", true), proofClaims(http.MethodPost, tokenURL))},
		"typ JWT":                    {rawProof(t, key, map[string]any{"typ": "JWT", "alg": "ES256", "jwk": jwk(key, false)}, proofClaims(http.MethodPost, tokenURL))},
		"two DPoP headers":           {proofFor(t, key, http.MethodPost, tokenURL, ""), proofFor(t, key, http.MethodPost, tokenURL, "")},
		"not a JWT":                  {"garbage"},
		"a signature by another key": {rawProof(t, newDPoPKey(t), hdr("ES256", false), proofClaims(http.MethodPost, tokenURL))},
	} {
		if r := token(proofs...); r.status != http.StatusBadRequest || r.str("error") != dpop.ErrInvalidProof {
			t.Errorf("%s: %d %v, want 400 invalid_dpop_proof", name, r.status, r.body)
		}
	}

	// A client registered to require DPoP gets nothing without a proof.
	_, strict := s.client(clients.Spec{ID: "strict", GrantTypes: []string{"client_credentials"}, Scopes: []string{"account"}, RequireDPoP: true})
	if r := dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, form, "strict", strict, ""); r.status != http.StatusBadRequest || r.str("error") != "invalid_request" {
		t.Fatalf("a require-dpop client without a proof: %d %v, want 400 invalid_request", r.status, r.body)
	}
	if r := dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, form, "strict", strict, "", proofFor(t, key, http.MethodPost, tokenURL, "")); r.status != http.StatusOK || r.str("token_type") != "DPoP" {
		t.Fatalf("a require-dpop client with a proof: %d %v", r.status, r.body)
	}
	if disco := dpopDo(t, s.issuer, http.MethodGet, provider.DiscoveryPath, nil, "", "", ""); !strings.Contains(strings.Join(anyStrings(disco.body["dpop_signing_alg_values_supported"]), " "), "ES256") {
		t.Fatalf("discovery dpop_signing_alg_values_supported = %v", disco.body["dpop_signing_alg_values_supported"])
	}
}

func anyStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// One proof sent five times at once to two replicas: exactly one request
// gets a token (the jti is recorded in the database, one statement).
func TestI34DPoPReplayAcrossReplicas(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		other := s.second()
		_, secret := s.client(clients.Spec{ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"account"}})
		proof := proofFor(t, newDPoPKey(t), http.MethodPost, s.issuer+provider.TokenPath, "")
		var wg sync.WaitGroup
		statuses := make([]int, 5)
		for i := range statuses {
			base := s.srv.URL
			if i%2 == 1 {
				base = other.srv.URL // the proof names the issuer's URL, not this replica's
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = dpopDo(t, base, http.MethodPost, provider.TokenPath, url.Values{"grant_type": {"client_credentials"}}, "svc", secret, "", proof).status
			}()
		}
		wg.Wait()
		ok := 0
		for _, st := range statuses {
			if st == http.StatusOK {
				ok++
			} else if st != http.StatusBadRequest {
				t.Errorf("a replay answered %d, want 400", st)
			}
		}
		if ok != 1 {
			t.Fatalf("statuses %v: %d requests got a token, want exactly 1", statuses, ok)
		}
	})
}

// TONEARM_DPOP_NONCE=on: a proof without the server's nonce is refused
// with use_dpop_nonce and the nonce to use; another replica accepts it.
func TestI34DPoPNonce(t *testing.T) {
	t.Parallel()
	s := startE2EConfig(t, "sqlite://"+t.TempDir()+"/t.db", options{}, func(c *config.Config) { c.DPoPNonce = config.DPoPNonceOn })
	other := s.second()
	_, secret := s.client(clients.Spec{ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"account"}})
	key := newDPoPKey(t)
	tokenURL := s.issuer + provider.TokenPath
	form := url.Values{"grant_type": {"client_credentials"}}
	r := dpopDo(t, s.srv.URL, http.MethodPost, provider.TokenPath, form, "svc", secret, "", proofFor(t, key, http.MethodPost, tokenURL, ""))
	nonce := r.header.Get("DPoP-Nonce")
	if r.status != http.StatusBadRequest || r.str("error") != dpop.ErrUseNonce || nonce == "" {
		t.Fatalf("a proof without a nonce: %d %v nonce %q, want 400 use_dpop_nonce with DPoP-Nonce", r.status, r.body, nonce)
	}
	p, err := dpop.MakeProof(key, jose.ES256, dpop.ProofClaims{Method: http.MethodPost, URL: tokenURL, Nonce: nonce})
	if err != nil {
		t.Fatal(err)
	}
	if r := dpopDo(t, other.srv.URL, http.MethodPost, provider.TokenPath, form, "svc", secret, "", p); r.status != http.StatusOK || r.str("token_type") != "DPoP" {
		t.Fatalf("a proof with the nonce at another replica: %d %v", r.status, r.body)
	}
	p, _ = dpop.MakeProof(key, jose.ES256, dpop.ProofClaims{Method: http.MethodPost, URL: tokenURL, Nonce: "made-up"})
	if r := dpopDo(t, s.srv.URL, http.MethodPost, provider.TokenPath, form, "svc", secret, "", p); r.status != http.StatusBadRequest || r.str("error") != dpop.ErrUseNonce {
		t.Fatalf("a made-up nonce: %d %v, want use_dpop_nonce", r.status, r.body)
	}
}

// openid-client v6 (nobody here wrote it), unmodified, as a public client
// with DPoP: its code exchange, userinfo calls and refresh carry proofs by
// its own key; the tokens it got are then refused without that key.
func TestI34DPoPWithOpenIDClient(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.user("ivy")
	port := freeLoopbackPort(t)
	rp := startOpenIDClient(t, s.issuer, port, "--client-id", "node-spa", "--auth", "none", "--dpop", "yes", "--scope", "openid profile offline_access")
	s.client(clients.Spec{ID: "node-spa", Public: true, FirstParty: true, RedirectURIs: []string{rp.RedirectURI},
		Scopes: []string{"openid", "profile", "offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"}})
	browser := s.browser()
	p := get(t, browser, rp.AuthURL)
	p = submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"username": "ivy", "password": e2ePassword})
	if p.location == nil || !strings.HasPrefix(p.location.String(), rp.RedirectURI) {
		t.Fatalf("no redirect to the RP: %d %v", p.status, p.location)
	}
	get(t, http.DefaultClient, p.location.String())
	out := rp.next()
	// openid-client reports token_type in lower case.
	if tt, rt := fmt.Sprint(out["token_type"]), fmt.Sprint(out["refreshed_token_type"]); out["ok"] != true || !strings.EqualFold(tt, "DPoP") || !strings.EqualFold(rt, "DPoP") {
		t.Fatalf("openid-client with DPoP: %v", out)
	}
	if ui, _ := out["refreshed_userinfo"].(map[string]any); ui["preferred_username"] != "ivy" {
		t.Fatalf("userinfo after the refresh: %v", out["refreshed_userinfo"])
	}
	access, _ := out["dpop_access_token"].(string)
	refresh, _ := out["dpop_refresh_token"].(string)
	if tokenCnf(t, access) == "" {
		t.Fatalf("openid-client's access token has no cnf.jkt")
	}
	// Stolen from the app: the access token as a bearer token, the
	// refresh token without the app's key.
	if r := dpopDo(t, s.issuer, http.MethodGet, provider.UserinfoPath, nil, "", "", "Bearer "+access); r.status != http.StatusUnauthorized ||
		!strings.HasPrefix(r.header.Get("WWW-Authenticate"), "DPoP ") {
		t.Fatalf("the stolen access token at userinfo: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	thief := newDPoPKey(t)
	r := dpopDo(t, s.issuer, http.MethodPost, provider.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {"node-spa"}},
		"", "", "", proofFor(t, thief, http.MethodPost, s.issuer+provider.TokenPath, ""))
	if r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Fatalf("the stolen refresh token with another key: %d %v, want invalid_grant", r.status, r.body)
	}
}
