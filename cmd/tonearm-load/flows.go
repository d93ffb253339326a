package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tonearm-idp/tonearm/provider/dpop"
)

// The paths a person waits on: the authorization code flow of a signed-in
// browser (authorize → code → token exchange with PKCE, counted only when
// the ID token verifies), refresh-token rotation, and userinfo. Each worker
// is its own browser: it signs in once (startSession, the same session the
// login page opens) and, for refresh and userinfo, gets its first tokens
// through the code flow of a first-party client.

// flowConfig is what the user-facing targets need.
type flowConfig struct {
	issuer, client, secret, username, password, redirectURI string
	// users > 0: worker i signs in as prefix+%07d of (i mod users)+1, the
	// names tonearm-load seed gives; a server sees many people, not one.
	users  int
	prefix string
	// dpop: every token request carries a fresh DPoP proof (RFC 9449) of
	// the worker's own key, and userinfo presents the bound token with one.
	dpop bool
	hc   *http.Client
	jwks jose.JSONWebKeySet
}

// usernameOf is the user worker i signs in as.
func (c *flowConfig) usernameOf(i int) string {
	if c.users > 0 {
		return fmt.Sprintf("%s%07d", c.prefix, i%c.users+1)
	}
	return c.username
}

// worker is one signed-in browser.
type worker struct {
	cfg     *flowConfig
	browser *http.Client
	refresh string // the newest refresh token of its rotation chain
	access  string
	key     *ecdsa.PrivateKey // with -dpop: the key its tokens are bound to
}

// newDPoPKey is a worker's proof key: ES256, one per worker, as one client
// instance would hold (a public client's refresh token needs the same key).
func newDPoPKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err) // crypto/rand failing is not a load-test condition
	}
	return k
}

// proof is a fresh DPoP proof of key for method and url; ath binds it to
// an access token when presenting one at a resource (RFC 9449 §4.2).
func proof(key *ecdsa.PrivateKey, method, url, accessToken string) (string, error) {
	return dpop.MakeProof(key, jose.ES256, dpop.ProofClaims{Method: method, URL: url, AccessToken: accessToken})
}

// isDPoP: token_type is compared case-insensitively (RFC 6749 §5.1).
func isDPoP(tokenType string) bool { return strings.EqualFold(tokenType, "DPoP") }

func random32() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func newFlowConfig(hc *http.Client, fc flowConfig) (*flowConfig, error) {
	if fc.client == "" || fc.username == "" && fc.users <= 0 || fc.password == "" || fc.redirectURI == "" {
		return nil, errors.New("-client, -username (or -users), -password and -redirect-uri are required (a first-party client with that redirect URI, and users)")
	}
	c := &fc
	c.issuer, c.hc = strings.TrimRight(fc.issuer, "/"), hc
	resp, err := hc.Get(c.issuer + "/.well-known/jwks.json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&c.jwks); err != nil {
		return nil, fmt.Errorf("reading the JWKS: %w", err)
	}
	return c, nil
}

// newWorker signs a new browser in, as the i-th worker's user.
func (c *flowConfig) newWorker(i int) (*worker, error) {
	username := c.usernameOf(i)
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Transport: c.hc.Transport, Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	body, _ := json.Marshal(map[string]string{"username": username, "password": c.password})
	req, _ := http.NewRequest(http.MethodPost, c.issuer+"/api/User/startSession", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("signing in as %s: HTTP %d", username, resp.StatusCode)
	}
	w := &worker{cfg: c, browser: b}
	if c.dpop {
		w.key = newDPoPKey()
	}
	return w, nil
}

// codeFlow runs authorize → code → token and verifies the ID token.
func (w *worker) codeFlow(scope string) error {
	c := w.cfg
	verifier, state, nonce := random32(), random32(), random32()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {c.client}, "redirect_uri": {c.redirectURI}, "response_type": {"code"}, "scope": {scope},
		"state": {state}, "nonce": {nonce}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	resp, err := w.browser.Get(c.issuer + "/oauth2/authorize?" + q.Encode())
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		return fmt.Errorf("authorize: HTTP %d (is the client first-party, and the user signed in?)", resp.StatusCode)
	}
	code := loc.Query().Get("code")
	if code == "" || loc.Query().Get("state") != state {
		return fmt.Errorf("authorize: no code (%s)", loc.Query().Get("error"))
	}
	tok, err := w.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.redirectURI}, "code_verifier": {verifier}})
	if err != nil {
		return err
	}
	if err := c.verifyIDToken(tok.IDToken, nonce); err != nil {
		return err
	}
	w.access, w.refresh = tok.AccessToken, tok.RefreshToken
	return nil
}

type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	TokenType    string `json:"token_type"`
}

func (w *worker) token(form url.Values) (tokenAnswer, error) {
	c := w.cfg
	if c.secret == "" {
		// A public client names itself in the body (RFC 6749 §3.2.1); the
		// body is complete before the request takes its length from it.
		form.Set("client_id", c.client)
	}
	req, _ := http.NewRequest(http.MethodPost, c.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.secret != "" {
		req.SetBasicAuth(url.QueryEscape(c.client), url.QueryEscape(c.secret))
	}
	if w.key != nil {
		p, err := proof(w.key, http.MethodPost, c.issuer+"/oauth2/token", "")
		if err != nil {
			return tokenAnswer{}, err
		}
		req.Header.Set(dpop.HeaderName, p)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return tokenAnswer{}, err
	}
	defer resp.Body.Close()
	var t tokenAnswer
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return t, fmt.Errorf("token: HTTP %d %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil || t.AccessToken == "" {
		return t, errors.New("token: no access token")
	}
	if w.key != nil && !isDPoP(t.TokenType) {
		return t, fmt.Errorf("token: token_type %q, not DPoP", t.TokenType)
	}
	return t, nil
}

// verifyIDToken checks an ID token as a relying party would: signature by
// a published key, iss, aud, exp, nonce.
func (c *flowConfig) verifyIDToken(raw, nonce string) error {
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil || len(jws.Signatures) != 1 {
		return errors.New("ID token: not a JWS")
	}
	keys := c.jwks.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) == 0 {
		return errors.New("ID token: unknown kid")
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return errors.New("ID token: bad signature")
	}
	var claims struct {
		Iss   string   `json:"iss"`
		Aud   audience `json:"aud"`
		Exp   int64    `json:"exp"`
		Nonce string   `json:"nonce"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return err
	}
	if claims.Iss != c.issuer || !slices.Contains(claims.Aud, c.client) || claims.Exp < time.Now().Unix() || (nonce != "" && claims.Nonce != nonce) {
		return errors.New("ID token: iss, aud, exp or nonce wrong")
	}
	return nil
}

// audience reads aud as a string or a list.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = []string{one}
		return nil
	}
	var many []string
	err := json.Unmarshal(b, &many)
	*a = many
	return err
}

// step is one request (or flow) of a worker, counted as one success.
func (w *worker) step(kind string) error {
	switch kind {
	case "code":
		return w.codeFlow("openid")
	case "refresh":
		tok, err := w.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {w.refresh}})
		if err != nil {
			return err
		}
		if tok.RefreshToken == "" {
			return errors.New("refresh: no new refresh token")
		}
		w.refresh, w.access = tok.RefreshToken, tok.AccessToken
		return nil
	case "userinfo":
		req, _ := http.NewRequest(http.MethodGet, w.cfg.issuer+"/oauth2/userinfo", nil)
		if w.key != nil {
			p, err := proof(w.key, http.MethodGet, w.cfg.issuer+"/oauth2/userinfo", w.access)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "DPoP "+w.access)
			req.Header.Set(dpop.HeaderName, p)
		} else {
			req.Header.Set("Authorization", "Bearer "+w.access)
		}
		resp, err := w.cfg.hc.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"sub":`) {
			return fmt.Errorf("userinfo: HTTP %d", resp.StatusCode)
		}
		return nil
	}
	return fmt.Errorf("unknown flow %q", kind)
}

// loadFlows runs conc signed-in workers doing kind for dur; m measures CPU
// over that window only (signing in is outside it).
func loadFlows(ctx context.Context, c *flowConfig, kind string, conc int, dur time.Duration, m *cpuMeter) (result, error) {
	workers := make([]*worker, conc)
	for i := range workers {
		w, err := c.newWorker(i)
		if err != nil {
			return result{}, err
		}
		if kind != "code" {
			if err := w.codeFlow("openid offline_access"); err != nil {
				return result{}, fmt.Errorf("first tokens: %w", err)
			}
			if kind == "refresh" && w.refresh == "" {
				return result{}, errors.New("no refresh token: register the client with the refresh grant and offline_access")
			}
		}
		workers[i] = w
	}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, conc)
	m.begin()
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		go func(i int, w *worker) {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				s := time.Now()
				err := w.step(kind)
				lat[i] = append(lat[i], time.Since(s))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					if kind == "refresh" { // the chain is broken: start a new one
						_ = w.codeFlow("openid offline_access")
					}
					continue
				}
				ok.Add(1)
			}
		}(i, w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	m.end()
	return collect(ok.Load(), failed.Load(), lat, elapsed, &firstErr), nil
}
