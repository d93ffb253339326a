package main

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// sessionSIDs are the sids of userID's browser sessions, as tonearm
// stores them.
func sessionSIDs(t *testing.T, s *server, userID string) []string {
	t.Helper()
	sessions, err := s.app.store.ListUserSessions(context.Background(), userID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var sids []string
	for _, sess := range sessions {
		sids = append(sids, sess.SID)
	}
	return sids
}

// Two pairwise clients of two sectors, signed in to in one browser session,
// see two sids, neither the session's; a public client sees the session's.
// Each pairwise client's sid is stable across its refresh and a second
// sign-in in the session, and the back-channel logout token each receives
// when the session ends carries the sid its ID tokens carried.
func TestPairwiseSIDs(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		pia := s.user("pia")
		scopes := []string{"openid", "profile", "offline_access"}
		type rpClient struct {
			id, secret string
			rp         *relyingParty
		}
		register := func(id string, keys clients.Keys) rpClient {
			c := rpClient{id: id, rp: newRelyingParty(t)}
			_, c.secret = s.client(clients.Spec{ID: id, FirstParty: true, Scopes: scopes, BackchannelLogoutURI: c.rp.srv.URL + "/bc", Keys: keys})
			return c
		}
		a := register("a", clients.Keys{SubjectType: storage.SubjectPairwise})
		b := register("b", clients.Keys{SubjectType: storage.SubjectPairwise, SectorIdentifierURI: newSectorServer(t).uri("/b.json", redirectURI)})
		pub := register("pub", clients.Keys{})

		browser := s.browser()
		claims := map[string]map[string]any{}
		for i, c := range []rpClient{a, b, pub} {
			user := ""
			if i == 0 {
				user = "pia"
			}
			tok := s.codeFlow(s.rp(c.id, c.secret, "offline_access"), browser, user)
			claims[c.id] = idClaims(t, tok.Extra("id_token").(string))
			// Twice: the refreshed grant keeps the session's sid, not the
			// client's.
			refreshToken := tok.RefreshToken
			for range 2 {
				ref := s.refresh(c.id, c.secret, refreshToken, "")
				if ref.status != http.StatusOK {
					t.Fatalf("%s: refresh = %d %v", c.id, ref.status, ref.body)
				}
				if got := idClaims(t, ref.body["id_token"].(string))["sid"]; got != claims[c.id]["sid"] {
					t.Fatalf("%s: refreshed sid %v, first %v", c.id, got, claims[c.id]["sid"])
				}
				refreshToken, _ = ref.body["refresh_token"].(string)
			}
			again := s.codeFlow(s.rp(c.id, c.secret), browser, "")
			if got := idClaims(t, again.Extra("id_token").(string))["sid"]; got != claims[c.id]["sid"] {
				t.Fatalf("%s: second sign-in's sid %v, first %v", c.id, got, claims[c.id]["sid"])
			}
		}
		sids := sessionSIDs(t, s, pia.ID)
		if len(sids) != 1 {
			t.Fatalf("sessions: %v", sids)
		}
		aSID, bSID := claims["a"]["sid"], claims["b"]["sid"]
		if claims["pub"]["sid"] != sids[0] {
			t.Fatalf("a public client's sid = %v, the session's %s", claims["pub"]["sid"], sids[0])
		}
		if aSID == sids[0] || bSID == sids[0] || aSID == bSID || aSID == nil || bSID == nil {
			t.Fatalf("pairwise sids: a %v, b %v, session %s; want two others", aSID, bSID, sids[0])
		}

		// Signing out with a's hint ends the session: each client hears of
		// it with its own sub and sid.
		p := get(t, browser, s.issuer+provider.LogoutPath+"?"+url.Values{"id_token_hint": {s.codeFlow(s.rp("a", a.secret), browser, "").Extra("id_token").(string)}}.Encode())
		if p.status != http.StatusOK || len(sessionSIDs(t, s, pia.ID)) != 0 {
			t.Fatalf("logout with a's hint = %d, sessions left %v", p.status, sessionSIDs(t, s, pia.ID))
		}
		for _, c := range []rpClient{a, b, pub} {
			verifyLogoutToken(t, s.issuer, c.rp.next(t), c.id, claims[c.id]["sub"].(string), claims[c.id]["sid"].(string))
		}
	})
}

// RP-initiated logout with a pairwise client's ID token ends the session
// the hint was issued in, from the relying party's server (no cookie) and
// from another session's browser; a's hint presented for b ends nothing.
func TestPairwiseSIDHints(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	rex := s.user("rex")
	_, aSecret := s.client(clients.Spec{ID: "a", FirstParty: true, Keys: clients.Keys{SubjectType: storage.SubjectPairwise}})
	_, bSecret := s.client(clients.Spec{ID: "b", FirstParty: true,
		Keys: clients.Keys{SubjectType: storage.SubjectPairwise, SectorIdentifierURI: newSectorServer(t).uri("/b.json", redirectURI)}})
	signIn := func() (*http.Client, string) {
		browser := s.browser()
		hint := s.codeFlow(s.rp("a", aSecret), browser, "rex").Extra("id_token").(string)
		s.codeFlow(s.rp("b", bSecret), browser, "")
		return browser, hint
	}
	signedIn := func(browser *http.Client) bool {
		return promptNone(t, s, "a", aSecret, browser, "").Get("code") != ""
	}
	logout := func(c *http.Client, q url.Values) int {
		resp, err := c.Get(s.issuer + provider.LogoutPath + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	one, oneHint := signIn()
	two, twoHint := signIn()
	if n := len(sessionSIDs(t, s, rex.ID)); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}

	// a's hint presented for b: refused, both sessions stay.
	if st := logout(http.DefaultClient, url.Values{"id_token_hint": {oneHint}, "client_id": {"b"}}); st != http.StatusBadRequest {
		t.Fatalf("a's hint for b = %d, want 400", st)
	}
	if st := logout(two, url.Values{"id_token_hint": {oneHint}, "client_id": {"b"}}); st != http.StatusBadRequest {
		t.Fatalf("a's hint for b, with a cookie = %d, want 400", st)
	}
	if !signedIn(one) || !signedIn(two) {
		t.Fatal("a refused logout ended a session")
	}

	// From the browser of session two, the hint of session one ends session
	// one only.
	if st := logout(two, url.Values{"id_token_hint": {oneHint}}); st != http.StatusOK || signedIn(one) || !signedIn(two) {
		t.Fatalf("session one's hint from session two's browser = %d; session one signed in %v, two %v", st, signedIn(one), signedIn(two))
	}
	// From a's server, without the cookie, the hint ends its session.
	if st := logout(http.DefaultClient, url.Values{"id_token_hint": {twoHint}}); st != http.StatusOK || signedIn(two) {
		t.Fatalf("backend logout with session two's hint = %d, still signed in %v", st, signedIn(two))
	}
	if n := len(sessionSIDs(t, s, rex.ID)); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
}
