package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/backchannel"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

// relyingParty is a stand-in relying party's back-channel logout endpoint.
type relyingParty struct {
	srv      *httptest.Server
	mu       sync.Mutex
	failNext int
	tokens   chan string
}

func newRelyingParty(t *testing.T) *relyingParty {
	rp := &relyingParty{tokens: make(chan string, 100)}
	rp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.mu.Lock()
		fail := rp.failNext > 0
		if fail {
			rp.failNext--
		}
		rp.mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rp.tokens <- r.PostFormValue("logout_token")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rp.srv.Close)
	return rp
}

func (rp *relyingParty) next(t *testing.T) string {
	t.Helper()
	select {
	case tok := <-rp.tokens:
		return tok
	case <-time.After(10 * time.Second):
		t.Fatal("no logout token arrived")
	}
	return ""
}

func (rp *relyingParty) none(t *testing.T) {
	t.Helper()
	select {
	case tok := <-rp.tokens:
		t.Fatalf("an unexpected logout token arrived: %s", tok)
	case <-time.After(300 * time.Millisecond):
	}
}

// verifyLogoutToken checks a logout token as a relying party must (Back-
// Channel Logout 1.0 §2.6) with go-jose against the JWKS.
func verifyLogoutToken(t *testing.T, issuer, token, clientID, sub, sid string) {
	t.Helper()
	resp, err := http.Get(issuer + provider.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	_ = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	obj, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatalf("logout token: %v", err)
	}
	h := obj.Signatures[0].Protected
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("logout token kid %q is not in the JWKS", h.KeyID)
	}
	payload, err := obj.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("logout token does not verify: %v", err)
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "logout+jwt" {
		t.Fatalf("typ = %q", typ)
	}
	var c map[string]any
	_ = json.Unmarshal(payload, &c)
	events, _ := c["events"].(map[string]any)
	if c["iss"] != issuer || c["aud"] != clientID || c["sub"] != sub || c["sid"] != sid || c["jti"] == nil || c["iat"] == nil || c["exp"] == nil {
		t.Fatalf("logout token claims = %v", c)
	}
	if _, ok := events[provider.BackchannelLogoutEvent]; !ok || c["nonce"] != nil {
		t.Fatalf("logout token events/nonce = %v", c)
	}
}

// Every way a session ends reaches the relying parties holding tokens from
// it, and revokes those tokens.
func TestBackchannelLogout(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		mailer := newCaptureMailer()
		s := startE2E(t, dbURL, options{mailer: mailer})
		rp := newRelyingParty(t)
		_, secret := s.client(clients.Spec{ID: "rp", FirstParty: true, BackchannelLogoutURI: rp.srv.URL + "/backchannel"})
		_, quietSecret := s.client(clients.Spec{ID: "quiet", FirstParty: true})
		s.admin("root")
		ops := s.opsToken()
		disco := s.want(s.call(nil, http.MethodGet, provider.DiscoveryPath, "", nil), http.StatusOK)
		if disco.body["backchannel_logout_supported"] != true || disco.body["backchannel_logout_session_supported"] != true {
			t.Fatalf("discovery = %s", disco.raw)
		}

		type signedIn struct {
			browser       *http.Client
			user          string
			sid, idToken  string
			access, quiet string
		}
		signIn := func(name string) signedIn {
			u, err := s.app.store.GetUserByUsername(context.Background(), name)
			if err != nil {
				u = s.user(name)
				setEmail(t, s, u.ID, name+"@example.org")
			}
			browser := s.browser()
			tok := s.codeFlow(s.rp("rp", secret), browser, name)
			quiet := s.codeFlow(s.rp("quiet", quietSecret), browser, "")
			id := tok.Extra("id_token").(string)
			return signedIn{browser: browser, user: u.ID, sid: idClaims(t, id)["sid"].(string), idToken: id, access: tok.AccessToken, quiet: quiet.AccessToken}
		}
		check := func(way string, si signedIn) {
			t.Helper()
			verifyLogoutToken(t, s.issuer, rp.next(t), "rp", si.user, si.sid)
			if s.active("rp", secret, si.access) {
				t.Errorf("%s: the relying party's token from the ended session is still active", way)
			}
		}

		si := signIn("ada")
		resp, err := http.Get(s.issuer + provider.LogoutPath + "?" + url.Values{"id_token_hint": {si.idToken}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		check("RP-initiated logout", si)
		if !s.active("quiet", quietSecret, si.quiet) {
			t.Error("a client without a back-channel URI lost its token at logout")
		}

		si = signIn("ada")
		s.want(s.call(si.browser, http.MethodPost, "/api/User/endSession", "", map[string]string{"user": si.user}), http.StatusOK)
		check("endSession", si)

		si = signIn("ada")
		s.want(s.call(si.browser, http.MethodPost, "/api/me/password", "", map[string]string{"currentPassword": e2ePassword, "newPassword": e2ePassword + "-2"}), http.StatusOK)
		check("password change", si)
		s.want(s.call(nil, http.MethodPost, "/api/admin/users/"+si.user+"/password", ops, map[string]string{"password": e2ePassword}), http.StatusOK)
		rp.none(t) // that session's logout was already delivered

		si = signIn("ada")
		s.want(s.call(nil, http.MethodPost, "/api/password-reset/request", "", map[string]string{"email": "ada@example.org"}), http.StatusOK)
		mailer.wait(t)
		mailer.mu.Lock()
		token := mailer.sent["ada@example.org"]
		mailer.mu.Unlock()
		s.want(s.call(nil, http.MethodPost, "/api/password-reset/confirm", "", map[string]string{"token": token, "newPassword": e2ePassword}), http.StatusOK)
		check("password reset", si)

		si = signIn("ada")
		s.want(s.call(nil, http.MethodPatch, "/api/admin/users/"+si.user, ops, map[string]any{"disabled": true}), http.StatusOK)
		check("admin disable", si)
		s.want(s.call(nil, http.MethodPatch, "/api/admin/users/"+si.user, ops, map[string]any{"disabled": false}), http.StatusOK)

		si = signIn("ada")
		s.want(s.call(nil, http.MethodDelete, "/api/admin/users/"+si.user, ops, nil), http.StatusOK)
		check("admin delete", si)

		// A sign-in that never used the relying party tells it nothing.
		s.user("bea")
		s.loginBrowser("bea")
		rp.none(t)
	})
}

// The outbox is written with the logout: a replica that dies before
// delivering loses nothing; a relying party that is down is retried.
func TestBackchannelLogoutSurvivesRestartAndRetries(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{noBackchannel: true})
		rp := newRelyingParty(t)
		_, secret := s.client(clients.Spec{ID: "rp", FirstParty: true, BackchannelLogoutURI: rp.srv.URL + "/backchannel"})
		u := s.user("cyd")
		tok := s.codeFlow(s.rp("rp", secret), s.browser(), "cyd")
		sid := idClaims(t, tok.Extra("id_token").(string))["sid"].(string)
		if err := s.app.accounts.EndUserSessions(context.Background(), u.ID); err != nil {
			t.Fatal(err)
		}
		rp.none(t) // no worker: the replica "died" before delivering

		// The relying party is down at first: the attempt is retried later.
		rp.mu.Lock()
		rp.failNext = 1
		rp.mu.Unlock()
		clock := &offsetClock{}
		d, err := backchannel.New(s.app.store, s.app.provider, nil, slog.New(slog.NewJSONHandler(io.Discard, nil)), clock.now)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := d.DeliverDue(context.Background()); err != nil || n != 0 {
			t.Fatalf("first attempt against a down relying party: %d, %v", n, err)
		}
		if n, _ := d.DeliverDue(context.Background()); n != 0 {
			t.Fatal("a failed delivery was retried at once")
		}
		clock.advance(10 * time.Second)
		if n, err := d.DeliverDue(context.Background()); err != nil || n != 1 {
			t.Fatalf("retry: %d, %v", n, err)
		}
		verifyLogoutToken(t, s.issuer, rp.next(t), "rp", u.ID, sid)

		// Another logout, then a restart: the new replica delivers it.
		tok = s.codeFlow(s.rp("rp", secret), s.browser(), "cyd")
		sid = idClaims(t, tok.Extra("id_token").(string))["sid"].(string)
		if err := s.app.accounts.EndUserSessions(context.Background(), u.ID); err != nil {
			t.Fatal(err)
		}
		s.second()
		verifyLogoutToken(t, s.issuer, rp.next(t), "rp", u.ID, sid)
	})
}
