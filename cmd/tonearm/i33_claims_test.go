package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// The claims request parameter (OpenID Connect Core §5.5), driven by an
// unmodified go-oidc + x/oauth2 relying party.

const claimsEmail = "claimant@example.org"

// claimsUser is a person with an email address and a ListenBrainz token.
func claimsUser(t *testing.T, s *server, name string) storage.User {
	t.Helper()
	u := s.user(name)
	if _, err := s.app.accounts.UpdateProfile(context.Background(), u.ID, accounts.ProfileUpdate{Email: accounts.Value(claimsEmail)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.accounts.AssociateToken(context.Background(), u.ID, lbToken); err != nil {
		t.Fatal(err)
	}
	return u
}

// claimsAuthURL is r's authorization URL with a claims parameter (none
// when claims is empty), and the PKCE verifier for its code.
func claimsAuthURL(r *rp, claims string, extra ...oauth2.AuthCodeOption) (string, string) {
	verifier := oauth2.GenerateVerifier()
	opts := append([]oauth2.AuthCodeOption{oidc.Nonce("nonce-of-claims"), oauth2.S256ChallengeOption(verifier)}, extra...)
	if claims != "" {
		opts = append(opts, oauth2.SetAuthURLParam("claims", claims))
	}
	return r.conf.AuthCodeURL("state-of-claims", opts...), verifier
}

// exchangeClaims exchanges the code of back and returns the token, the
// ID token's claims and userinfo's.
func exchangeClaims(t *testing.T, r *rp, back *url.URL, verifier string, extra ...oauth2.AuthCodeOption) (*oauth2.Token, map[string]any, map[string]any) {
	t.Helper()
	if back.Query().Get("code") == "" {
		t.Fatalf("no code: %v", back)
	}
	tok, err := r.conf.Exchange(r.ctx, back.Query().Get("code"), append([]oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}, extra...)...)
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if header, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0]); strings.Contains(string(header), "tonearm_") {
		t.Fatalf("tonearm's own session headers in the ID token: %s", header)
	}
	idt, err := r.verifier.Verify(r.ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var id map[string]any
	if err := idt.Claims(&id); err != nil {
		t.Fatal(err)
	}
	return tok, id, userinfoOf(t, r, tok)
}

func userinfoOf(t *testing.T, r *rp, tok *oauth2.Token) map[string]any {
	t.Helper()
	info, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var ui map[string]any
	if err := info.Claims(&ui); err != nil {
		t.Fatal(err)
	}
	return ui
}

// TestClaimsParameter: claims asked by name arrive where they were asked
// (the ID token or userinfo) with only the openid scope, only once the
// person consented to them by name; listenbrainz_token never in an ID
// token; a value is a hint the person's value must match; userinfo keeps
// the request across a refresh and ignores one sent to the token
// endpoint.
func TestClaimsParameter(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		claimsUser(t, s, "claire")
		_, secret := s.client(clients.Spec{ID: "claimsy"})
		r := s.rp("claimsy", secret, "offline_access")
		browser := s.browser()

		// The person consents to openid alone first.
		authURL, verifier := claimsAuthURL(r, "")
		_, id, ui := exchangeClaims(t, r, s.authorize(browser, authURL, "claire", true), verifier)
		for _, c := range []string{"email", "preferred_username", "name", "listenbrainz_token"} {
			if id[c] != nil || ui[c] != nil {
				t.Fatalf("%s released without being asked: ID token %v, userinfo %v", c, id, ui)
			}
		}

		// Claims asked by name: that consent does not cover them, and the
		// consent page names them.
		claims := `{"id_token":{"email":null,"email_verified":{"essential":true},"listenbrainz_token":null,"preferred_username":{"value":"not-claire"},"unknown_claim":null},
			"userinfo":{"listenbrainz_token":{"essential":true},"name":null,"auth_time":null}}`
		authURL, verifier = claimsAuthURL(r, claims)
		p := get(t, browser, authURL)
		if !strings.Contains(p.body, `value="consent"`) {
			t.Fatalf("claims beyond the earlier consent asked no consent: %d %v", p.status, p.location)
		}
		for _, name := range []string{"email:", "email_verified:", "listenbrainz_token:", "name:"} {
			if !strings.Contains(p.body, name) {
				t.Errorf("the consent page does not name %s:\n%s", name, p.body)
			}
		}
		p = submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"decision": "allow"})
		if p.location == nil {
			t.Fatalf("consent: %d %s", p.status, p.body)
		}
		tok, id, ui := exchangeClaims(t, r, p.location, verifier)
		if id["email"] != claimsEmail || id["email_verified"] != false {
			t.Errorf("ID token lacks the email asked for it: %v", id)
		}
		for _, c := range []string{"listenbrainz_token", "preferred_username", "name", "unknown_claim"} {
			if _, ok := id[c]; ok {
				t.Errorf("ID token carries %s: %v", c, id)
			}
		}
		if ui["listenbrainz_token"] != lbToken || ui["name"] != "claire" || ui["auth_time"] == nil {
			t.Errorf("userinfo lacks the claims asked for it: %v", ui)
		}
		if _, ok := ui["email"]; ok {
			t.Errorf("userinfo carries email, asked only for the ID token: %v", ui)
		}

		// A refresh keeps what userinfo was asked.
		fresh, err := r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if ui := userinfoOf(t, r, fresh); ui["listenbrainz_token"] != lbToken || ui["name"] != "claire" {
			t.Errorf("userinfo after a refresh: %v", ui)
		}

		// The consent now covers those claims: no page. A claims
		// parameter sent to the token endpoint is not the authorization's.
		authURL, verifier = claimsAuthURL(r, `{"id_token":{"email":null}}`)
		_, id, ui = exchangeClaims(t, r, s.authorize(browser, authURL, "", false), verifier,
			oauth2.SetAuthURLParam("claims", `{"userinfo":{"email":null,"listenbrainz_token":null}}`))
		if id["email"] != claimsEmail {
			t.Errorf("ID token of a covered claims request: %v", id)
		}
		if ui["email"] != nil || ui["listenbrainz_token"] != nil {
			t.Errorf("userinfo released claims asked at the token endpoint: %v", ui)
		}
	})
}

// TestClaimsParameterRefusals: refusing consent releases nothing; a
// malformed claims parameter is invalid_request at the redirect URI; an
// essential acr no sign-in here states is unmet_authentication_requirements;
// a sub value that is not the session's is login_required under
// prompt=none and a fresh sign-in otherwise, which must be of that
// subject; a client asks no claims of scopes it is not registered for.
func TestClaimsParameterRefusals(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	claire := claimsUser(t, s, "claire")
	other := s.user("oscar")
	_, secret := s.client(clients.Spec{ID: "third"})
	third := s.rp("third", secret)

	// Consent refused: access_denied and no code.
	browser := s.browser()
	authURL, _ := claimsAuthURL(third, `{"id_token":{"email":null}}`)
	p := get(t, browser, authURL)
	p = submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"username": "claire", "password": e2ePassword})
	if !strings.Contains(p.body, "email:") {
		t.Fatalf("the consent page does not name email: %d\n%s", p.status, p.body)
	}
	p = submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"decision": "deny"})
	if p.location == nil || p.location.Query().Get("error") != "access_denied" || p.location.Query().Get("code") != "" {
		t.Fatalf("refused consent: %d %v", p.status, p.location)
	}

	_, fpSecret := s.client(clients.Spec{ID: "first", FirstParty: true, Scopes: []string{"openid", "profile"}})
	first := s.rp("first", fpSecret)
	// The first party asks no consent; claims of scopes it is not
	// registered for (email) are ignored.
	authURL, verifier := claimsAuthURL(first, `{"id_token":{"email":null,"name":null}}`)
	_, id, _ := exchangeClaims(t, first, s.authorize(browser, authURL, "", false), verifier)
	if id["name"] != "claire" || id["email"] != nil {
		t.Fatalf("first party's claims: %v", id)
	}

	refusedURL := func(name, authURL, want string) {
		t.Helper()
		p := get(t, browser, authURL)
		q := url.Values{}
		if p.location != nil {
			q = p.location.Query()
		}
		if q.Get("error") != want || q.Get("code") != "" || q.Get("state") != "state-of-claims" || q.Get("iss") != s.issuer {
			t.Errorf("%s: %d %v, want %s at the redirect URI", name, p.status, p.location, want)
		}
	}
	refused := func(name, claims, want string, extra ...oauth2.AuthCodeOption) {
		t.Helper()
		authURL, _ := claimsAuthURL(first, claims, extra...)
		refusedURL(name, authURL, want)
	}
	for name, claims := range map[string]string{
		"not JSON":                 `{"id_token":`,
		"not an object":            `["email"]`,
		"null":                     `null`,
		"member not an object":     `{"id_token":["email"]}`,
		"claim not an object":      `{"userinfo":{"email":true}}`,
		"essential not a boolean":  `{"id_token":{"email":{"essential":"yes"}}}`,
		"values not an array":      `{"id_token":{"email":{"values":"a@example.org"}}}`,
		"over 4 KB":                `{"id_token":{"email":{"values":["` + strings.Repeat("a", 4100) + `"]}}}`,
		"trailing data after JSON": `{"id_token":{}} {}`,
	} {
		refused("malformed claims, "+name, claims, "invalid_request")
	}
	twice, _ := claimsAuthURL(first, `{"id_token":{"email":null}}`)
	refusedURL("claims twice", twice+"&claims=%7B%7D", "invalid_request")
	for _, c := range []string{
		`{"id_token":{"acr":{"essential":true,"values":["urn:example:silver"]}}}`,
		`{"id_token":{"acr":{"essential":true,"value":"urn:example:silver"}}}`,
	} {
		refused("essential acr unmet", c, "unmet_authentication_requirements")
	}
	// A voluntary acr is a hint: the sign-in goes on.
	authURL, verifier = claimsAuthURL(first, `{"id_token":{"acr":{"values":["urn:example:silver"]}}}`)
	exchangeClaims(t, first, s.authorize(browser, authURL, "", false), verifier)

	// sub with a value (a first party sees public subjects, the user
	// IDs): the session's subject answers at once, another is
	// login_required under prompt=none.
	mine := `{"id_token":{"sub":{"value":"` + claire.ID + `"}}}`
	theirs := `{"id_token":{"sub":{"value":"` + other.ID + `"}}}`
	authURL, verifier = claimsAuthURL(first, mine, oauth2.SetAuthURLParam("prompt", "none"))
	if _, id, _ := exchangeClaims(t, first, s.authorize(browser, authURL, "", false), verifier); id["sub"] != claire.ID {
		t.Fatalf("sub asked is the session's: %v", id)
	}
	refused("another sub, prompt=none", theirs, "login_required", oauth2.SetAuthURLParam("prompt", "none"))
	// Without prompt=none: a fresh sign-in, which must be of that
	// subject.
	authURL, _ = claimsAuthURL(first, theirs)
	p = get(t, browser, authURL)
	if !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("another sub asked: no sign-in page: %d %v", p.status, p.location)
	}
	p = submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"username": "claire", "password": e2ePassword})
	if p.location == nil || p.location.Query().Get("error") != "login_required" || p.location.Query().Get("code") != "" {
		t.Fatalf("signed in as someone else than the sub asked: %d %v", p.status, p.location)
	}
	authURL, verifier = claimsAuthURL(first, theirs)
	if _, id, _ := exchangeClaims(t, first, s.authorize(browser, authURL, "oscar", false), verifier); id["sub"] != other.ID {
		t.Fatalf("signed in as the sub asked: %v", id)
	}
}

// TestClaimsParameterPushedAndDiscovery: a claims parameter pushed (PAR)
// works like a direct one; discovery says the parameter is supported.
func TestClaimsParameterPushedAndDiscovery(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	claimsUser(t, s, "claire")
	if p := get(t, http.DefaultClient, s.issuer+provider.DiscoveryPath); !strings.Contains(p.body, `"claims_parameter_supported":true`) {
		t.Fatalf("discovery: %s", p.body)
	}
	_, secret := s.client(clients.Spec{ID: "pushy", FirstParty: true})
	verifier := oauth2.GenerateVerifier()
	form := parForm(verifier)
	form.Set("scope", "openid")
	// A malformed claims parameter is refused at the push.
	form.Set("claims", `{"id_token":["email"]}`)
	if status, body := s.push(t, "pushy", secret, form); status != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Fatalf("push of malformed claims: %d %v", status, body)
	}
	form.Set("claims", `{"id_token":{"email":null}}`)
	status, body := s.push(t, "pushy", secret, form)
	uri, _ := body["request_uri"].(string)
	if status != http.StatusCreated || uri == "" {
		t.Fatalf("push: %d %v", status, body)
	}
	r := s.rp("pushy", secret)
	auth := s.issuer + provider.AuthorizePath + "?" + url.Values{"client_id": {"pushy"}, "request_uri": {uri}}.Encode()
	back := s.authorize(s.browser(), auth, "claire", false)
	if _, id, _ := exchangeClaims(t, r, back, verifier); id["email"] != claimsEmail {
		t.Fatalf("ID token of a pushed claims request: %v", id)
	}
}
