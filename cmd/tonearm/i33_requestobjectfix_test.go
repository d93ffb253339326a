package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider/clients"
)

// Found from outside (request objects): a parameter sent twice that says
// which client, object or reference is meant is refused (RFC 6749 §3.1),
// as are the other parameters of the request; an object without
// response_type takes the query's (OpenID Connect Core §6.1); and the
// error pages say what went wrong.
func TestI33RequestObjectsFoundFromOutside(t *testing.T) {
	t.Parallel()
	s := startE2E(t, sqliteURL(t), options{})
	s.user("rhea")
	signers, jwks := newObjectSigners(t, "fix")
	objects := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	t.Cleanup(objects.Close)
	s.client(clients.Spec{ID: "fix", FirstParty: true, Scopes: []string{"openid", "profile"}, RedirectURIs: []string{redirectURI},
		Keys: clients.Keys{JWKS: jwks, RequestURIs: []string{objects.URL + "/fix.jwt"}}})
	s.client(clients.Spec{ID: "two", FirstParty: true, Scopes: []string{"openid"}, RedirectURIs: []string{redirectURI, otherRedirect},
		Keys: clients.Keys{JWKS: jwks, RequestURIs: []string{objects.URL + "/two.jwt"}}})
	object := func() string {
		return signObject(t, signers[jose.ES256], requestObjectType, s.objectClaims(t, "fix", oauth2.GenerateVerifier()))
	}
	refusedToClient := func(name, raw string) {
		t.Helper()
		p := get(t, s.browser(), raw)
		if p.location == nil || p.location.Query().Get("error") != "invalid_request" || !strings.Contains(p.location.Query().Get("error_description"), "more than once") {
			t.Fatalf("%s: %d %v\n%s", name, p.status, p.location, p.body)
		}
	}
	refusedToClient("request twice", s.issuer+"/oauth2/authorize?"+url.Values{"client_id": {"fix"}, "request": {object(), object()}}.Encode())
	refusedToClient("client_id twice", s.issuer+"/oauth2/authorize?"+url.Values{"client_id": {"fix", "two"}, "request": {object()}}.Encode())
	claims := s.objectClaims(t, "fix", oauth2.GenerateVerifier())
	claims["state"] = "one"
	refusedToClient("state twice in a plain request", s.issuer+"/oauth2/authorize?"+url.Values{"client_id": {"fix"}, "response_type": {"code"},
		"redirect_uri": {redirectURI}, "scope": {"openid"}, "state": {"one", "two"}, "code_challenge": {claims["code_challenge"].(string)},
		"code_challenge_method": {"S256"}}.Encode())

	// An object without response_type, the query carrying it (OpenID
	// Connect Core §6.1): signed in, with the object's state.
	claims = s.objectClaims(t, "fix", oauth2.GenerateVerifier())
	delete(claims, "response_type")
	back := s.authorize(s.browser(), s.objectURL("fix", "request", signObject(t, signers[jose.ES256], requestObjectType, claims),
		url.Values{"response_type": {"code"}}), "rhea", false)
	if back.Query().Get("code") == "" || back.Query().Get("state") != claims["state"] {
		t.Fatalf("an object without response_type came back to %v", back)
	}

	// A registered request_uri that cannot be fetched, with no redirect
	// known: the page says so, not that a pushed link expired.
	p := get(t, s.browser(), s.objectURL("two", "request_uri", objects.URL+"/two.jwt", nil))
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "could not be fetched") || strings.Contains(p.body, "expired") {
		t.Fatalf("unfetchable request_uri: %d\n%s", p.status, p.body)
	}
	// request and request_uri together, for a client of two redirect URIs
	// and none named: not an "unregistered address".
	p = get(t, s.browser(), s.issuer+"/oauth2/authorize?"+url.Values{"client_id": {"two"}, "request": {object()}, "request_uri": {objects.URL + "/fix.jwt"}}.Encode())
	if p.status != http.StatusBadRequest || strings.Contains(p.body, "has not registered") {
		t.Fatalf("request and request_uri together: %d\n%s", p.status, p.body)
	}
}
