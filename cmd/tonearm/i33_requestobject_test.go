package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clientkeys/clientkeystest"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

// Signed request objects (RFC 9101, OpenID Connect Core §6), driven as a
// client would: objects signed with go-jose v4, sent by value, by a
// registered request_uri, and pushed.

// newObjectSigners makes an RS256, an ES256 and an EdDSA key for a
// client, and the JWK Set of their public halves to register.
func newObjectSigners(t *testing.T, prefix string) (map[jose.SignatureAlgorithm]clientkeystest.Key, string) {
	t.Helper()
	signers := map[jose.SignatureAlgorithm]clientkeystest.Key{}
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA} {
		signers[alg] = clientkeystest.NewKey(t, alg, prefix+"-"+strings.ToLower(string(alg)))
	}
	return signers, clientkeystest.JWKS(t, signers[jose.RS256], signers[jose.ES256], signers[jose.EdDSA])
}

// signObject signs claims with k as a request object of type typ (RFC 9101
// §4 recommends oauth-authz-req+jwt; SignClaims makes plain JWTs).
func signObject(t *testing.T, k clientkeystest.Key, typ string, claims map[string]any) string {
	t.Helper()
	payload, _ := json.Marshal(claims)
	return k.SignTyped(t, typ, payload)
}

const requestObjectType = "oauth-authz-req+jwt"

// unsignedObject is an object with alg none (OpenID Connect Core §6.1).
func unsignedObject(claims map[string]any) string {
	payload, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
}

// objectClaims is a complete authorization request for clientID as a
// request object, with iss, aud, exp and a fresh jti.
func (s *server) objectClaims(t *testing.T, clientID, verifier string) map[string]any {
	return map[string]any{
		"iss": clientID, "aud": s.issuer, "exp": time.Now().Add(5 * time.Minute).Unix(), "jti": random(t),
		"client_id": clientID, "response_type": "code", "redirect_uri": redirectURI, "scope": "openid profile",
		"state": "object-state-" + random(t), "nonce": "object-nonce-" + random(t),
		"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256",
	}
}

// objectURL is the authorization URL carrying the request object by value
// (or, with name request_uri, by reference) beside client_id and extra.
func (s *server) objectURL(clientID, name, value string, extra url.Values) string {
	q := url.Values{"client_id": {clientID}, name: {value}}
	for k, v := range extra {
		q[k] = v
	}
	return s.issuer + provider.AuthorizePath + "?" + q.Encode()
}

// idTokenClaim reads one claim of an ID token (already verified by the
// flow that issued it: only its content matters here).
func idTokenClaim(t *testing.T, reply tokenReply, name string) any {
	t.Helper()
	raw, _ := reply.body["id_token"].(string)
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("no ID token: %d %v", reply.status, reply.body)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	return claims[name]
}

const otherRedirect = "http://127.0.0.1:1/other"

// A client signs its authorization request with RS256, ES256 or EdDSA, sends
// it by value, by a registered request_uri (fragment aside) or through PAR,
// and gets its code; the object's parameters are the only ones that count
// (RFC 9101 §5). An unsigned object works for a client registered for it.
func TestRequestObjectsSigned(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("rose")
		signers, jwks := newObjectSigners(t, "ro")
		objects := httptest.NewServer(nil)
		t.Cleanup(objects.Close)
		_, secret := s.client(clients.Spec{ID: "ro", FirstParty: true, Scopes: []string{"openid", "profile"}, RedirectURIs: []string{redirectURI, otherRedirect},
			Keys: clients.Keys{JWKS: jwks, RequestURIs: []string{objects.URL + "/ro.jwt"}}})
		s.client(clients.Spec{ID: "plain", FirstParty: true, Scopes: []string{"openid", "profile"}, Keys: clients.Keys{RequestObjectSigningAlg: "none"}})

		disc := get(t, http.DefaultClient, s.issuer+provider.DiscoveryPath)
		for _, want := range []string{`"request_parameter_supported":true`, `"request_uri_parameter_supported":true`, `"require_request_uri_registration":true`,
			`"request_object_signing_alg_values_supported":["RS256","PS256","ES256","EdDSA","Ed25519","none"]`} {
			if !strings.Contains(disc.body, want) {
				t.Errorf("discovery lacks %s: %s", want, disc.body)
			}
		}

		browser := s.browser()
		// By value, RS256; the query says otherwise on every point: the
		// object wins (redirect_uri, state, scope, nonce).
		verifier := oauth2.GenerateVerifier()
		claims := s.objectClaims(t, "ro", verifier)
		query := url.Values{"response_type": {"code"}, "redirect_uri": {otherRedirect}, "scope": {"openid"}, "state": {"query-state"}, "nonce": {"query-nonce-long"}}
		back := s.authorize(browser, s.objectURL("ro", "request", signObject(t, signers[jose.RS256], requestObjectType, claims), query), "rose", false)
		if back.Path != "/callback" || back.Query().Get("state") != claims["state"] || back.Query().Get("iss") != s.issuer {
			t.Fatalf("RS256 by value came back to %v", back)
		}
		reply := s.exchange("ro", secret, back.Query().Get("code"), verifier)
		if reply.status != http.StatusOK || idTokenClaim(t, reply, "nonce") != claims["nonce"] || !strings.Contains(reply.body["scope"].(string), "profile") {
			t.Fatalf("RS256 code: %d %v", reply.status, reply.body)
		}

		// ES256 and EdDSA by value, without any query parameter but client_id.
		for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA} {
			verifier := oauth2.GenerateVerifier()
			claims := s.objectClaims(t, "ro", verifier)
			back := s.authorize(browser, s.objectURL("ro", "request", signers[alg].SignClaims(t, claims), nil), "", false)
			if back.Query().Get("state") != claims["state"] || back.Query().Get("code") == "" {
				t.Fatalf("%s by value came back to %v", alg, back)
			}
			if reply := s.exchange("ro", secret, back.Query().Get("code"), verifier); reply.status != http.StatusOK || idTokenClaim(t, reply, "nonce") != claims["nonce"] {
				t.Fatalf("%s code: %d %v", alg, reply.status, reply.body)
			}
		}

		// By reference: a registered request_uri, served by the client; the
		// fragment (a hash of the content) is not part of the match.
		claims = s.objectClaims(t, "ro", oauth2.GenerateVerifier())
		served := signers[jose.ES256].SignClaims(t, claims)
		objects.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/oauth-authz-req+jwt")
			_, _ = w.Write([]byte(served))
		})
		back = s.authorize(browser, s.objectURL("ro", "request_uri", objects.URL+"/ro.jwt#sha256-of-it", nil), "", false)
		if back.Query().Get("state") != claims["state"] || back.Query().Get("code") == "" {
			t.Fatalf("request_uri came back to %v", back)
		}

		// Pushed (RFC 9126 §3): verified at push time, and what is stored is
		// the object's parameters.
		claims = s.objectClaims(t, "ro", oauth2.GenerateVerifier())
		status, body := s.push(t, "ro", secret, url.Values{"client_id": {"ro"}, "request": {signObject(t, signers[jose.EdDSA], requestObjectType, claims)}, "state": {"pushed-query-state"}})
		uri, _ := body["request_uri"].(string)
		if status != http.StatusCreated || uri == "" {
			t.Fatalf("push: %d %v", status, body)
		}
		back = s.authorize(browser, s.objectURL("ro", "request_uri", uri, nil), "", false)
		if back.Query().Get("state") != claims["state"] || back.Query().Get("code") == "" {
			t.Fatalf("pushed object came back to %v", back)
		}

		// Unsigned, from a client registered request_object_signing_alg none.
		claims = s.objectClaims(t, "plain", oauth2.GenerateVerifier())
		back = s.authorize(browser, s.objectURL("plain", "request", unsignedObject(claims), nil), "", false)
		if back.Query().Get("state") != claims["state"] || back.Query().Get("code") == "" {
			t.Fatalf("unsigned object came back to %v", back)
		}
	})
}

// Request objects that must not pass (RFC 9101 §6, §10): each is refused,
// to the client's redirect URI when the client and the redirect URI are
// verified (the object's once its signature holds, else the query's) with
// error and iss, else on the error page; nothing is issued.
func TestRequestObjectsRefused(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		signers, jwks := newObjectSigners(t, "ro")
		others, otherJWKS := newObjectSigners(t, "other")
		_, secret := s.client(clients.Spec{ID: "ro", FirstParty: true, Scopes: []string{"openid", "profile"}, RedirectURIs: []string{redirectURI, otherRedirect},
			Keys: clients.Keys{JWKS: jwks, RequestURIs: []string{"https://192.168.0.1/ro.jwt"}}})
		s.client(clients.Spec{ID: "other", FirstParty: true, Scopes: []string{"openid", "profile"}, Keys: clients.Keys{JWKS: otherJWKS}})
		rs := signers[jose.RS256]
		object := func(change map[string]any) map[string]any {
			claims := s.objectClaims(t, "ro", oauth2.GenerateVerifier())
			for k, v := range change {
				if v == nil {
					delete(claims, k)
				} else {
					claims[k] = v
				}
			}
			return claims
		}
		tampered := func() string {
			parts := strings.Split(rs.SignClaims(t, object(nil)), ".")
			evil, _ := json.Marshal(object(map[string]any{"redirect_uri": otherRedirect}))
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(evil) + "." + parts[2]
		}
		// The query names a registered redirect URI and a state of its own:
		// where an unverified object's refusal goes.
		query := url.Values{"redirect_uri": {redirectURI}, "state": {"query-state"}}
		replayed := object(nil)
		if p := get(t, s.browser(), s.objectURL("ro", "request", rs.SignClaims(t, replayed), nil)); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("first use: %d %v", p.status, p.location)
		}
		expired := object(map[string]any{"exp": time.Now().Add(-5 * time.Minute).Unix()})
		for name, c := range map[string]struct {
			q         url.Values
			want      string
			state     any // the state the refusal carries: the object's once verified
			errorPage bool
		}{
			"tampered":                      {s.objectParams("request", tampered(), query), "invalid_request_object", "query-state", false},
			"tampered, no query redirect":   {s.objectParams("request", tampered(), nil), "invalid_request_object", nil, true},
			"replayed jti":                  {s.objectParams("request", rs.SignClaims(t, replayed), query), "invalid_request_object", replayed["state"], false},
			"another client's key":          {s.objectParams("request", others[jose.RS256].SignClaims(t, object(nil)), query), "invalid_request_object", "query-state", false},
			"another client's object":       {s.objectParams("request", others[jose.ES256].SignClaims(t, object(map[string]any{"client_id": "other", "iss": "other"})), query), "invalid_request_object", "query-state", false},
			"client_id not the query's":     {s.objectParams("request", rs.SignClaims(t, object(map[string]any{"client_id": "other"})), query), "invalid_request_object", "query-state", false},
			"iss not the client":            {s.objectParams("request", rs.SignClaims(t, object(map[string]any{"iss": "other"})), query), "invalid_request_object", nil, false},
			"alg none, not registered":      {s.objectParams("request", unsignedObject(object(nil)), query), "invalid_request_object", "query-state", false},
			"expired":                       {s.objectParams("request", rs.SignClaims(t, expired), query), "invalid_request_object", expired["state"], false},
			"exp too far ahead":             {s.objectParams("request", rs.SignClaims(t, object(map[string]any{"exp": time.Now().Add(24 * time.Hour).Unix()})), query), "invalid_request_object", nil, false},
			"wrong aud":                     {s.objectParams("request", rs.SignClaims(t, object(map[string]any{"aud": "https://elsewhere.example"})), query), "invalid_request_object", nil, false},
			"request inside":                {s.objectParams("request", rs.SignClaims(t, object(map[string]any{"request": "x.y.z"})), query), "invalid_request_object", nil, false},
			"typ of another JWT":            {s.objectParams("request", signObject(t, rs, "at+jwt", object(nil)), query), "invalid_request_object", "query-state", false},
			"not a JWT":                     {s.objectParams("request", "x.y.z", query), "invalid_request_object", "query-state", false},
			"request_uri not registered":    {s.objectParams("request_uri", "https://app.example/ro.jwt", query), "invalid_request_uri", "query-state", false},
			"request_uri the fetcher stops": {s.objectParams("request_uri", "https://192.168.0.1/ro.jwt", query), "invalid_request_uri", "query-state", false},
			"request and request_uri":       {withParam(s.objectParams("request", rs.SignClaims(t, object(nil)), query), "request_uri", "https://192.168.0.1/ro.jwt"), "invalid_request", "query-state", false},
		} {
			p := get(t, s.browser(), s.issuer+provider.AuthorizePath+"?"+c.q.Encode())
			if c.errorPage {
				if p.status != http.StatusBadRequest || p.location != nil || !strings.Contains(p.body, "could not be verified") || strings.Contains(p.body, "OAuth 2.0 Client") {
					t.Errorf("%s: %d %v, want the error page\n%s", name, p.status, p.location, p.body)
				}
				continue
			}
			got := p.location
			if got == nil || got.Path != "/callback" || got.Query().Get("error") != c.want || got.Query().Get("iss") != s.issuer || got.Query().Get("code") != "" {
				t.Errorf("%s: %d %v, want %s at the callback\n%s", name, p.status, got, c.want, p.body)
				continue
			}
			if c.state != nil && got.Query().Get("state") != c.state {
				t.Errorf("%s: state %q, want %q", name, got.Query().Get("state"), c.state)
			}
		}

		// A client registered for one algorithm (or for none) is held to it
		// (OpenID Connect Registration, request_object_signing_alg).
		s.client(clients.Spec{ID: "es-only", FirstParty: true, Scopes: []string{"openid", "profile"}, Keys: clients.Keys{JWKS: jwks, RequestObjectSigningAlg: "ES256"}})
		s.client(clients.Spec{ID: "unsigned", FirstParty: true, Scopes: []string{"openid", "profile"}, Keys: clients.Keys{JWKS: jwks, RequestObjectSigningAlg: "none"}})
		for _, c := range []struct{ client, object string }{
			{"es-only", rs.SignClaims(t, s.objectClaims(t, "es-only", oauth2.GenerateVerifier()))},
			{"unsigned", signers[jose.ES256].SignClaims(t, s.objectClaims(t, "unsigned", oauth2.GenerateVerifier()))},
		} {
			p := get(t, s.browser(), s.objectURL(c.client, "request", c.object, query))
			if p.location == nil || p.location.Query().Get("error") != "invalid_request_object" {
				t.Errorf("%s: %d %v, want invalid_request_object", c.client, p.status, p.location)
			}
		}
		if p := get(t, s.browser(), s.objectURL("es-only", "request", signers[jose.ES256].SignClaims(t, s.objectClaims(t, "es-only", oauth2.GenerateVerifier())), nil)); p.status != http.StatusOK {
			t.Errorf("es-only with ES256: %d %v", p.status, p.location)
		}

		// An unknown client: nowhere to send it but the page.
		if p := get(t, s.browser(), s.objectURL("nobody", "request", rs.SignClaims(t, object(nil)), query)); p.status != http.StatusBadRequest || p.location != nil {
			t.Errorf("unknown client: %d %v", p.status, p.location)
		}

		// Pushed: a tampered or replayed object is refused at push time
		// (RFC 9126 §2.3), and nothing is stored.
		pushedTwice := rs.SignClaims(t, object(nil))
		if status, body := s.push(t, "ro", secret, url.Values{"client_id": {"ro"}, "request": {pushedTwice}}); status != http.StatusCreated {
			t.Fatalf("first push: %d %v", status, body)
		}
		for name, obj := range map[string]string{"tampered": tampered(), "replayed": pushedTwice, "another client's": others[jose.RS256].SignClaims(t, object(nil))} {
			status, body := s.push(t, "ro", secret, url.Values{"client_id": {"ro"}, "request": {obj}})
			if status != http.StatusBadRequest || body["error"] != "invalid_request_object" || body["request_uri"] != nil {
				t.Errorf("push of a %s object: %d %v", name, status, body)
			}
		}
		// Not authenticated: refused, and the object is not spent.
		fresh := rs.SignClaims(t, object(nil))
		if status, _ := s.push(t, "ro", "not-the-secret-at-all-not-at-all", url.Values{"client_id": {"ro"}, "request": {fresh}}); status != http.StatusUnauthorized {
			t.Errorf("unauthenticated push: %d", status)
		}
		if status, body := s.push(t, "ro", secret, url.Values{"client_id": {"ro"}, "request": {fresh}}); status != http.StatusCreated {
			t.Errorf("the same object from its client: %d %v", status, body)
		}
	})
}

// objectParams is the authorization query carrying a request object.
func (s *server) objectParams(name, value string, extra url.Values) url.Values {
	q := url.Values{"client_id": {"ro"}, name: {value}}
	for k, v := range extra {
		q[k] = v
	}
	return q
}

func withParam(q url.Values, k, v string) url.Values {
	q = cloneValues(q)
	q.Set(k, v)
	return q
}

// An unmodified openid-client (v6) relying party sends its authorization
// request as a request object (buildAuthorizationUrlWithJAR: client_id and
// request alone in the URL), signed with each algorithm tonearm accepts;
// it signs in, redeems the code and checks the ID token.
func TestI33OpenIDClientRequestObject(t *testing.T) {
	t.Parallel()
	openidClient(t) // skip (or fail under CI) before anything else
	s := startE2E(t, sqliteURL(t), options{})
	u := s.user("jar-person")
	signers, jwks := newObjectSigners(t, "node")
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA} {
		signer := signers[alg]
		der, err := x509.MarshalPKCS8PrivateKey(signer.Private)
		if err != nil {
			t.Fatal(err)
		}
		keyFile := filepath.Join(t.TempDir(), "key.pem")
		if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		port := freeLoopbackPort(t)
		id := "node-jar-" + strings.ToLower(string(alg))
		_, secret := s.client(clients.Spec{ID: id, FirstParty: true, RedirectURIs: []string{"http://127.0.0.1:" + strconv.Itoa(port) + "/callback"},
			Scopes: []string{"openid", "profile"}, Keys: clients.Keys{JWKS: jwks}})
		rp := startOpenIDClient(t, s.issuer, port, "--client-id", id, "--secret", secret, "--request", "jar",
			"--key", keyFile, "--kid", signer.KID, "--alg", string(alg))
		if q, err := url.Parse(rp.AuthURL); err != nil || q.Query().Get("request") == "" || q.Query().Has("scope") {
			t.Fatalf("%s: openid-client's URL is not a request object: %s", alg, rp.AuthURL)
		}
		o := s.signInThroughOpenIDClient(t, rp, "jar-person", false)
		if !o.OK || !o.IDToken || o.Claims["sub"] != u.ID || o.Userinfo["preferred_username"] != "jar-person" {
			t.Fatalf("%s: %+v", alg, o)
		}
	}
}

// A private_key_jwt client pushes its request object with an assertion
// and no client_id (RFC 9126 §3 with RFC 7523): the object must verify with
// the keys of the client that authenticates, and name it.
func TestRequestObjectsPushedWithAnAssertion(t *testing.T) {
	t.Parallel()
	s := startE2E(t, sqliteURL(t), options{})
	signers, jwks := newObjectSigners(t, "pk")
	others, otherJWKS := newObjectSigners(t, "pk-other")
	for id, keys := range map[string]string{"pk-ro": jwks, "pk-other": otherJWKS} {
		spec := pkSpec(id, clients.Keys{JWKS: keys})
		spec.RedirectURIs, spec.FirstParty = []string{redirectURI}, true
		s.client(spec)
	}
	object := signObject(t, signers[jose.ES256], requestObjectType, s.objectClaims(t, "pk-ro", oauth2.GenerateVerifier()))
	push := func(k clientkeystest.Key, client string) (int, map[string]any) {
		assertion := k.SignClaims(t, assertionClaims(client, s.issuer+provider.PARPath))
		status, body, _ := s.formPostHeader(t, provider.PARPath, assertionForm(assertion, url.Values{"request": {object}}), nil)
		return status, body
	}
	// Another client's assertion beside pk-ro's object: refused, unspent.
	if status, body := push(others[jose.RS256], "pk-other"); status != http.StatusBadRequest || body["error"] != "invalid_request_object" {
		t.Fatalf("pk-ro's object pushed by pk-other: %d %v", status, body)
	}
	status, body := push(signers[jose.RS256], "pk-ro")
	uri, _ := body["request_uri"].(string)
	if status != http.StatusCreated || uri == "" {
		t.Fatalf("push with an assertion: %d %v", status, body)
	}
	if p := get(t, s.browser(), s.objectURL("pk-ro", "request_uri", uri, nil)); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("opening the pushed object: %d %v", p.status, p.location)
	}
}
