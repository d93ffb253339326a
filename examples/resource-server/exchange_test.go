package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const (
	statsID    = "https://api.example.org/stats"
	statsScope = "stats:read"
)

// GET /listens/summary against a real tonearm: the listens API exchanges
// the person's token (RFC 8693) for one to the stats API API, which sees the
// person with the listens API as actor; a client the stats API does not name,
// and a person who did not let the app reach the stats API, get no summary.
func TestSummaryByExchange(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs tonearm")
	}
	var server, stranger string
	ta := startTonearm(t, func(ta *tonearm) {
		// Confidential clients; the listens backend is the listens API's
		// resource server (its introspector), so the person's tokens for
		// that API are meant for it; the stranger too, but the stats API
		// does not name it.
		ta.run("", "apis", "create", "--id", statsID, "--scope", statsScope+"=See your listening statistics")
		server = ta.secret("clients", "create", "--id", "listens-backend", "--grant-type", "client_credentials", "--scope", statsScope)
		stranger = ta.secret("clients", "create", "--id", "stranger", "--grant-type", "client_credentials", "--scope", statsScope)
		ta.run("", "apis", "update", listensID, "--introspector", "listens-backend", "--introspector", "stranger")
		ta.run("", "apis", "update", statsID, "--exchange-from", "listens-backend")
	})
	stats := httptest.NewServer(Handler(&Verifier{Issuer: ta.issuer, Audience: statsID, Scope: statsScope}, nil))
	defer stats.Close()
	listens := func(clientID, secret string) *httptest.Server {
		x := &Exchanger{Issuer: ta.issuer, ClientID: clientID, ClientSecret: secret, Target: statsID, TargetURL: stats.URL}
		v := &Verifier{Issuer: ta.issuer, Audience: listensID}
		srv := httptest.NewUnstartedServer(Handler(v, x))
		v.URL = "http://" + srv.Listener.Addr().String()
		srv.Start()
		return srv
	}
	rs, misconfigured := listens("listens-backend", server), listens("stranger", stranger)
	defer rs.Close()
	defer misconfigured.Close()
	summary := func(srv *httptest.Server, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/listens/summary", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}

	token := ta.userToken("nora", false, statsScope)
	status, body := summary(rs, token)
	var got struct {
		User        string         `json:"user"`
		Listens     int            `json:"listens"`
		PerArtist   map[string]int `json:"per_artist"`
		SeenThereAs map[string]any `json:"seen_there_as"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("summary: %d %s", status, body)
	}
	if got.User == "" || got.Listens != 3 || got.PerArtist["Nina Simone"] != 2 || got.SeenThereAs["sub"] != "listens-backend" {
		t.Fatalf("summary: %s (the stats API must see the listens API as actor, RFC 8693 §4.1)", body)
	}
	// A client the stats API does not name is refused by tonearm
	// (unauthorized_client): the operator's mistake, so 502.
	if status, body := summary(misconfigured, token); status != http.StatusBadGateway || !strings.Contains(body, "may not call") {
		t.Errorf("a client the stats API does not name: %d %s", status, body)
	}
	// A person who granted the app listens:read only: nothing to exchange
	// for the stats API.
	if status, body := summary(rs, ta.userToken("otto", false)); status != http.StatusForbidden || !strings.Contains(body, "invalid_scope") {
		t.Errorf("a token without %s: %d %s", statsScope, status, body)
	}
	// The person's app holds a DPoP key: the listens API takes the bound
	// token with its proof and exchanges it all the same (the new token is
	// the listens backend's to use: tonearm never binds it to the app's key).
	key := newProofKey(t)
	ta.dpop = &key
	bound := ta.userToken("pia", false, statsScope)
	ta.dpop = nil
	req, _ := http.NewRequest(http.MethodGet, rs.URL+"/listens/summary", nil)
	req.Header.Set("Authorization", "DPoP "+bound)
	req.Header.Set("DPoP", key.proof(t, map[string]any{"jti": jti(), "htm": "GET", "htu": rs.URL + "/listens/summary", "iat": time.Now().Unix(), "ath": ath(bound)}, nil))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"seen_there_as":{"sub":"listens-backend"}`) {
		t.Errorf("a DPoP-bound token with its proof: %d %s", resp.StatusCode, b)
	}
	if status, body := summary(rs, bound); status != http.StatusUnauthorized {
		t.Errorf("the same DPoP-bound token as a bearer token: %d %s", status, body)
	}
	// A token that is not for the listens API never reaches the exchange.
	if status, body := summary(rs, "not-a-token"); status != http.StatusUnauthorized {
		t.Errorf("no valid token: %d %s", status, body)
	}
}
