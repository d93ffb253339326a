package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

// formPostRequest is an authorization request of client for the
// form_post response mode.
func formPostRequest(client, state, verifier string) url.Values {
	return url.Values{
		"client_id": {client}, "response_type": {"code"}, "redirect_uri": {redirectURI}, "scope": {"openid profile"},
		"state": {state}, "nonce": {"nonce-of-the-form"}, "response_mode": {"form_post"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
}

// checkFormPost checks that p is the form_post page (OAuth 2.0 Form Post
// Response Mode): a form posting to the redirect URI, never cached, no
// Referer, a policy that lets the form go to the redirect URI's origin and
// nowhere else, and no inline script; it returns the posted fields.
func checkFormPost(t *testing.T, p page, header http.Header) url.Values {
	t.Helper()
	if p.status != http.StatusOK || p.location != nil {
		t.Fatalf("expected the form_post page, got %d %v:\n%s", p.status, p.location, p.body)
	}
	f := parseForm(t, p.body, p.url)
	if f.action != redirectURI || f.method != http.MethodPost {
		t.Fatalf("form posts %s to %q", f.method, f.action)
	}
	if !strings.Contains(p.body, `<button type="submit">`) {
		t.Fatalf("no visible button (JavaScript off):\n%s", p.body)
	}
	csp := header.Get("Content-Security-Policy")
	var formAction, scriptSrc []string
	for _, d := range strings.Split(csp, ";") {
		fields := strings.Fields(d)
		if len(fields) > 0 && fields[0] == "form-action" {
			formAction = fields[1:]
		}
		if len(fields) > 0 && fields[0] == "script-src" {
			scriptSrc = fields[1:]
		}
	}
	// No form-action: browsers would apply it to the callback's own
	// redirects after the post too.
	if formAction != nil || strings.Join(scriptSrc, " ") != "'self'" {
		t.Fatalf("CSP %q: form-action %q, script-src %q", csp, formAction, scriptSrc)
	}
	if header.Get("Cache-Control") != "no-store" || header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("headers: %v", header)
	}
	if strings.Count(p.body, "<script") != 1 || !strings.Contains(p.body, `<script src="/static/formpost.js?v=`) {
		t.Fatalf("the page must load tonearm's script file and nothing inline:\n%s", p.body)
	}
	if f.values.Get("iss") == "" {
		t.Fatalf("no iss (RFC 9207): %v", f.values)
	}
	return f.values
}

// getWithHeader is get, returning the response's header as well.
func getWithHeader(t *testing.T, c *http.Client, u string) (page, http.Header) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp), resp.Header
}

// response_mode=form_post over HTTP: a success whose hostile state cannot
// break out of the page, the consent refusal (access_denied), prompt=none's
// login_required, a pushed request's mode, and the modes not offered.
func TestI33FormPostHTTP(t *testing.T) {
	t.Parallel()
	s := startE2E(t, sqliteURL(t), options{})
	_, secret := s.client(clients.Spec{ID: "poster", Scopes: []string{"openid", "profile"}})
	s.user("poster-person")
	authorize := s.issuer + provider.AuthorizePath + "?"

	// Success, with a state that tries to end the attribute and the form.
	hostile := `x"><script>alert(1)</script><input name='code' value='stolen'>&amp;`
	verifier := oauth2.GenerateVerifier()
	browser := s.browser()
	p := get(t, browser, authorize+formPostRequest("poster", hostile, verifier).Encode())
	login := parseForm(t, p.body, p.url)
	p = submit(t, browser, login, map[string]string{"username": "poster-person", "password": e2ePassword})
	p, header := submitWithHeader(t, browser, parseForm(t, p.body, p.url), map[string]string{"decision": "allow"})
	got := checkFormPost(t, p, header)
	if got.Get("state") != hostile || len(got["code"]) != 1 || got.Get("iss") != s.issuer || strings.Contains(p.body, "<script>alert") {
		t.Fatalf("form_post fields %v:\n%s", got, p.body)
	}
	// The code in the form is a real one.
	rp := s.rp("poster", secret, "profile")
	tok, err := rp.conf.Exchange(context.Background(), got.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.Extra("id_token") == nil {
		t.Fatalf("exchanging the posted code: %v", err)
	}
	// The page's script is served.
	if js := get(t, http.DefaultClient, s.issuer+"/static/formpost.js"); js.status != http.StatusOK || !strings.Contains(js.body, "submit()") {
		t.Fatalf("formpost.js: %d", js.status)
	}

	// Refusing consent: access_denied by form_post, with iss and state.
	p = get(t, browser, authorize+formPostRequest("poster", "refused-state", oauth2.GenerateVerifier()).Encode()+"&prompt=consent")
	p, header = submitWithHeader(t, browser, parseForm(t, p.body, p.url), map[string]string{"decision": "deny"})
	got = checkFormPost(t, p, header)
	if got.Get("error") != "access_denied" || got.Get("state") != "refused-state" || got.Get("iss") != s.issuer || got.Has("code") {
		t.Fatalf("consent refused: %v", got)
	}

	// prompt=none without a session: login_required by form_post.
	p, header = getWithHeader(t, s.browser(), authorize+formPostRequest("poster", "quiet-state", oauth2.GenerateVerifier()).Encode()+"&prompt=none")
	got = checkFormPost(t, p, header)
	if got.Get("error") != "login_required" || got.Get("state") != "quiet-state" || got.Get("iss") != s.issuer {
		t.Fatalf("prompt=none: %v", got)
	}

	// Pushed (RFC 9126): the mode is the pushed one.
	form := formPostRequest("poster", "pushed-state", oauth2.GenerateVerifier())
	form.Set("prompt", "none")
	status, body := s.push(t, "poster", secret, form)
	if status != http.StatusCreated {
		t.Fatalf("push: %d %v", status, body)
	}
	p, header = getWithHeader(t, s.browser(), authorize+url.Values{"client_id": {"poster"}, "request_uri": {body["request_uri"].(string)}}.Encode())
	if got = checkFormPost(t, p, header); got.Get("error") != "login_required" || got.Get("state") != "pushed-state" {
		t.Fatalf("pushed prompt=none: %v", got)
	}

	// fragment is not offered for the code flow, nor anything unknown:
	// invalid_request, in the query, to the client.
	for _, modes := range [][]string{{"fragment"}, {"web_message"}} {
		q := formPostRequest("poster", "mode-state", oauth2.GenerateVerifier())
		q["response_mode"] = modes
		p := get(t, s.browser(), authorize+q.Encode())
		if p.location == nil || p.location.Query().Get("error") != "invalid_request" || p.location.Query().Get("iss") != s.issuer || p.location.Query().Get("state") != "mode-state" {
			t.Fatalf("response_mode %v: %d %v\n%s", modes, p.status, p.location, p.body)
		}
		if modes[0] == "fragment" {
			if status, body := s.push(t, "poster", secret, q); status != http.StatusBadRequest || body["error"] != "invalid_request" {
				t.Fatalf("pushed response_mode fragment: %d %v", status, body)
			}
		}
	}

	// Two modes at once (RFC 6749 §3.1): invalid_request, in the query
	// whichever comes first (which one was meant is unknown).
	q := formPostRequest("poster", "two-modes", oauth2.GenerateVerifier())
	q.Add("response_mode", "query")
	p = get(t, s.browser(), authorize+q.Encode())
	if p.location == nil || p.location.Query().Get("error") != "invalid_request" || p.location.Query().Get("state") != "two-modes" {
		t.Fatalf("two response modes: %d %v\n%s", p.status, p.location, p.body)
	}

	// Discovery lists what works.
	if d := get(t, http.DefaultClient, s.issuer+provider.DiscoveryPath); !strings.Contains(d.body, `"response_modes_supported":["query","form_post"]`) {
		t.Fatalf("discovery: %s", d.body)
	}
}
