package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// sectorServer serves sector_identifier_uri documents (OpenID Connect
// Core §8.1: a JSON array of redirect URIs) at http://localhost: another
// host than the redirect URIs' 127.0.0.1, so a client naming it is in
// another sector (http on loopback: the test issuer is loopback too).
type sectorServer struct {
	srv  *httptest.Server
	base string
	mu   sync.Mutex
	docs map[string][]string
}

func newSectorServer(t *testing.T) *sectorServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s := &sectorServer{docs: map[string][]string{}, base: "http://localhost:" + port}
	s.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		doc, ok := s.docs[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	})}}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// uri serves doc at path and returns its URL (set before the client that
// names it is registered).
func (s *sectorServer) uri(path string, doc ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs[path] = doc
	return s.base + path
}

// pairwiseSubs is what one client learns of a person's sub, from each
// place that tells it.
type pairwiseSubs struct {
	idToken, refreshed, userinfo, access, introspected string
	// refreshToken is the live one (after the refresh).
	refreshToken string
}

// subsOf signs the browser's person in to clientID and collects every sub
// the client is given.
func subsOf(t *testing.T, s *server, clientID, secret string, browser *http.Client, username string) pairwiseSubs {
	t.Helper()
	r := s.rp(clientID, secret, "offline_access")
	tok := s.codeFlow(r, browser, username)
	var got pairwiseSubs
	idt, err := r.verifier.Verify(r.ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("%s: ID token: %v", clientID, err)
	}
	got.idToken = idt.Subject
	info, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("%s: userinfo: %v", clientID, err)
	}
	got.userinfo = info.Subject
	got.access, _ = verifyAccessToken(t, s.issuer, tok.AccessToken)["sub"].(string)
	in := s.introspect(clientID, secret, tok.AccessToken)
	got.introspected, _ = in.body["sub"].(string)
	ref := s.refresh(clientID, secret, tok.RefreshToken, "")
	if ref.status != http.StatusOK {
		t.Fatalf("%s: refresh = %d %v", clientID, ref.status, ref.body)
	}
	rid, err := r.verifier.Verify(r.ctx, ref.body["id_token"].(string))
	if err != nil {
		t.Fatalf("%s: refreshed ID token: %v", clientID, err)
	}
	got.refreshed = rid.Subject
	got.refreshToken, _ = ref.body["refresh_token"].(string)
	return got
}

// one returns the sub every place agreed on, or fails.
func (p pairwiseSubs) one(t *testing.T, clientID string) string {
	t.Helper()
	for _, v := range []string{p.refreshed, p.userinfo, p.access, p.introspected} {
		if v != p.idToken || v == "" {
			t.Fatalf("%s: sub differs by place: ID token %q, refreshed %q, userinfo %q, access token %q, introspection %q",
				clientID, p.idToken, p.refreshed, p.userinfo, p.access, p.introspected)
		}
	}
	return p.idToken
}

// Two pairwise clients see different subs for one person, the same in the
// ID token (also refreshed), userinfo, the access token and introspection;
// a client of the same sector sees the same; a public client sees the user
// ID; a second replica computes the same subs.
func TestPairwiseSubjects(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		pia := s.user("pia")
		sectors := newSectorServer(t)
		scopes := []string{"openid", "profile", "offline_access", "account"}
		pairwise := func(id, sector string) string {
			_, secret := s.client(clients.Spec{ID: id, FirstParty: true, Scopes: scopes,
				Keys: clients.Keys{SubjectType: storage.SubjectPairwise, SectorIdentifierURI: sector}})
			return secret
		}
		alphaSecret := pairwise("alpha", sectors.uri("/shared.json", redirectURI))
		gammaSecret := pairwise("gamma", sectors.uri("/shared.json", redirectURI))
		betaSecret := pairwise("beta", "")
		_, pubSecret := s.client(clients.Spec{ID: "pub", FirstParty: true, Scopes: scopes})

		browser := s.browser()
		alpha := subsOf(t, s, "alpha", alphaSecret, browser, "pia").one(t, "alpha")
		beta := subsOf(t, s, "beta", betaSecret, browser, "").one(t, "beta")
		gamma := subsOf(t, s, "gamma", gammaSecret, browser, "").one(t, "gamma")
		pub := subsOf(t, s, "pub", pubSecret, browser, "").one(t, "pub")
		if pub != pia.ID {
			t.Fatalf("a public client's sub = %q, want the user ID %q", pub, pia.ID)
		}
		if alpha == pia.ID || beta == pia.ID || alpha == beta || strings.Contains(alpha+beta, pia.ID) {
			t.Fatalf("pairwise subs: alpha %q, beta %q, user %q; want two different subs, neither the user ID", alpha, beta, pia.ID)
		}
		if gamma != alpha {
			t.Fatalf("two clients of one sector: %q and %q", alpha, gamma)
		}
		// Another person gets other subs.
		s.user("quinn")
		if other := subsOf(t, s, "alpha", alphaSecret, s.browser(), "quinn").one(t, "alpha"); other == alpha {
			t.Fatal("two people share a pairwise sub")
		}

		// A second replica (a restart is the same: the key is read from
		// the database) gives the same subs, to the token it did not issue
		// and in the ID tokens it issues.
		b := s.second()
		betaToken := s.codeFlow(s.rp("beta", betaSecret), browser, "").AccessToken
		if in := b.introspect("beta", betaSecret, betaToken); in.body["sub"] != beta {
			t.Fatalf("replica B introspects beta's token as %d %v, want sub %q", in.status, in.body, beta)
		}
		again := subsOf(t, s, "alpha", alphaSecret, browser, "")
		if ref := b.refresh("alpha", alphaSecret, again.refreshToken, ""); ref.status != http.StatusOK ||
			idClaims(t, ref.body["id_token"].(string))["sub"] != alpha {
			t.Fatalf("replica B's refreshed ID token = %d %v, want sub %q", ref.status, ref.body, alpha)
		}
	})
}

// tonearm's own resource endpoints take a pairwise client's bearer token
// back to the person: /api/me, the User API, userinfo.
func TestPairwiseBearerTokensReachThePerson(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	rex := s.user("rex")
	_, secret := s.client(clients.Spec{ID: "app", FirstParty: true, Scopes: []string{"openid", "account"},
		Keys: clients.Keys{SubjectType: storage.SubjectPairwise}})
	tok := s.codeFlow(s.rp("app", secret, "account"), s.browser(), "rex")
	if sub := verifyAccessToken(t, s.issuer, tok.AccessToken)["sub"]; sub == rex.ID {
		t.Fatal("a pairwise client's access token carries the user ID")
	}
	me := s.want(s.call(nil, http.MethodGet, "/api/me", tok.AccessToken, nil), http.StatusOK)
	if me.body["username"] != "rex" {
		t.Fatalf("/api/me with a pairwise client's token = %s", me.raw)
	}
	// The client names the person by its sub (TestPairwiseFixAPIsSpeakTheClientsSub).
	s.want(s.call(nil, http.MethodPost, "/api/User/associateToken", tok.AccessToken,
		map[string]string{"user": verifyAccessToken(t, s.issuer, tok.AccessToken)["sub"].(string), "scrobbleToken": lbToken}), http.StatusOK)
	other := s.user("sam")
	s.want(s.call(nil, http.MethodPost, "/api/User/associateToken", tok.AccessToken,
		map[string]string{"user": other.ID, "scrobbleToken": lbToken}), http.StatusForbidden)

	// A pairwise client acting for itself (client credentials) names no
	// person: its sub stays its client_id.
	_, svcSecret := s.client(clients.Spec{ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"profile"},
		Keys: clients.Keys{SubjectType: storage.SubjectPairwise}})
	cc := s.post(provider.TokenPath, "svc", svcSecret, url.Values{"grant_type": {"client_credentials"}})
	access, _ := cc.body["access_token"].(string)
	if cc.status != http.StatusOK || verifyAccessToken(t, s.issuer, access)["sub"] != "svc" || s.introspect("svc", svcSecret, access).body["sub"] != "svc" {
		t.Fatalf("client credentials of a pairwise client: %d %v; want sub svc in the token and introspection", cc.status, cc.body)
	}
}

// promptNone asks clientID's authorization with prompt=none and hint in
// browser's session and returns the redirect's query.
func promptNone(t *testing.T, s *server, clientID, secret string, browser *http.Client, hint string) url.Values {
	t.Helper()
	r := s.rp(clientID, secret)
	p := get(t, browser, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oidc.Nonce(random(t)),
		oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("id_token_hint", hint)))
	if p.location == nil || p.location.Host != "127.0.0.1:1" {
		t.Fatalf("prompt=none for %s: %d %v\n%s", clientID, p.status, p.location, p.body)
	}
	return p.location.Query()
}

// An ID token of one pairwise client is no id_token_hint for another, at
// the authorization endpoint (prompt=none) nor at logout; a client's own
// hint works at both, ends the session from the relying party's server
// (no cookie), and the back-channel logout token carries its pairwise sub.
func TestPairwiseHintsAndLogout(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		tess := s.user("tess")
		rp := newRelyingParty(t)
		pairwise := clients.Keys{SubjectType: storage.SubjectPairwise}
		_, aSecret := s.client(clients.Spec{ID: "a", FirstParty: true, Keys: pairwise, BackchannelLogoutURI: rp.srv.URL + "/bc"})
		_, bSecret := s.client(clients.Spec{ID: "b", FirstParty: true, RedirectURIs: []string{"http://127.0.0.1:1/callback", "http://127.0.0.1:2/other"},
			Keys: clients.Keys{SubjectType: storage.SubjectPairwise, SectorIdentifierURI: newSectorServer(t).uri("/b.json", "http://127.0.0.1:1/callback", "http://127.0.0.1:2/other")}})
		browser := s.browser()
		aTok := s.codeFlow(s.rp("a", aSecret), browser, "tess")
		bTok := s.codeFlow(s.rp("b", bSecret), browser, "")
		aHint, bHint := aTok.Extra("id_token").(string), bTok.Extra("id_token").(string)
		aSub, sid := idClaims(t, aHint)["sub"].(string), idClaims(t, aHint)["sid"].(string)
		if bSub := idClaims(t, bHint)["sub"]; bSub == aSub {
			t.Fatalf("clients a and b share sub %q", aSub)
		}

		if q := promptNone(t, s, "a", aSecret, browser, aHint); q.Get("code") == "" {
			t.Fatalf("prompt=none with the client's own hint: %v", q)
		}
		for _, c := range []struct{ client, secret, hint string }{{"a", aSecret, bHint}, {"b", bSecret, aHint}} {
			if q := promptNone(t, s, c.client, c.secret, browser, c.hint); q.Get("error") != "login_required" || q.Get("code") != "" {
				t.Fatalf("prompt=none at %s with the other client's hint: %v, want login_required", c.client, q)
			}
		}

		// The claims parameter's sub value (OpenID Connect Core §3.1.2.2) is
		// compared as the client sees the person: a's pairwise sub is tess,
		// her user ID is not.
		claimsSub := func(sub string) url.Values {
			r := s.rp("a", aSecret)
			p := get(t, browser, r.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oidc.Nonce(random(t)),
				oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("claims", `{"id_token":{"sub":{"value":"`+sub+`"}}}`)))
			if p.location == nil {
				t.Fatalf("claims sub %s: %d\n%s", sub, p.status, p.body)
			}
			return p.location.Query()
		}
		if q := claimsSub(aSub); q.Get("code") == "" {
			t.Fatalf("claims sub = a's pairwise sub: %v", q)
		}
		if q := claimsSub(tess.ID); q.Get("error") != "login_required" {
			t.Fatalf("claims sub = the user ID at a pairwise client: %v, want login_required", q)
		}

		// At logout, b's hint does not speak for a.
		resp, err := http.Get(s.issuer + provider.LogoutPath + "?" + url.Values{"id_token_hint": {bHint}, "client_id": {"a"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("logout with b's hint for a = %d, want 400", resp.StatusCode)
		}
		signedIn := func() bool {
			return promptNone(t, s, "a", aSecret, browser, "").Get("code") != ""
		}
		if !signedIn() {
			t.Fatal("a refused logout ended the session")
		}
		// With the browser's cookie, a's own hint signs out without asking.
		withCookie := get(t, browser, s.issuer+provider.LogoutPath+"?"+url.Values{"id_token_hint": {aHint}}.Encode())
		if withCookie.status != http.StatusOK || strings.Contains(withCookie.body, `value="logout"`) || signedIn() {
			t.Fatalf("logout with a's own hint and the cookie: %d, still signed in %v\n%s", withCookie.status, signedIn(), withCookie.body)
		}
		verifyLogoutToken(t, s.issuer, rp.next(t), "a", aSub, sid)

		// From a's server, without the cookie: the session ends.
		browser = s.browser()
		aHint = s.codeFlow(s.rp("a", aSecret), browser, "tess").Extra("id_token").(string)
		resp, err = http.Get(s.issuer + provider.LogoutPath + "?" + url.Values{"id_token_hint": {aHint}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || signedIn() {
			t.Fatalf("backend logout with a's hint = %d, still signed in %v", resp.StatusCode, signedIn())
		}
		verifyLogoutToken(t, s.issuer, rp.next(t), "a", aSub, idClaims(t, aHint)["sid"].(string))
	})
}

// The pairwise key outlives a rotation of TONEARM_SECRET: a replica under
// the new secret alone, after tonearm reseal, gives the same sub.
func TestPairwiseSubjectSurvivesReseal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, addr := "sqlite://"+t.TempDir()+"/t.db", freeLoopbackAddr(t)
	clock, lb := newFrozenClock(), fakeListenBrainz(t)
	a, stopA := startAt(t, rotationConfig(t, addr, dbURL, lb.URL, rotationSecretA), clock)
	a.user("uma")
	_, secret := a.client(clients.Spec{ID: "app", FirstParty: true, Keys: clients.Keys{SubjectType: storage.SubjectPairwise}})
	sub := func(s *server) string {
		t.Helper()
		return idClaims(t, s.codeFlow(s.rp("app", secret), s.browser(), "uma").Extra("id_token").(string))["sub"].(string)
	}
	before := sub(a)
	stopA()
	var out, errOut strings.Builder
	if err := run(ctx, []string{"reseal", "--json"}, envFunc(map[string]string{"TONEARM_DATABASE_URL": dbURL,
		"TONEARM_SECRET": rotationSecretB, "TONEARM_PREVIOUS_SECRETS": rotationSecretA}), nil, &out, &errOut); err != nil {
		t.Fatalf("reseal: %v\n%s", err, errOut.String())
	}
	var n resealCounts
	if err := json.Unmarshal([]byte(out.String()), &n); err != nil || n.InstanceSecrets != 1 {
		t.Fatalf("reseal --json = %s, %v; want the pairwise key re-sealed", out.String(), err)
	}
	b, stopB := startAt(t, rotationConfig(t, addr, dbURL, lb.URL, rotationSecretB), clock)
	defer stopB()
	// Client secrets are keyed hashes that move when used (see
	// TestRotateSecret); this one was not used during the rotation.
	rotated, err := b.app.clients.RotateSecret(ctx, "app", 0)
	if err != nil {
		t.Fatal(err)
	}
	secret = rotated
	if after := sub(b); after != before || after == "" {
		t.Fatalf("sub after the secret rotation = %q, before %q", after, before)
	}
}

// freeLoopbackAddr is a loopback address no one listens on, for replicas
// started one after another at one issuer.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer free.Close()
	return free.Addr().String()
}

// The device grant gives a pairwise client its sub too (ID token, access
// token, userinfo): a client without redirect URIs is a sector of its own.
func TestPairwiseDeviceGrant(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	s.client(clients.Spec{ID: "tv", Public: true, RedirectURIs: []string{}, GrantTypes: []string{clients.DeviceCodeGrant}, Scopes: []string{"openid"},
		Keys: clients.Keys{SubjectType: storage.SubjectPairwise}})
	vic := s.user("vic")
	browser := s.browser()
	s.signInPage(t, browser, "vic")
	if st, start := s.deviceStart(t, "tv", "openid"); st != http.StatusOK {
		t.Fatalf("device authorization = %d %v", st, start)
	} else {
		s.decideDevice(t, browser, start["verification_uri_complete"].(string), "allow")
		st, tok := s.devicePoll(t, "tv", start["device_code"].(string))
		idToken, _ := tok["id_token"].(string)
		access, _ := tok["access_token"].(string)
		if st != http.StatusOK || idToken == "" {
			t.Fatalf("device token = %d %v", st, tok)
		}
		sub := idClaims(t, idToken)["sub"]
		info := s.want(s.call(nil, http.MethodGet, provider.UserinfoPath, access, nil), http.StatusOK)
		if sub == vic.ID || sub == "" || verifyAccessToken(t, s.issuer, access)["sub"] != sub || info.body["sub"] != sub {
			t.Fatalf("device grant subs: ID token %v, access token %v, userinfo %v; user %s", sub, verifyAccessToken(t, s.issuer, access)["sub"], info.body["sub"], vic.ID)
		}
	}
}

// sector_identifier_uri (OpenID Connect Core §8.1) is fetched at
// registration: a document that does not list every redirect URI, or that
// cannot be read, refuses the client and stores nothing; one that lists
// them passes (clients of one sector share subs: TestPairwiseSubjects); a
// pairwise client with several redirect hosts and no sector_identifier_uri
// is refused; so is an update adding a redirect URI the document lacks;
// RFC 7591 answers invalid_client_metadata.
func TestPairwiseSectorIdentifier(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{})
	sectors := newSectorServer(t)
	ctx := context.Background()
	const other = "http://127.0.0.1:3/cb"
	create := func(id, sector string, redirects ...string) error {
		_, _, err := s.app.clients.Create(ctx, clients.Spec{ID: id, FirstParty: true, RedirectURIs: redirects,
			Keys: clients.Keys{SubjectType: storage.SubjectPairwise, SectorIdentifierURI: sector}})
		return err
	}
	refused := func(what string, err error, id, want string) {
		t.Helper()
		if !fault.Is(err, fault.Invalid) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want a refusal saying %q", what, err, want)
		}
		i33mNoClient(t, s, id)
	}
	refused("a redirect URI missing from the document", create("partial", sectors.uri("/partial.json", redirectURI), redirectURI, other), "partial", other)
	refused("a document that is not there", create("gone", sectors.base+"/gone.json", redirectURI), "gone", "could not be read")
	refused("several redirect hosts without a sector", create("hosts", "", "https://a.example/cb", "https://b.example/cb"), "hosts", "several hosts")
	if err := create("whole", sectors.uri("/whole.json", redirectURI, other), redirectURI, other); err != nil {
		t.Fatalf("a document listing every redirect URI: %v", err)
	}
	_, err := s.app.clients.Update(ctx, "whole", func(sp *clients.Spec) { sp.RedirectURIs = append(sp.RedirectURIs, "http://127.0.0.1:5/cb") })
	if !fault.Is(err, fault.Invalid) || !strings.Contains(err.Error(), "http://127.0.0.1:5/cb") {
		t.Fatalf("an update adding a redirect URI the document lacks: %v", err)
	}
	if c, _ := s.app.store.GetClient(ctx, "whole"); len(c.RedirectURIs) != 2 {
		t.Fatalf("the refused update was stored: %v", c.RedirectURIs)
	}

	// RFC 7591: the developer's app, pairwise by default.
	s.user("dev")
	b := s.browser()
	s.signInPage(t, b, "dev")
	iat := initialTokenRe.FindStringSubmatch(submit(t, b, accountForm(t, get(t, b, s.issuer+"/developer"), "/developer/tokens"), map[string]string{"expires_days": "1"}).body)
	if iat == nil {
		t.Fatal("no initial access token")
	}
	status, body := s.registerJSON(t, iat[1], map[string]any{"client_name": "Joiner", "redirect_uris": []string{redirectURI, other},
		"sector_identifier_uri": sectors.uri("/joiner.json", redirectURI)})
	if desc, _ := body["error_description"].(string); status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" || !strings.Contains(desc, other) {
		t.Fatalf("RFC 7591 with a sector document lacking a redirect URI: %d %v", status, body)
	}
	status, body = s.registerJSON(t, iat[1], map[string]any{"client_name": "Joiner", "redirect_uris": []string{redirectURI, other},
		"sector_identifier_uri": sectors.uri("/joiner.json", redirectURI, other)})
	if status != http.StatusCreated || body["subject_type"] != "pairwise" {
		t.Fatalf("RFC 7591 with a whole sector document: %d %v", status, body)
	}
}
