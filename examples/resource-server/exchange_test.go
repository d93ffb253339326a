package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	archiveID    = "https://api.example.org/archive"
	archiveScope = "archive:read"
)

// GET /listens/summary against a real tonearm: the listens API exchanges
// the person's token (RFC 8693) for one to the archive API, which sees the
// person with the listens API as actor; a client the archive does not name,
// and a person who did not let the app reach the archive, get no summary.
func TestSummaryByExchange(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs tonearm")
	}
	var server, stranger string
	ta := startTonearm(t, func(ta *tonearm) {
		// Confidential clients; the listens server is the listens API's
		// resource server (its introspector), so the person's tokens for
		// that API are meant for it; the stranger is not.
		server = ta.secret("clients", "create", "--id", "listens-server", "--grant-type", "client_credentials", "--scope", archiveScope)
		stranger = ta.secret("clients", "create", "--id", "stranger", "--grant-type", "client_credentials", "--scope", archiveScope)
		ta.run("", "apis", "update", listensID, "--introspector", "listens-server", "--introspector", "stranger")
		ta.run("", "apis", "create", "--id", archiveID, "--scope", archiveScope+"=Read your archived listens", "--exchange-from", "listens-server")
	})
	archive := httptest.NewServer(Handler(&Verifier{Issuer: ta.issuer, Audience: archiveID, Scope: archiveScope}, nil))
	defer archive.Close()
	listens := func(clientID, secret string) *httptest.Server {
		x := &Exchanger{Issuer: ta.issuer, ClientID: clientID, ClientSecret: secret, Target: archiveID, TargetURL: archive.URL}
		return httptest.NewServer(Handler(&Verifier{Issuer: ta.issuer, Audience: listensID}, x))
	}
	rs, misconfigured := listens("listens-server", server), listens("stranger", stranger)
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

	token := ta.userToken("nora", false, archiveScope)
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
	if got.User == "" || got.Listens != 3 || got.PerArtist["Nina Simone"] != 2 || got.SeenThereAs["sub"] != "listens-server" {
		t.Fatalf("summary: %s (the archive must see the listens API as actor, RFC 8693 §4.1)", body)
	}
	// A client the archive does not name is refused by tonearm
	// (unauthorized_client): the operator's mistake, so 502.
	if status, body := summary(misconfigured, token); status != http.StatusBadGateway || !strings.Contains(body, "may not call") {
		t.Errorf("a client the archive does not name: %d %s", status, body)
	}
	// A person who granted the app listens:read only: nothing to exchange
	// for the archive.
	if status, body := summary(rs, ta.userToken("otto", false)); status == http.StatusOK {
		t.Errorf("a token without %s: %d %s", archiveScope, status, body)
	}
	// A token that is not for the listens API never reaches the exchange.
	if status, body := summary(rs, "not-a-token"); status != http.StatusUnauthorized {
		t.Errorf("no valid token: %d %s", status, body)
	}
}
