package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// What an outside tester found in pairwise subjects and the claims
// parameter, replayed.

// pairwiseKeys registers a client for pairwise subjects.
var pairwiseKeys = clients.Keys{SubjectType: storage.SubjectPairwise}

// Introspection names the person by username only for a token granted
// profile: two pairwise apps (and public ones) signed in with openid alone
// get no common identifier to link the person by.
func TestPairwiseFixIntrospectionUsername(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.user("alice")
	scopes := []string{"openid", "profile"}
	_, oneSecret := s.client(clients.Spec{ID: "one", FirstParty: true, Scopes: scopes, Keys: pairwiseKeys})
	_, twoSecret := s.client(clients.Spec{ID: "two", FirstParty: true, Scopes: scopes, Keys: pairwiseKeys})
	_, pubSecret := s.client(clients.Spec{ID: "pub", FirstParty: true, Scopes: scopes})
	browser := s.browser()
	seen := map[string]any{}
	for i, c := range []struct{ id, secret string }{{"one", oneSecret}, {"two", twoSecret}, {"pub", pubSecret}} {
		user := ""
		if i == 0 {
			user = "alice"
		}
		tok := s.codeFlow(s.rp(c.id, c.secret), browser, user)
		in := s.introspect(c.id, c.secret, tok.AccessToken)
		if in.status != http.StatusOK || in.body["active"] != true {
			t.Fatalf("%s: introspection = %d %v", c.id, in.status, in.body)
		}
		if u, ok := in.body["username"]; ok {
			t.Fatalf("%s: introspection of a token without profile names the username %v: %v", c.id, u, in.body)
		}
		seen[c.id] = in.body["sub"]
		withProfile := s.codeFlow(s.rp(c.id, c.secret, "profile"), browser, "")
		if in := s.introspect(c.id, c.secret, withProfile.AccessToken); in.body["username"] != "alice" {
			t.Fatalf("%s: introspection of a token granted profile = %v, want username alice", c.id, in.body)
		}
	}
	if seen["one"] == seen["two"] || seen["one"] == seen["pub"] {
		t.Fatalf("introspected subs: %v; want a different one per pairwise client", seen)
	}
}

// With a pairwise client's bearer token, /api/me names the person by the
// client's sub, and the User API takes that sub as user (not the user ID,
// which the client should not know); cookies and public clients are as
// before.
func TestPairwiseFixAPIsSpeakTheClientsSub(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	rex := s.user("rex")
	_, secret := s.client(clients.Spec{ID: "app", FirstParty: true, Scopes: []string{"openid", "account"}, Keys: pairwiseKeys})
	browser := s.browser()
	tok := s.codeFlow(s.rp("app", secret, "account"), browser, "rex").AccessToken
	sub, _ := verifyAccessToken(t, s.issuer, tok)["sub"].(string)
	if sub == "" || sub == rex.ID {
		t.Fatalf("pairwise access token sub = %q (user %s)", sub, rex.ID)
	}
	if me := s.want(s.call(nil, http.MethodGet, "/api/me", tok, nil), http.StatusOK); me.body["id"] != sub || me.body["username"] != "rex" {
		t.Fatalf("GET /api/me with a pairwise token = %s, want id %s", me.raw, sub)
	}
	if me := s.want(s.call(nil, http.MethodPatch, "/api/me", tok, map[string]string{"bio": "hi"}), http.StatusOK); me.body["id"] != sub {
		t.Fatalf("PATCH /api/me with a pairwise token = %s, want id %s", me.raw, sub)
	}
	if me := s.want(s.call(browser, http.MethodGet, "/api/me", "", nil), http.StatusOK); me.body["id"] != rex.ID {
		t.Fatalf("GET /api/me with the cookie = %s, want the user ID", me.raw)
	}

	// The User API: the client's sub is the person; the user ID is not
	// accepted from it.
	s.want(s.call(nil, http.MethodPost, "/api/User/associateToken", tok, map[string]string{"user": sub, "scrobbleToken": lbToken}), http.StatusOK)
	if r := s.want(s.call(nil, http.MethodPost, "/api/User/associateToken", tok, map[string]string{"user": rex.ID, "scrobbleToken": lbToken}),
		http.StatusForbidden); !strings.Contains(r.errMsg(), "own account") {
		t.Fatalf("the user ID from a pairwise client: %s", r.raw)
	}
	s.want(s.call(nil, http.MethodPost, "/api/User/endSession", tok, map[string]string{"user": rex.ID}), http.StatusForbidden)
	s.want(s.call(browser, http.MethodGet, "/api/me", "", nil), http.StatusOK)
	s.want(s.call(nil, http.MethodPost, "/api/User/endSession", tok, map[string]string{"user": sub}), http.StatusOK)
	s.want(s.call(browser, http.MethodGet, "/api/me", "", nil), http.StatusUnauthorized)

	// A public client names the person by the user ID, as before.
	_, pubSecret := s.client(clients.Spec{ID: "pub", FirstParty: true, Scopes: []string{"openid", "account"}})
	pub := s.codeFlow(s.rp("pub", pubSecret, "account"), s.browser(), "rex").AccessToken
	if me := s.want(s.call(nil, http.MethodGet, "/api/me", pub, nil), http.StatusOK); me.body["id"] != rex.ID {
		t.Fatalf("/api/me with a public client's token = %s", me.raw)
	}
	s.want(s.call(nil, http.MethodPost, "/api/User/endSession", pub, map[string]string{"user": rex.ID}), http.StatusOK)
}

// Apps whose redirect URIs are loopback (every native app, RFC 8252) do
// not share a sector: each is a sector of its own, and may register
// several loopback hosts.
func TestPairwiseFixLoopbackSectors(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.user("lou")
	_, aSecret := s.client(clients.Spec{ID: "native-a", FirstParty: true, Keys: pairwiseKeys})
	_, bSecret := s.client(clients.Spec{ID: "native-b", FirstParty: true, Keys: pairwiseKeys})
	_, cSecret := s.client(clients.Spec{ID: "native-c", FirstParty: true, Keys: pairwiseKeys,
		RedirectURIs: []string{redirectURI, "http://localhost:1/callback", "http://[::1]:1/callback"}})
	browser := s.browser()
	sub := func(id, secret, user string) any {
		return idClaims(t, s.codeFlow(s.rp(id, secret), browser, user).Extra("id_token").(string))["sub"]
	}
	a, b, c := sub("native-a", aSecret, "lou"), sub("native-b", bSecret, ""), sub("native-c", cSecret, "")
	if a == b || a == c || b == c || a == nil {
		t.Fatalf("native apps on loopback share a sub: %v, %v, %v", a, b, c)
	}
}

// An update that would move a pairwise client to another sector (and so
// change every sub) is refused and stores nothing; one that keeps the
// sector passes.
func TestPairwiseFixSectorKept(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	ctx := context.Background()
	sectors := newSectorServer(t)
	refused := func(what, id string, change func(*clients.Spec), want string) {
		t.Helper()
		before, _ := s.app.store.GetClient(ctx, id)
		_, err := s.app.clients.Update(ctx, id, change)
		if !fault.Is(err, fault.Invalid) || !strings.Contains(err.Error(), "sub of every person") || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want a refusal naming the sector change and %q", what, err, want)
		}
		if after, _ := s.app.store.GetClient(ctx, id); strings.Join(after.RedirectURIs, " ") != strings.Join(before.RedirectURIs, " ") ||
			after.SectorIdentifierURI != before.SectorIdentifierURI {
			t.Fatalf("%s: the refused update was stored: %v", what, after)
		}
	}
	s.client(clients.Spec{ID: "web", FirstParty: true, RedirectURIs: []string{"https://app.example/cb"}, Keys: pairwiseKeys})
	refused("a new redirect host", "web", func(sp *clients.Spec) { sp.RedirectURIs = []string{"https://new.example/cb"} },
		"sector_identifier_uri on host app.example")

	// A loopback app is a sector of its own: other ports keep it, a real
	// host would not.
	s.client(clients.Spec{ID: "native", FirstParty: true, Keys: pairwiseKeys})
	if _, err := s.app.clients.Update(ctx, "native", func(sp *clients.Spec) { sp.RedirectURIs = []string{"http://127.0.0.1:7/cb"} }); err != nil {
		t.Fatalf("another loopback port: %v", err)
	}
	refused("loopback to a real host", "native", func(sp *clients.Spec) { sp.RedirectURIs = []string{"https://app.example/cb"} }, "new client")

	// A sector_identifier_uri keeps the sector while it lists the new
	// redirect URIs; removing it moves the client.
	doc := sectors.uri("/s.json", redirectURI)
	s.client(clients.Spec{ID: "listed", FirstParty: true, Keys: clients.Keys{SubjectType: storage.SubjectPairwise, SectorIdentifierURI: doc}})
	sectors.uri("/s.json", redirectURI, "http://127.0.0.1:5/cb")
	if _, err := s.app.clients.Update(ctx, "listed", func(sp *clients.Spec) { sp.RedirectURIs = append(sp.RedirectURIs, "http://127.0.0.1:5/cb") }); err != nil {
		t.Fatalf("a redirect URI the sector document lists: %v", err)
	}
	refused("sector_identifier_uri removed", "listed", func(sp *clients.Spec) { sp.SectorIdentifierURI = "" }, "localhost")

	// RFC 7592: the same refusal, as invalid_client_metadata.
	s.user("dev")
	b := s.browser()
	s.signInPage(t, b, "dev")
	status, app := s.registerJSON(t, s.initialToken(t, b), map[string]any{"client_name": "Mover", "redirect_uris": []string{"https://app.example/cb"}})
	if status != http.StatusCreated || app["subject_type"] != "pairwise" {
		t.Fatalf("RFC 7591: %d %v", status, app)
	}
	id, rat := app["client_id"].(string), app["registration_access_token"].(string)
	status, body := s.jsonCall(t, http.MethodPut, provider.RegisterPath+"/"+id, rat,
		map[string]any{"client_id": id, "client_name": "Mover", "redirect_uris": []string{"https://new.example/cb"}})
	if desc, _ := body["error_description"].(string); status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" || !strings.Contains(desc, "sub of every person") {
		t.Fatalf("RFC 7592 moving a pairwise app to another host: %d %v", status, body)
	}
	if c, _ := s.app.store.GetClient(ctx, id); c.RedirectURIs[0] != "https://app.example/cb" {
		t.Fatalf("the refused RFC 7592 update was stored: %v", c.RedirectURIs)
	}
}

// The consent page of a pairwise app says it gets an ID of its own, not
// the account ID.
func TestPairwiseFixConsentWording(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.user("cleo")
	_, pwSecret := s.client(clients.Spec{ID: "pw", Keys: pairwiseKeys})
	_, pubSecret := s.client(clients.Spec{ID: "pub"})
	browser := s.browser()
	s.signInPage(t, browser, "cleo")
	consentPage := func(id, secret string) string {
		authURL, _ := claimsAuthURL(s.rp(id, secret), "")
		p := get(t, browser, authURL)
		if !strings.Contains(p.body, `value="consent"`) {
			t.Fatalf("%s: no consent page: %d %v", id, p.status, p.location)
		}
		return p.body
	}
	if body := consentPage("pw", pwSecret); strings.Contains(body, "(your tonearm account ID)") || !strings.Contains(body, "an ID of its own for you") {
		t.Fatalf("the pairwise app's consent page:\n%s", body)
	}
	if body := consentPage("pub", pubSecret); !strings.Contains(body, "(your tonearm account ID)") {
		t.Fatalf("the public app's consent page:\n%s", body)
	}
}

// listenbrainz_token asked for the ID token (where it is never released)
// is neither named on the consent page nor recorded as consent to
// listenbrainz; a claims value that is not JSON is called so.
func TestPairwiseFixClaimsRequest(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	claimsUser(t, s, "lena")
	_, secret := s.client(clients.Spec{ID: "third"})
	r := s.rp("third", secret)
	browser := s.browser()
	s.signInPage(t, browser, "lena")

	authURL, _ := claimsAuthURL(r, `{"id_token":{"listenbrainz_token":{"essential":true}}}`)
	p := get(t, browser, authURL)
	if !strings.Contains(p.body, `value="consent"`) || strings.Contains(p.body, "listenbrainz_token") || strings.Contains(p.body, "ListenBrainz token") {
		t.Fatalf("consent page for listenbrainz_token in the ID token: %d\n%s", p.status, p.body)
	}
	if p = submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"decision": "allow"}); p.location == nil || p.location.Query().Get("code") == "" {
		t.Fatalf("consent: %d %v", p.status, p.location)
	}
	// No consent to listenbrainz was recorded: a claim of it asks again.
	authURL, _ = claimsAuthURL(r, `{"userinfo":{"listenbrainz_name":null}}`)
	if p := get(t, browser, authURL); !strings.Contains(p.body, `value="consent"`) || !strings.Contains(p.body, "listenbrainz_name:") {
		t.Fatalf("a listenbrainz claim after consent to the dropped one asked no consent: %d %v", p.status, p.location)
	}

	authURL, _ = claimsAuthURL(r, `{"id_token":`)
	p = get(t, browser, authURL)
	if p.location == nil || p.location.Query().Get("error") != "invalid_request" ||
		!strings.Contains(p.location.Query().Get("error_description"), "not valid JSON") {
		t.Fatalf("claims that is not JSON: %d %v", p.status, p.location)
	}
}
