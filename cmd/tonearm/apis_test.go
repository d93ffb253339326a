package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

const (
	listensAPI = "https://api.example.org/listens"
	statsAPI   = "https://api.example.org/stats"
)

func apiPath(id string) string { return "/api/admin/apis/" + url.PathEscape(id) }

func audOf(t *testing.T, claims map[string]any) []string {
	t.Helper()
	var out []string
	switch a := claims["aud"].(type) {
	case string:
		out = []string{a}
	case []any:
		for _, v := range a {
			out = append(out, v.(string))
		}
	}
	return out
}

// Registering APIs, and every way of doing it wrong.
func TestAPIRegistration(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		_, opsSecret := s.client(clients.Spec{ID: "ops", GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}})
		ops := s.clientToken("ops", opsSecret, "admin")
		listens := map[string]any{"id": listensAPI, "name": "Listens",
			"scopes": []map[string]string{{"name": "listens:read", "description": "Read your listens"}, {"name": "listens:write", "description": "Submit listens for you"}},
			"claims": []string{"role", "listenbrainz_name", "tier"}}
		created := s.want(s.call(nil, http.MethodPost, "/api/admin/apis", ops, listens), http.StatusOK)
		if created.body["id"] != listensAPI || created.body["builtin"] != false || len(created.body["scopes"].([]any)) != 2 {
			t.Fatalf("created = %s", created.raw)
		}
		for name, c := range map[string]struct {
			body   map[string]any
			status int
			says   string
		}{
			"relative id":        {map[string]any{"id": "/listens", "scopes": []map[string]string{{"name": "x:a"}}}, 400, "absolute URI"},
			"id with fragment":   {map[string]any{"id": "https://a.example/x#f", "scopes": []map[string]string{{"name": "x:a"}}}, 400, "fragment"},
			"tonearm's own":      {map[string]any{"id": s.issuer + "/api", "scopes": []map[string]string{{"name": "x:a"}}}, 400, "own API"},
			"no scopes":          {map[string]any{"id": "https://a.example/x"}, 400, "scopes"},
			"space in scope":     {map[string]any{"id": "https://a.example/x", "scopes": []map[string]string{{"name": "read all"}}}, 400, "RFC 6749"},
			"quote in scope":     {map[string]any{"id": "https://a.example/x", "scopes": []map[string]string{{"name": `x"y`}}}, 400, "RFC 6749"},
			"backslash in scope": {map[string]any{"id": "https://a.example/x", "scopes": []map[string]string{{"name": `x\y`}}}, 400, "RFC 6749"},
			"built-in scope":     {map[string]any{"id": "https://a.example/x", "scopes": []map[string]string{{"name": "openid"}}}, 400, "built in"},
			"tonearm's scope":    {map[string]any{"id": "https://a.example/x", "scopes": []map[string]string{{"name": "account"}}}, 409, "/api (one API owns a scope)"},
			"scope listed twice": {map[string]any{"id": "https://a.example/x", "scopes": []map[string]string{{"name": "x:a"}, {"name": "x:a"}}}, 400, "twice"},
			"scope of another":   {map[string]any{"id": "https://a.example/x", "scopes": []map[string]string{{"name": "x:a"}, {"name": "listens:read"}}}, 409, listensAPI},
			"duplicate id":       {map[string]any{"id": listensAPI, "scopes": []map[string]string{{"name": "x:a"}}}, 409, "already exists"},
			"shadowing claim":    {map[string]any{"id": "https://a.example/x", "scopes": []map[string]string{{"name": "x:a"}}, "claims": []string{"sub"}}, 400, "sub"},
			"the token as claim": {map[string]any{"id": "https://a.example/x", "scopes": []map[string]string{{"name": "x:a"}}, "claims": []string{"listenbrainz_token"}}, 400, "never"},
			"unknown field":      {map[string]any{"id": "https://a.example/x", "scopes": []map[string]string{{"name": "x:a"}}, "audience": "x"}, 400, "unknown field"},
		} {
			r := s.want(s.call(nil, http.MethodPost, "/api/admin/apis", ops, c.body), c.status)
			if !strings.Contains(r.errMsg(), c.says) {
				t.Errorf("%s: %q, want it to say %q", name, r.errMsg(), c.says)
			}
		}
		list := s.want(s.call(nil, http.MethodGet, "/api/admin/apis", ops, nil), http.StatusOK)
		if apis := list.body["apis"].([]any); len(apis) != 2 || apis[0].(map[string]any)["id"] != s.issuer+"/api" || apis[0].(map[string]any)["builtin"] != true {
			t.Fatalf("after refused creations: %s", list.raw)
		}
		got := s.want(s.call(nil, http.MethodGet, apiPath(listensAPI), ops, nil), http.StatusOK)
		if got.body["name"] != "Listens" || strings.Join(asStrings(got.body["claims"]), " ") != "role listenbrainz_name tier" {
			t.Fatalf("GET API = %s", got.raw)
		}
		s.want(s.call(nil, http.MethodGet, apiPath("https://nope.example"), ops, nil), http.StatusNotFound)
		s.want(s.call(nil, http.MethodGet, "/api/admin/apis", "", nil), http.StatusUnauthorized)

		// Clients: API scopes yes, undefined ones with a line saying how.
		_, _, err := s.app.clients.Create(context.Background(), clients.Spec{ID: "machine", GrantTypes: []string{"client_credentials"}, Scopes: []string{"api:read"}})
		if err == nil || !strings.Contains(err.Error(), `unknown scope "api:read"`) || !strings.Contains(err.Error(), "tonearm apis create") {
			t.Fatalf("client with an undefined scope: %v", err)
		}
		s.client(clients.Spec{ID: "machine", GrantTypes: []string{"client_credentials"}, Scopes: []string{"listens:read"}})

		// An API clients hold scopes of stays, naming them.
		r := s.want(s.call(nil, http.MethodDelete, apiPath(listensAPI), ops, nil), http.StatusConflict)
		if !strings.Contains(r.errMsg(), "machine") {
			t.Fatalf("refused delete says %q", r.errMsg())
		}
		s.want(s.call(nil, http.MethodDelete, apiPath(s.issuer+"/api"), ops, nil), http.StatusBadRequest)
		s.want(s.call(nil, http.MethodDelete, "/api/admin/clients/machine", ops, nil), http.StatusOK)
		s.want(s.call(nil, http.MethodDelete, apiPath(listensAPI), ops, nil), http.StatusOK)
		s.want(s.call(nil, http.MethodGet, apiPath(listensAPI), ops, nil), http.StatusNotFound)
	})
}

func asStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func (s *server) registerAPIs(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, spec := range []struct {
		id, scope, desc string
		claims          []string
	}{
		{listensAPI, "listens:read", "Read your listens", []string{"role", "listenbrainz_name", "tier"}},
		{statsAPI, "stats:read", "See your listening statistics", nil},
	} {
		if _, err := s.app.apis.Create(ctx, apisSpec(spec.id, spec.scope, spec.desc, spec.claims)); err != nil {
			t.Fatal(err)
		}
	}
}

// Tokens for APIs: aud, scopes, resource parameters, refresh, claims.
func TestAudienceBoundTokens(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.registerAPIs(t)
		ctx := context.Background()

		// client_credentials.
		_, secret := s.client(clients.Spec{ID: "machine", GrantTypes: []string{"client_credentials"}, Scopes: []string{"listens:read", "stats:read"}})
		cc := func(form url.Values) tokenReply {
			form.Set("grant_type", "client_credentials")
			return s.post(provider.TokenPath, "machine", secret, form)
		}
		tok := cc(url.Values{"scope": {"listens:read"}})
		if tok.status != http.StatusOK {
			t.Fatalf("client credentials = %d %v", tok.status, tok.body)
		}
		claims := verifyAccessToken(t, s.issuer, tok.body["access_token"].(string))
		if strings.Join(audOf(t, claims), " ") != listensAPI || claims["scope"] != "listens:read" || claims["role"] != nil {
			t.Fatalf("client-credentials token = %v", claims)
		}
		if in := s.introspect("machine", secret, tok.body["access_token"].(string)); strings.Join(asStrings(in.body["aud"]), " ") != listensAPI {
			t.Fatalf("introspection aud = %v", in.body["aud"])
		}
		both := verifyAccessToken(t, s.issuer, cc(url.Values{"scope": {"listens:read stats:read"}}).body["access_token"].(string))
		if strings.Join(audOf(t, both), " ") != listensAPI+" "+statsAPI {
			t.Fatalf("aud without resource = %v", both["aud"])
		}
		one := cc(url.Values{"scope": {"listens:read stats:read"}, "resource": {statsAPI}})
		oneClaims := verifyAccessToken(t, s.issuer, one.body["access_token"].(string))
		if strings.Join(audOf(t, oneClaims), " ") != statsAPI || oneClaims["scope"] != "stats:read" || one.body["scope"] != "stats:read" {
			t.Fatalf("resource=stats: %v %v", oneClaims, one.body)
		}
		for name, form := range map[string]url.Values{
			"unknown resource":     {"scope": {"listens:read"}, "resource": {"https://nope.example"}},
			"resource not granted": {"scope": {"listens:read"}, "resource": {statsAPI}},
			"tonearm's own API":    {"scope": {"listens:read"}, "resource": {s.issuer + "/api"}},
			"not a URI":            {"scope": {"listens:read"}, "resource": {"listens"}},
		} {
			if got := cc(form); got.status != http.StatusBadRequest || got.errorCode() != "invalid_target" {
				t.Errorf("%s: %d %v, want invalid_target", name, got.status, got.body)
			}
		}

		// The code flow, with consent naming the API scopes.
		u := s.user("lena")
		s.want(s.call(nil, http.MethodPatch, "/api/admin/users/"+u.ID, s.opsToken(), map[string]any{"claims": map[string]any{"tier": "gold", "seats": 3}}), http.StatusOK)
		if _, err := s.app.accounts.AssociateToken(ctx, u.ID, lbToken); err != nil {
			t.Fatal(err)
		}
		_, pSecret := s.client(clients.Spec{ID: "player", Scopes: []string{"openid", "profile", "listens:read", "stats:read", "offline_access"}})
		r := s.rp("player", pSecret, "listens:read", "stats:read", "offline_access")
		browser := s.browser()
		verifier := oauth2.GenerateVerifier()
		p := get(t, browser, r.conf.AuthCodeURL("state-00001", oauth2.S256ChallengeOption(verifier), oidc.Nonce(random(t)), oauth2.SetAuthURLParam("resource", listensAPI)))
		p = submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"username": "lena", "password": e2ePassword})
		if !strings.Contains(p.body, "Read your listens") || strings.Contains(p.body, "statistics") {
			t.Fatalf("consent page for resource=listens:\n%s", p.body)
		}
		p = submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"decision": "allow"})
		code := p.location.Query().Get("code")
		utok, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		uc := verifyAccessToken(t, s.issuer, utok.AccessToken)
		if strings.Join(audOf(t, uc), " ") != listensAPI || uc["scope"] != "openid listens:read offline_access" ||
			uc["role"] != "user" || uc["listenbrainz_name"] != "rob_listens" || uc["tier"] != "gold" || uc["seats"] != nil {
			t.Fatalf("user token for resource=listens = %v", uc)
		}
		raw, _ := json.Marshal(uc)
		if strings.Contains(string(raw), lbToken) || strings.Contains(string(raw), "listenbrainz_token") {
			t.Fatal("the ListenBrainz token is in an access token")
		}

		// Refresh keeps the audience; resource may narrow, never widen.
		again := s.refresh("player", pSecret, utok.RefreshToken, "")
		if again.status != http.StatusOK || strings.Join(audOf(t, verifyAccessToken(t, s.issuer, again.body["access_token"].(string))), " ") != listensAPI {
			t.Fatalf("refresh = %d %v", again.status, again.body)
		}
		wider := s.post(provider.TokenPath, "player", pSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {again.body["refresh_token"].(string)}, "resource": {statsAPI}})
		if wider.errorCode() != "invalid_target" {
			t.Fatalf("refresh widening to stats = %d %v", wider.status, wider.body)
		}

		// Without resource: every API whose scopes were granted; a refresh
		// may then ask for one.
		fv := oauth2.GenerateVerifier()
		fullBack := s.authorize(s.browser(), r.conf.AuthCodeURL("state-00003", oauth2.S256ChallengeOption(fv), oidc.Nonce(random(t))), "lena", true)
		full, err := r.conf.Exchange(r.ctx, fullBack.Query().Get("code"), oauth2.VerifierOption(fv))
		if err != nil {
			t.Fatal(err)
		}
		fc := verifyAccessToken(t, s.issuer, full.AccessToken)
		if strings.Join(audOf(t, fc), " ") != listensAPI+" "+statsAPI {
			t.Fatalf("aud without resource = %v", fc["aud"])
		}
		narrow := s.post(provider.TokenPath, "player", pSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {full.RefreshToken}, "resource": {statsAPI}})
		nc := verifyAccessToken(t, s.issuer, narrow.body["access_token"].(string))
		if strings.Join(audOf(t, nc), " ") != statsAPI || nc["scope"] != "openid stats:read offline_access" || nc["tier"] != nil {
			t.Fatalf("narrowed refresh = %v %v", nc, narrow.body)
		}
		if in := s.introspect("player", pSecret, narrow.body["access_token"].(string)); strings.Join(asStrings(in.body["aud"]), " ") != statsAPI || in.body["scope"] != "openid stats:read offline_access" {
			t.Fatalf("introspection of the narrowed token = %v", in.body)
		}
		// The new refresh token keeps the whole grant.
		back := s.refresh("player", pSecret, narrow.body["refresh_token"].(string), "")
		if strings.Join(audOf(t, verifyAccessToken(t, s.issuer, back.body["access_token"].(string))), " ") != listensAPI+" "+statsAPI {
			t.Fatalf("refresh after a narrowed one = %v", back.body)
		}

		// An unknown resource is refused before anyone signs in.
		p = get(t, s.browser(), r.conf.AuthCodeURL("state-00002", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", "https://nope.example")))
		if p.location == nil || p.location.Query().Get("error") != "invalid_target" {
			t.Fatalf("authorize with an unknown resource: %d %v", p.status, p.location)
		}

		// Discovery lists the API scopes.
		disco := s.want(s.call(nil, http.MethodGet, provider.DiscoveryPath, "", nil), http.StatusOK)
		if sc := strings.Join(asStrings(disco.body["scopes_supported"]), " "); !strings.Contains(sc, "listens:read") || !strings.Contains(sc, "stats:read") {
			t.Fatalf("scopes_supported = %s", sc)
		}
	})
}

// Custom claims on users: what an admin may set.
func TestUserCustomClaims(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		u := s.user("cora")
		ops := s.opsToken()
		path := "/api/admin/users/" + u.ID
		for name, c := range map[string]struct {
			claims any
			says   string
		}{
			"shadows sub":   {map[string]any{"sub": "x"}, `"sub"`},
			"shadows role":  {map[string]any{"role": "admin"}, `"role"`},
			"shadows scope": {map[string]any{"tier": 1, "scope": "admin"}, `"scope"`},
			"bad key":       {map[string]any{"9lives": 1}, `"9lives"`},
			"not an object": {[]string{"a"}, "JSON object"},
			"too big":       {map[string]any{"blob": strings.Repeat("x", 5000)}, "4096"},
		} {
			r := s.want(s.call(nil, http.MethodPatch, path, ops, map[string]any{"claims": c.claims, "bio": "changed"}), http.StatusBadRequest)
			if !strings.Contains(r.errMsg(), c.says) {
				t.Errorf("%s: %q, want it to name %s", name, r.errMsg(), c.says)
			}
		}
		if got, _ := s.app.store.GetUser(context.Background(), u.ID); got.Bio != "" || got.Claims != nil {
			t.Fatalf("a refused change was written: %+v", got)
		}
		set := s.want(s.call(nil, http.MethodPatch, path, ops, map[string]any{"claims": map[string]any{"tier": "gold", "plan": map[string]any{"seats": 2}}}), http.StatusOK)
		if c, _ := set.body["claims"].(map[string]any); c["tier"] != "gold" {
			t.Fatalf("admin view = %s", set.raw)
		}
		if me := s.want(s.call(s.loginBrowser("cora"), http.MethodGet, "/api/me", "", nil), http.StatusOK); strings.Contains(me.raw, "gold") {
			t.Fatalf("custom claims shown to the user: %s", me.raw)
		}
		cleared := s.want(s.call(nil, http.MethodPatch, path, ops, map[string]any{"claims": nil}), http.StatusOK)
		if _, has := cleared.body["claims"]; has {
			t.Fatalf("null did not clear the claims: %s", cleared.raw)
		}
	})
}

func (s *server) opsToken() string {
	s.t.Helper()
	id := "ops-" + random(s.t)[:6]
	_, secret := s.client(clients.Spec{ID: id, GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}})
	return s.clientToken(id, secret, "admin")
}

func apisSpec(id, scope, desc string, claims []string) apis.Spec {
	return apis.Spec{ID: id, Scopes: []storage.APIScope{{Name: scope, Description: desc}}, Claims: claims}
}
