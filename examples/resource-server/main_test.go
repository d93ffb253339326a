package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tonearm-idp/tonearm/provider/totp"
)

const (
	listensID = "https://api.example.org/listens"
	otherID   = "https://api.example.org/other"
)

// tonearm is a real tonearm binary serving on loopback.
type tonearm struct {
	t      *testing.T
	bin    string
	env    []string
	issuer string
	// dpop, when set, binds the tokens userToken gets to this key (RFC 9449 §5).
	dpop *proofKey
}

func (ta *tonearm) run(stdin string, args ...string) string {
	ta.t.Helper()
	cmd := exec.Command(ta.bin, args...)
	cmd.Env = ta.env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		ta.t.Fatalf("tonearm %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

func (ta *tonearm) secret(args ...string) string {
	ta.t.Helper()
	var c struct {
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(ta.run("", append(args, "--json")...)), &c); err != nil {
		ta.t.Fatal(err)
	}
	return c.Secret
}

// startTonearm builds tonearm from this module, registers the APIs and
// clients the tests use (and whatever setup registers), and serves it.
func startTonearm(t *testing.T, setup ...func(*tonearm)) *tonearm {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "tonearm")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tonearm")
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building tonearm: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ta := &tonearm{t: t, bin: bin, issuer: "http://" + addr, env: append(os.Environ(),
		"TONEARM_DATABASE_URL=sqlite://"+filepath.Join(dir, "tonearm.db"), "TONEARM_ISSUER=http://"+addr, "TONEARM_LISTEN="+addr)}
	ta.run("", "apis", "create", "--id", listensID, "--scope", "listens:read=Read your listens", "--scope", "listens:write=Submit listens")
	ta.run("", "apis", "create", "--id", otherID, "--scope", "other:read")
	for _, f := range setup {
		f(ta)
	}
	ctx, cancel := context.WithCancel(context.Background())
	serve := exec.CommandContext(ctx, bin, "serve")
	serve.Env = ta.env
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = serve.Wait() })
	for i := 0; ; i++ {
		resp, err := http.Get(ta.issuer + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i > 300 {
			t.Fatal("tonearm did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ta
}

func (ta *tonearm) clientCredentials(id, secret string, form url.Values) string {
	ta.t.Helper()
	form.Set("grant_type", "client_credentials")
	req, _ := http.NewRequest(http.MethodPost, ta.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	tok, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || tok == "" {
		ta.t.Fatalf("client credentials for %s: %d %v", id, resp.StatusCode, body)
	}
	return tok
}

// idToken signs lena in (startSession) and runs the code flow of a
// first-party client to get an ID token.
func (ta *tonearm) idToken() string {
	ta.t.Helper()
	ta.run("a-long-password-1\n", "users", "create", "--username", "lena", "--password-stdin")
	secret := ta.secret("clients", "create", "--id", "web", "--first-party", "--redirect-uri", "http://127.0.0.1:1/cb", "--scope", "openid")
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Post(ta.issuer+"/api/User/startSession", "application/json", strings.NewReader(`{"username":"lena","password":"a-long-password-1"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		ta.t.Fatalf("startSession: %v %v", err, resp)
	}
	resp.Body.Close()
	verifier := "a-verifier-that-is-long-enough-for-pkce-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {"web"}, "redirect_uri": {"http://127.0.0.1:1/cb"}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"state-12345678"}, "nonce": {"nonce-12345678"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	resp, err = browser.Get(ta.issuer + "/oauth2/authorize?" + q.Encode())
	if err != nil {
		ta.t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://127.0.0.1:1/cb"}, "code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, ta.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("web", secret)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	id, _ := body["id_token"].(string)
	if id == "" {
		ta.t.Fatalf("code exchange: %d %v", resp.StatusCode, body)
	}
	return id
}

func segment(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestResourceServerAgainstTonearm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs tonearm")
	}
	ta := startTonearm(t)
	reader := ta.secret("clients", "create", "--id", "reader", "--grant-type", "client_credentials", "--scope", "listens:read other:read")
	writer := ta.secret("clients", "create", "--id", "writer", "--grant-type", "client_credentials", "--scope", "listens:write")
	good := ta.clientCredentials("reader", reader, url.Values{"scope": {"listens:read"}})
	parts := strings.Split(good, ".")
	var header map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(parts[0])
	_ = json.Unmarshal(b, &header)

	// Forgeries: another key (unknown kid, and our kid), alg none, HS256
	// keyed with the public JWKS.
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sign := func(kid string) string {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: attacker}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		obj, _ := s.Sign(raw)
		out, _ := obj.CompactSerialize()
		return out
	}
	resp, err := http.Get(ta.issuer + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jwks}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", header["kid"]))
	rawPayload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	hsObj, _ := hs.Sign(rawPayload)
	hsToken, _ := hsObj.CompactSerialize()

	v := &Verifier{Issuer: ta.issuer, Audience: listensID}
	rs := httptest.NewServer(Handler(v, nil))
	defer rs.Close()
	later := &Verifier{Issuer: ta.issuer, Audience: listensID, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }}
	expired := httptest.NewServer(Handler(later, nil))
	defer expired.Close()

	for _, c := range []struct {
		name   string
		server *httptest.Server
		token  string
		want   int
	}{
		{"a token for it", rs, good, http.StatusOK},
		{"no token", rs, "", http.StatusUnauthorized},
		{"a token for another API", rs, ta.clientCredentials("reader", reader, url.Values{"scope": {"other:read"}}), http.StatusUnauthorized},
		{"a token without the scope", rs, ta.clientCredentials("writer", writer, url.Values{"scope": {"listens:write"}}), http.StatusForbidden},
		{"an expired token", expired, good, http.StatusUnauthorized},
		{"an ID token", rs, ta.idToken(), http.StatusUnauthorized},
		{"a key not in the JWKS", rs, sign("not-a-kid"), http.StatusUnauthorized},
		{"another key under our kid", rs, sign(header["kid"].(string)), http.StatusUnauthorized},
		{"alg none", rs, segment(map[string]any{"alg": "none", "typ": "at+jwt", "kid": header["kid"]}) + "." + parts[1] + ".", http.StatusUnauthorized},
		{"HS256 keyed with the JWKS", rs, hsToken, http.StatusUnauthorized},
		{"a payload spliced under a real signature", rs, parts[0] + "." + segment(map[string]any{"iss": ta.issuer, "aud": listensID, "sub": "x", "scope": Scope, "exp": time.Now().Add(time.Hour).Unix()}) + "." + parts[2], http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(http.MethodGet, c.server.URL+"/listens", nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, resp.StatusCode, body, c.want)
		}
		if c.want == http.StatusOK && !strings.Contains(string(body), `"client":"reader"`) {
			t.Errorf("%s: body %s", c.name, body)
		}
		if c.want != http.StatusOK && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", c.name)
		}
		if c.name == "a token for another API" && (!strings.Contains(string(body), "not meant for this API") ||
			!strings.Contains(resp.Header.Get("WWW-Authenticate"), `error_description="`)) {
			t.Errorf("a token for another API is refused without saying why: %s / %s", body, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if len(v.keys.Keys) == 0 {
		t.Fatal("the JWKS was not cached")
	}
}

// field finds the value attribute of the input named name in page.
func field(t *testing.T, page, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %s in the page:\n%s", name, page)
	}
	return html.UnescapeString(m[1])
}

// userToken signs a new user in through tonearm's pages and the code flow
// of a first-party app asking for listens:read (and the extra scopes); with twoFactors the user
// first sets up an authenticator app on /account (reading totp_secret,
// as a person types it) and the app asks for acr_values=multi-factor,
// which the person answers with one of the recovery codes just shown.
func (ta *tonearm) userToken(username string, twoFactors bool, extra ...string) string {
	t := ta.t
	t.Helper()
	ta.run("a-long-password-1\n", "users", "create", "--username", username, "--password-stdin")
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), "http://127.0.0.1:1/") {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	read := func(resp *http.Response, err error) (string, *http.Response) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp
	}
	login, _ := read(browser.Get(ta.issuer + "/login"))
	read(browser.PostForm(ta.issuer+"/login", url.Values{"csrf_token": {field(t, login, "csrf_token")}, "tonearm_action": {"login"},
		"continue": {"/account"}, "username": {username}, "password": {"a-long-password-1"}}))
	var recovery string
	if twoFactors {
		account, _ := read(browser.Get(ta.issuer + "/account"))
		m := regexp.MustCompile(`id="totp_secret">([A-Z2-7]+)<`).FindStringSubmatch(account)
		if m == nil {
			t.Fatalf("no totp_secret on /account:\n%s", account)
		}
		secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(m[1])
		if err != nil {
			t.Fatal(err)
		}
		enrolled, _ := read(browser.PostForm(ta.issuer+"/account/totp/enrol", url.Values{"csrf_token": {field(t, account, "csrf_token")},
			"totp_enrolment": {field(t, account, "totp_enrolment")}, "totp_code": {totp.Code(secret, totp.Step(time.Now()))}}))
		codes := regexp.MustCompile(`<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>`).FindStringSubmatch(enrolled)
		if codes == nil {
			t.Fatalf("no recovery codes after enrolment:\n%s", enrolled)
		}
		recovery = codes[1]
	}
	client := "app-" + username
	scope := strings.Join(append([]string{"openid", "listens:read"}, extra...), " ")
	secret := ta.secret("clients", "create", "--id", client, "--first-party", "--redirect-uri", "http://127.0.0.1:1/cb", "--scope", scope)
	verifier := "a-verifier-that-is-long-enough-for-pkce-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {client}, "redirect_uri": {"http://127.0.0.1:1/cb"}, "response_type": {"code"}, "scope": {scope},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	if twoFactors {
		q.Set("acr_values", MultiFactor)
	}
	page, resp := read(browser.Get(ta.issuer + "/oauth2/authorize?" + q.Encode()))
	if twoFactors {
		action := regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindStringSubmatch(page)
		if action == nil || !strings.Contains(page, `name="recovery_code"`) {
			t.Fatalf("expected the second-factor step:\n%s", page)
		}
		_, resp = read(browser.PostForm(ta.issuer+html.UnescapeString(action[1]), url.Values{"csrf_token": {field(t, page, "csrf_token")},
			"tonearm_action": {"second_factor"}, "recovery_code": {recovery}}))
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {"http://127.0.0.1:1/cb"}, "code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, ta.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, secret)
	if ta.dpop != nil {
		req.Header.Set("DPoP", ta.dpop.proof(t, map[string]any{"jti": jti(), "htm": "POST", "htu": ta.issuer + "/oauth2/token", "iat": time.Now().Unix()}, nil))
	}
	body, resp := read(http.DefaultClient.Do(req))
	var tok map[string]any
	_ = json.Unmarshal([]byte(body), &tok)
	at, _ := tok["access_token"].(string)
	if resp.StatusCode != http.StatusOK || at == "" {
		t.Fatalf("code exchange for %s: %d %s (authorization answer %s)", username, resp.StatusCode, body, loc)
	}
	return at
}

// RFC 9470: DELETE /listens asks for a sign-in with two factors; a token
// from a one-factor sign-in gets the step-up challenge, and one from the
// step-up it names is accepted.
func TestStepUpChallenge(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs tonearm")
	}
	ta := startTonearm(t)
	rs := httptest.NewServer(Handler(&Verifier{Issuer: ta.issuer, Audience: listensID}, nil))
	defer rs.Close()
	del := func(token string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodDelete, rs.URL+"/listens", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	oneFactor := ta.userToken("uma", false)
	resp, _ := del(oneFactor)
	challenge := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(challenge, `error="insufficient_user_authentication"`) ||
		!strings.Contains(challenge, `acr_values="`+MultiFactor+`"`) || !strings.Contains(challenge, `max_age=600`) {
		t.Fatalf("one factor: %d %q", resp.StatusCode, challenge)
	}
	// RFC 9728: the challenge names the API's metadata, which names tonearm.
	if !strings.Contains(challenge, `resource_metadata="`+rs.URL+`/.well-known/oauth-protected-resource/listens"`) {
		t.Fatalf("no resource_metadata in %q", challenge)
	}
	resp, err := http.Get(rs.URL + "/.well-known/oauth-protected-resource/listens")
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if meta["resource"] != listensID || fmt.Sprint(meta["authorization_servers"]) != "["+ta.issuer+"]" || fmt.Sprint(meta["scopes_supported"]) != "["+Scope+"]" ||
		fmt.Sprint(meta["bearer_methods_supported"]) != "[header]" {
		t.Fatalf("protected resource metadata: %v", meta)
	}
	// The same token still reads (GET needs no second factor).
	req, _ := http.NewRequest(http.MethodGet, rs.URL+"/listens", nil)
	req.Header.Set("Authorization", "Bearer "+oneFactor)
	if r2, err := http.DefaultClient.Do(req); err != nil || r2.StatusCode != http.StatusOK {
		t.Fatalf("GET with one factor: %v %v", err, r2)
	}
	twoFactors := ta.userToken("vic", true)
	if resp, body := del(twoFactors); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"deleted"`) {
		t.Fatalf("two factors: %d %s %q", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
	}
}
