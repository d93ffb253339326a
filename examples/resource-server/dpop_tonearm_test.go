package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// dpopToken gets a client-credentials token bound to key: the token
// request carries a proof for POST to the token endpoint (RFC 9449 §5).
func (ta *tonearm) dpopToken(key proofKey, id, secret string, form url.Values) string {
	t := ta.t
	t.Helper()
	endpoint := ta.issuer + "/oauth2/token"
	form.Set("grant_type", "client_credentials")
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", key.proof(t, map[string]any{"jti": jti(), "htm": "POST", "htu": endpoint, "iat": time.Now().Unix()}, nil))
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	tok, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || tok == "" || !strings.EqualFold(body["token_type"].(string), "DPoP") {
		t.Fatalf("DPoP client credentials for %s: %d %v", id, resp.StatusCode, body)
	}
	return tok
}

// A DPoP-bound token from a real tonearm: accepted with its key's proof,
// refused to a thief (another key, or as a bearer token), and every proof
// hole is refused; a bearer token keeps working.
func TestDPoPAgainstTonearm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs tonearm")
	}
	ta := startTonearm(t)
	reader := ta.secret("clients", "create", "--id", "reader", "--grant-type", "client_credentials", "--scope", "listens:read")
	owner, thief := newProofKey(t), newProofKey(t)
	bound := ta.dpopToken(owner, "reader", reader, url.Values{"scope": {Scope}})
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(bound, ".")[1])
	var claims struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Cnf.JKT != owner.jkt(t) {
		t.Fatalf("cnf.jkt %q, want the key's thumbprint %q (%v)", claims.Cnf.JKT, owner.jkt(t), err)
	}
	bearer := ta.clientCredentials("reader", reader, url.Values{"scope": {Scope}})

	v := &Verifier{Issuer: ta.issuer, Audience: listensID}
	rs := httptest.NewUnstartedServer(Handler(v, nil))
	v.URL = "http://" + rs.Listener.Addr().String() // what clients name in htu
	rs.Start()
	defer rs.Close()
	proof := func(k proofKey, method, path, token string) string {
		return k.proof(t, map[string]any{"jti": jti(), "htm": method, "htu": rs.URL + path, "iat": time.Now().Unix(), "ath": ath(token)}, nil)
	}
	replayed := proof(owner, "GET", "/listens", bound)

	for _, c := range []struct {
		name, auth, proof string
		want              int
		challenge         string // in WWW-Authenticate
	}{
		{"the owner with a proof", "DPoP " + bound, replayed, http.StatusOK, ""},
		{"the same proof again", "DPoP " + bound, replayed, http.StatusUnauthorized, `DPoP realm="listens"`},
		{"a stolen token with the thief's key", "DPoP " + bound, proof(thief, "GET", "/listens", bound), http.StatusUnauthorized, `error="invalid_token"`},
		{"a stolen token without a proof", "DPoP " + bound, "", http.StatusUnauthorized, `error="invalid_dpop_proof"`},
		{"a DPoP-bound token as a bearer token", "Bearer " + bound, "", http.StatusUnauthorized, `DPoP realm="listens"`},
		{"a proof for another URL", "DPoP " + bound, proof(owner, "GET", "/other", bound), http.StatusUnauthorized, `error="invalid_dpop_proof"`},
		{"a proof for another method", "DPoP " + bound, proof(owner, "POST", "/listens", bound), http.StatusUnauthorized, `error="invalid_dpop_proof"`},
		{"a proof for another token", "DPoP " + bound, proof(owner, "GET", "/listens", bearer), http.StatusUnauthorized, `error="invalid_dpop_proof"`},
		{"a bearer token", "Bearer " + bearer, "", http.StatusOK, ""},
		{"a bearer token under DPoP", "DPoP " + bearer, proof(owner, "GET", "/listens", bearer), http.StatusUnauthorized, `error="invalid_token"`},
	} {
		req, _ := http.NewRequest(http.MethodGet, rs.URL+"/listens", nil)
		req.Header.Set("Authorization", c.auth)
		if c.proof != "" {
			req.Header.Set("DPoP", c.proof)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != c.want || !strings.Contains(got, c.challenge) {
			t.Errorf("%s: %d %q %s, want %d with %s", c.name, resp.StatusCode, got, body, c.want, c.challenge)
		}
		if c.name == "a DPoP-bound token as a bearer token" && !strings.Contains(got, `error="invalid_token"`) {
			t.Errorf("%s: %q", c.name, got)
		}
	}
}
