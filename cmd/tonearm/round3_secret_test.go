package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/provider/totp"
	"github.com/tonearm-idp/tonearm/storage"
)

var (
	rotationSecretA = strings.Repeat("rotation-secret-A.", 2)
	rotationSecretB = strings.Repeat("rotation-secret-B.", 2)
	rotationSecretC = strings.Repeat("rotation-secret-C.", 2)
)

// rotationConfig is the configuration of a replica at addr with secret
// and previous secrets.
func rotationConfig(t *testing.T, addr, dbURL, lbURL, secret string, previous ...string) config.Config {
	t.Helper()
	db, err := configParsers.Database(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{Issuer: "http://" + addr, DatabaseURL: dbURL, Database: db, Secret: []byte(secret),
		ListenBrainzURL: lbURL, Registration: config.DefaultRegistration,
		ClientRegistration: config.DefaultClientRegistration, AdminMFA: config.DefaultAdminMFA}
	for _, p := range previous {
		cfg.PreviousSecrets = append(cfg.PreviousSecrets, []byte(p))
	}
	return cfg
}

// startAt starts tonearm with cfg on its issuer's address (so a restarted
// replica keeps the issuer, and upstream providers their redirect URI);
// stop ends it, server and store, so the next one can take the address.
func startAt(t *testing.T, cfg config.Config, clock *frozenClock) (*server, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", strings.TrimPrefix(cfg.Issuer, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := buildWith(context.Background(), cfg, discardLogger(), options{now: clock.now, noBackchannel: true,
		hashParams: &accounts.HashParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		ln.Close()
		t.Fatalf("build: %v", err)
	}
	srv := httptest.NewUnstartedServer(a.handler)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			srv.Close()
			a.store.Close()
		}
	}
	t.Cleanup(stop)
	return &server{t: t, app: a, srv: srv, issuer: cfg.Issuer, cfg: cfg}, stop
}

// Rotating TONEARM_SECRET (issue 31, item 16): data sealed and keyed under
// secret A; a replica with secret B and TONEARM_PREVIOUS_SECRETS=A opens
// all of it (signing keys, TOTP, recovery codes, the connector's secret, a
// ListenBrainz token, a client secret and a refresh token); tonearm reseal,
// run while it serves, moves every sealed value under B and a second run
// changes nothing; a client secret used meanwhile moved to B too; a
// replica with B alone then opens everything sealed; one with neither
// secret, and a reseal under it, stop with a clear error.
func TestRotateSecret(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		clock := newFrozenClock()
		lb := fakeListenBrainz(t)
		free, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := free.Addr().String()
		free.Close()

		// Secret A.
		a, stopA := startAt(t, rotationConfig(t, addr, dbURL, lb.URL, rotationSecretA), clock)
		tina := a.user("tina")
		if _, err := a.app.accounts.AssociateToken(ctx, tina.ID, lbToken); err != nil {
			t.Fatal(err)
		}
		b := a.browser()
		a.signInPage(t, b, "tina")
		totpKey, codes := enrolTOTP(t, a, b, clock)
		mb := newFakeMusicBrainz(t, a.issuer+"/connectors/musicbrainz/callback")
		if _, err := a.app.connectors.Create(ctx, connectors.Spec{ID: "musicbrainz", Kind: storage.ConnectorMusicBrainz, Name: "MusicBrainz",
			ClientID: mb.clientID, ClientSecret: mb.secret, BaseURL: mb.URL}); err != nil {
			t.Fatal(err)
		}
		_, webSecret := a.client(clients.Spec{ID: "web", FirstParty: true})
		// A client that does not authenticate while both secrets are set.
		_, idleSecret := a.client(clients.Spec{ID: "idle", GrantTypes: []string{"client_credentials"}, Scopes: []string{"profile"}})
		clientCredentials := func(s *server, secret string) int {
			return s.post(provider.TokenPath, "idle", secret, url.Values{"grant_type": {"client_credentials"}}).status
		}
		if st := clientCredentials(a, idleSecret); st != http.StatusOK {
			t.Fatalf("client credentials under A: %d", st)
		}
		a.client(clients.Spec{ID: "player", Public: true, FirstParty: true, GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "profile"}})
		// tina signs in with her password and the app's code to the
		// confidential client "web".
		signIn := func(s *server, clientSecret string) *oauth2.Token {
			t.Helper()
			r := s.rp("web", clientSecret, "profile", "offline_access")
			br := s.browser()
			sf, verifier := toSecondFactor(t, br, r, "tina")
			clock.advance(totp.Period)
			landed := submit(t, br, parseForm(t, sf.body, sf.url), map[string]string{"totp_code": clock.code(totpKey)})
			if landed.location == nil || landed.location.Query().Get("code") == "" {
				t.Fatalf("TOTP sign-in did not reach the app: %d\n%s", landed.status, landed.body)
			}
			tok, err := r.conf.Exchange(r.ctx, landed.location.Query().Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("code exchange with the client secret: %v", err)
			}
			return tok
		}
		// rob signs in through MusicBrainz (the connector's sealed client
		// secret goes to its token endpoint).
		robSignsIn := func(s *server, first bool) {
			t.Helper()
			mb.signIn(mbAccount{ID: 7, Name: "rob"})
			r := s.rp("player", "", "profile")
			br := travellerBrowser()
			landed, verifier := s.connectorFlow(t, br, r, "musicbrainz")
			if first {
				landed = welcome(t, br, landed, "rob")
			}
			finishAt(t, r, landed, verifier)
		}
		lbOpens := func(s *server) {
			t.Helper()
			u, _ := s.app.store.GetUser(ctx, tina.ID)
			if tok, err := s.app.accounts.ListenBrainzToken(u); err != nil || tok != lbToken {
				t.Fatalf("ListenBrainz token = %q, %v", tok, err)
			}
		}
		tokA := signIn(a, webSecret)
		verifyAccessToken(t, a.issuer, tokA.AccessToken)
		if tokA.RefreshToken == "" {
			t.Fatal("no refresh token")
		}
		robSignsIn(a, true)
		stopA()

		// Secret B, A as a previous secret: everything opens.
		bs, stopB := startAt(t, rotationConfig(t, addr, dbURL, lb.URL, rotationSecretB, rotationSecretA), clock)
		verifyAccessToken(t, bs.issuer, tokA.AccessToken)
		rb := bs.rp("web", webSecret, "profile", "offline_access")
		if _, err := rb.conf.TokenSource(rb.ctx, &oauth2.Token{RefreshToken: tokA.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); err != nil {
			t.Fatalf("refresh token and client secret made under the previous secret: %v", err)
		}
		signIn(bs, webSecret)
		robSignsIn(bs, false)
		lbOpens(bs)
		br := bs.browser()
		sf, verifier := toSecondFactor(t, br, rb, "tina")
		landed := submit(t, br, parseForm(t, sf.body, sf.url), map[string]string{"recovery_code": codes[0]})
		if idt, _ := finishAt(t, rb, landed, verifier); idt.Subject != tina.ID {
			t.Fatalf("recovery code made under the previous secret: sub %s", idt.Subject)
		}

		// tonearm reseal, while B serves; then again.
		env := envFunc(map[string]string{"TONEARM_DATABASE_URL": dbURL, "TONEARM_SECRET": rotationSecretB, "TONEARM_PREVIOUS_SECRETS": rotationSecretA})
		reseal := func(env func(string) string) (resealCounts, string, error) {
			var out, errOut bytes.Buffer
			err := run(ctx, []string{"reseal", "--json"}, env, nil, &out, &errOut)
			var n resealCounts
			if err == nil {
				if jerr := json.Unmarshal(out.Bytes(), &n); jerr != nil {
					t.Fatalf("reseal --json printed %q: %v", out.String(), jerr)
				}
			}
			return n, errOut.String(), err
		}
		n, _, err := reseal(env)
		if err != nil || n.SigningKeys < 2 || n.ConnectorSecrets != 1 || n.TOTPSecrets != 1 || n.ListenBrainzTokens != 1 {
			t.Fatalf("reseal = %+v, %v", n, err)
		}
		if n, _, err := reseal(env); err != nil || n != (resealCounts{}) {
			t.Fatalf("a second reseal = %+v, %v; want nothing changed", n, err)
		}
		events, err := bs.app.store.ListEvents(ctx, storage.EventFilter{Type: audit.SecretsResealed, Limit: 10})
		if err != nil || len(events) != 2 || events[0].Actor != "cli" {
			t.Fatalf("secrets.resealed events = %+v, %v; want one per run, by the command line", events, err)
		}
		signIn(bs, webSecret) // the running replica still serves
		stopB()

		// Secret B alone.
		cs, stopC := startAt(t, rotationConfig(t, addr, dbURL, lb.URL, rotationSecretB), clock)
		verifyAccessToken(t, cs.issuer, tokA.AccessToken)
		// Client secrets are keyed hashes: "web" authenticated while both
		// secrets were set, so its hash moved to B; "idle" did not, so it
		// needs a new secret.
		signIn(cs, webSecret)
		if st := clientCredentials(cs, idleSecret); st != http.StatusUnauthorized {
			t.Fatalf("a client secret never used during the rotation, under B alone: %d, want 401", st)
		}
		newSecret, err := cs.app.clients.RotateSecret(ctx, "idle", 0)
		if err != nil {
			t.Fatal(err)
		}
		clock.advance(fositestore.ClientCacheTTL + time.Second) // as another process's rotation is seen
		if st := clientCredentials(cs, newSecret); st != http.StatusOK {
			t.Fatalf("the rotated secret: %d", st)
		}
		robSignsIn(cs, false)
		lbOpens(cs)
		stopC()

		// Neither: the server and reseal refuse, naming what to set.
		if _, err := buildWith(ctx, rotationConfig(t, addr, dbURL, lb.URL, rotationSecretC), discardLogger(), options{noBackchannel: true}); err == nil ||
			!strings.Contains(err.Error(), "TONEARM_PREVIOUS_SECRETS") {
			t.Fatalf("start with an unknown secret: %v", err)
		}
		_, _, err = reseal(envFunc(map[string]string{"TONEARM_DATABASE_URL": dbURL, "TONEARM_SECRET": rotationSecretC, "TONEARM_PREVIOUS_SECRETS": rotationSecretA}))
		if err == nil || !strings.Contains(err.Error(), "neither TONEARM_SECRET nor one of TONEARM_PREVIOUS_SECRETS") || exitCode(err) != 1 {
			t.Fatalf("reseal under an unknown secret: %v", err)
		}
		// …and changed nothing: B alone still opens everything.
		if n, _, err := reseal(envFunc(map[string]string{"TONEARM_DATABASE_URL": dbURL, "TONEARM_SECRET": rotationSecretB})); err != nil || n != (resealCounts{}) {
			t.Fatalf("reseal with B after the refused one = %+v, %v", n, err)
		}
	})
}
