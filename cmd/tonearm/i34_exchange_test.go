package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/totp"
	"github.com/tonearm-idp/tonearm/storage"
)

const (
	xListensAPI = "https://listens.example/api"
	xStatsAPI   = "https://stats.example/api"
)

// tokenExchange posts an RFC 8693 token exchange as an unmodified client does
// (x/oauth2 has no helper for it): the form, with the client's credentials
// in HTTP Basic.
func (s *server) tokenExchange(clientID, secret, subjectToken string, form url.Values) tokenReply {
	s.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("grant_type", provider.TokenExchangeGrant)
	form.Set("subject_token", subjectToken)
	if !form.Has("subject_token_type") {
		form.Set("subject_token_type", provider.AccessTokenType)
	}
	return s.post(provider.TokenPath, clientID, secret, form)
}

func wantExchangeError(t *testing.T, name string, got tokenReply, code string) {
	t.Helper()
	if got.status != http.StatusBadRequest || got.errorCode() != code || got.body["access_token"] != nil {
		t.Errorf("%s: %d %v, want 400 %s", name, got.status, got.body, code)
	}
}

// Token exchange (RFC 8693): an app's token for the listens API (and
// stats) is exchanged by the listens API's backend for a token to the stats
// API, narrower, no longer-lived, with the person's sign-in (acr,
// auth_time) and act; and everything the policy does not allow is refused.
func TestTokenExchange(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		clock := &offsetClock{}
		s := startE2E(t, dbURL, options{now: clock.now})
		s.app.provider.WithClock(clock.now)

		if _, err := s.app.apis.Create(ctx, apis.Spec{ID: xListensAPI, Scopes: []storage.APIScope{{Name: "listens:read"}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.app.apis.Create(ctx, apis.Spec{ID: xStatsAPI, Scopes: []storage.APIScope{{Name: "stats:read"}, {Name: "stats:write"}}}); err != nil {
			t.Fatal(err)
		}
		// The apps and services: the player (signs people in), the
		// listens API's backend (its resource server), the stats API's
		// backend, a stranger the stats API does not name, an outsider it
		// names but who never received the person's token.
		_, playerSecret := s.client(clients.Spec{ID: "player", FirstParty: true,
			Scopes: []string{"openid", "profile", "listens:read", "stats:read", "stats:write", "offline_access"}})
		cc := []string{"client_credentials"}
		_, backendSecret := s.client(clients.Spec{ID: "listens-backend", GrantTypes: cc, Scopes: []string{"stats:read", "stats:write"}})
		_, statsSecret := s.client(clients.Spec{ID: "stats-backend", GrantTypes: cc, Scopes: []string{"stats:read"}})
		_, strangerSecret := s.client(clients.Spec{ID: "stranger", GrantTypes: cc, Scopes: []string{"stats:read"}})
		_, outsiderSecret := s.client(clients.Spec{ID: "outsider", GrantTypes: cc, Scopes: []string{"stats:read"}})
		s.client(clients.Spec{ID: "spa", Public: true, FirstParty: true, Scopes: []string{"openid", "stats:read"}})
		_, diarySecret := s.client(clients.Spec{ID: "diary", FirstParty: true, Keys: clients.Keys{SubjectType: storage.SubjectPairwise},
			RedirectURIs: []string{"https://diary.example/cb"}, Scopes: []string{"openid", "listens:read", "stats:read"}})
		listensRS, statsRS, from := []string{"listens-backend", "stranger"}, []string{"stats-backend"}, []string{"listens-backend", "stats-backend"}
		if _, err := s.app.apis.Update(ctx, xListensAPI, apis.Update{Introspectors: &listensRS}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.app.apis.Update(ctx, xStatsAPI, apis.Update{Introspectors: &statsRS, ExchangeFrom: &from}); err != nil {
			t.Fatal(err)
		}
		// The admin API names the outsider too (exchangeFrom replaces the list).
		patch := s.call(nil, http.MethodPatch, apiPath(xStatsAPI), s.opsToken(), map[string]any{"exchangeFrom": []string{"listens-backend", "stats-backend", "outsider"}})
		if got := s.want(patch, http.StatusOK); strings.Join(asStrings(got.body["exchangeFrom"]), " ") != "listens-backend stats-backend outsider" {
			t.Fatalf("PATCH exchangeFrom = %v", got.body)
		}

		// Rita signs in to the player with two factors.
		rita := s.user("rita")
		key := giveTOTP(t, s, rita)
		r := s.rp("player", playerSecret, "profile", "listens:read", "stats:read", "stats:write", "offline_access")
		b := s.browser()
		sf, verifier := toSecondFactor(t, b, r, "rita")
		landed := submit(t, b, parseForm(t, sf.body, sf.url), map[string]string{"totp_code": totp.Code(key, totp.Step(time.Now())+1)})
		if landed.location == nil {
			t.Fatalf("second factor: %d\n%s", landed.status, landed.body)
		}
		tok, err := r.conf.Exchange(r.ctx, landed.location.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		subject := verifyAccessToken(t, s.issuer, tok.AccessToken)
		if subject["acr"] != accounts.ACRMultiFactor || subject["auth_time"] == nil || strings.Join(audOf(t, subject), " ") != xListensAPI+" "+xStatsAPI {
			t.Fatalf("subject token = %v", subject)
		}

		// The listens backend exchanges it for the stats API: all of its
		// scopes the token carries, that API alone, the same person and
		// sign-in, act naming the backend, never outliving the subject.
		got := s.tokenExchange("listens-backend", backendSecret, tok.AccessToken, url.Values{"resource": {xStatsAPI}})
		if got.status != http.StatusOK || got.body["issued_token_type"] != provider.AccessTokenType || !strings.EqualFold(got.body["token_type"].(string), "bearer") ||
			got.body["scope"] != "stats:read stats:write" || got.body["refresh_token"] != nil || got.body["id_token"] != nil || got.body["expires_in"].(float64) <= 0 {
			t.Fatalf("exchange = %d %v", got.status, got.body)
		}
		exchanged := got.body["access_token"].(string)
		x := verifyAccessToken(t, s.issuer, exchanged) // the target API's check: the JWKS
		act, _ := x["act"].(map[string]any)
		if strings.Join(audOf(t, x), " ") != xStatsAPI || x["scope"] != "stats:read stats:write" || x["sub"] != subject["sub"] || x["client_id"] != "listens-backend" ||
			x["acr"] != subject["acr"] || x["auth_time"] != subject["auth_time"] || act["sub"] != "listens-backend" || act["act"] != nil || x["exp"].(float64) > subject["exp"].(float64) {
			t.Fatalf("exchanged token = %v\nsubject %v", x, subject)
		}
		// A pairwise app's token: the exchanged token keeps its sub (the
		// exchanging service learns no other identifier of the person).
		diary := s.rp("diary", diarySecret, "listens:read", "stats:read")
		diary.conf.RedirectURL = "https://diary.example/cb"
		dv := oauth2.GenerateVerifier()
		dp := get(t, b, diary.conf.AuthCodeURL(random(t), oauth2.S256ChallengeOption(dv), oidc.Nonce(random(t))))
		if dp.location == nil || dp.location.Query().Get("code") == "" {
			t.Fatalf("diary sign-in: %d %v\n%s", dp.status, dp.location, dp.body)
		}
		dtok, err := diary.conf.Exchange(diary.ctx, dp.location.Query().Get("code"), oauth2.VerifierOption(dv))
		if err != nil {
			t.Fatal(err)
		}
		dsub := verifyAccessToken(t, s.issuer, dtok.AccessToken)["sub"]
		pw := s.tokenExchange("listens-backend", backendSecret, dtok.AccessToken, url.Values{"resource": {xStatsAPI}})
		if pw.status != http.StatusOK || dsub == rita.ID || verifyAccessToken(t, s.issuer, pw.body["access_token"].(string))["sub"] != dsub {
			t.Fatalf("exchange of a pairwise app's token (sub %v) = %d %v", dsub, pw.status, pw.body)
		}
		// Narrower scopes on request; audience by the audience parameter.
		narrow := s.tokenExchange("listens-backend", backendSecret, tok.AccessToken, url.Values{"audience": {xStatsAPI}, "scope": {"stats:read"}})
		if narrow.status != http.StatusOK || narrow.body["scope"] != "stats:read" || verifyAccessToken(t, s.issuer, narrow.body["access_token"].(string))["scope"] != "stats:read" {
			t.Fatalf("narrowed exchange = %d %v", narrow.status, narrow.body)
		}
		// The stats API's resource server introspects it.
		if in := s.introspect("stats-backend", statsSecret, exchanged); in.body["active"] != true || in.body["client_id"] != "listens-backend" {
			t.Fatalf("introspection of the exchanged token = %v", in.body)
		}

		// Half an hour later the stats backend, which received it,
		// exchanges it again: act nests the one before, and the new token
		// still ends when the subject token does.
		clock.advance(30 * time.Minute)
		again := s.tokenExchange("stats-backend", statsSecret, exchanged, url.Values{"resource": {xStatsAPI}})
		if again.status != http.StatusOK {
			t.Fatalf("second exchange = %d %v", again.status, again.body)
		}
		y := verifyAccessToken(t, s.issuer, again.body["access_token"].(string))
		outer, _ := y["act"].(map[string]any)
		inner, _ := outer["act"].(map[string]any)
		if outer["sub"] != "stats-backend" || inner["sub"] != "listens-backend" || inner["act"] != nil || y["sub"] != subject["sub"] ||
			y["scope"] != "stats:read" || y["acr"] != accounts.ACRMultiFactor || y["exp"].(float64) > x["exp"].(float64) {
			t.Fatalf("twice-exchanged token = %v", y)
		}

		// What the policy refuses.
		wantExchangeError(t, "a client the API does not name", s.tokenExchange("stranger", strangerSecret, tok.AccessToken, url.Values{"resource": {xStatsAPI}}), "unauthorized_client")
		wantExchangeError(t, "an unregistered target", s.tokenExchange("listens-backend", backendSecret, tok.AccessToken, url.Values{"resource": {"https://nope.example"}}), "invalid_target")
		wantExchangeError(t, "an API that takes no exchanged tokens", s.tokenExchange("listens-backend", backendSecret, tok.AccessToken, url.Values{"resource": {xListensAPI}}), "invalid_target")
		wantExchangeError(t, "two APIs at once", s.tokenExchange("listens-backend", backendSecret, tok.AccessToken, url.Values{"resource": {xStatsAPI}, "audience": {xListensAPI}}), "invalid_target")
		wantExchangeError(t, "a token for another audience", s.tokenExchange("outsider", outsiderSecret, tok.AccessToken, url.Values{"resource": {xStatsAPI}}), "invalid_request")
		wantExchangeError(t, "a scope the subject token lacks", s.tokenExchange("listens-backend", backendSecret, exchanged, url.Values{"resource": {xStatsAPI}, "scope": {"listens:read"}}), "invalid_scope")
		wantExchangeError(t, "a scope the client is not registered for", s.tokenExchange("stats-backend", statsSecret, exchanged, url.Values{"resource": {xStatsAPI}, "scope": {"stats:write"}}), "invalid_scope")
		wantExchangeError(t, "a refresh token as an access token", s.tokenExchange("player", playerSecret, tok.RefreshToken, url.Values{"resource": {xStatsAPI}}), "invalid_request")
		wantExchangeError(t, "a refresh token by its type", s.tokenExchange("listens-backend", backendSecret, tok.RefreshToken, url.Values{"resource": {xStatsAPI}, "subject_token_type": {provider.RefreshTokenType}}), "invalid_request")
		wantExchangeError(t, "an ID token", s.tokenExchange("listens-backend", backendSecret, tok.Extra("id_token").(string), url.Values{"resource": {xStatsAPI}, "subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}}), "invalid_request")
		wantExchangeError(t, "a forged token", s.tokenExchange("listens-backend", backendSecret, tok.AccessToken[:len(tok.AccessToken)-4]+"AAAA", url.Values{"resource": {xStatsAPI}}), "invalid_request")
		own := s.clientToken("listens-backend", backendSecret, "stats:read")
		wantExchangeError(t, "a client-credentials token (no person)", s.tokenExchange("listens-backend", backendSecret, own, url.Values{"resource": {xStatsAPI}}), "invalid_request")
		wantExchangeError(t, "requested_token_type refresh_token", s.tokenExchange("listens-backend", backendSecret, tok.AccessToken, url.Values{"resource": {xStatsAPI}, "requested_token_type": {provider.RefreshTokenType}}), "invalid_request")
		if pub := s.post(provider.TokenPath, "spa", "", url.Values{"client_id": {"spa"}, "grant_type": {provider.TokenExchangeGrant}, "subject_token": {tok.AccessToken},
			"subject_token_type": {provider.AccessTokenType}, "resource": {xStatsAPI}}); pub.errorCode() != "unauthorized_client" && pub.errorCode() != "invalid_client" {
			t.Errorf("a public client: %d %v", pub.status, pub.body)
		}
		if wrong := s.tokenExchange("listens-backend", "wrong-secret", tok.AccessToken, url.Values{"resource": {xStatsAPI}}); wrong.status != http.StatusUnauthorized || wrong.errorCode() != "invalid_client" {
			t.Errorf("a wrong secret: %d %v", wrong.status, wrong.body)
		}
		// An actor token must be the requesting client's own.
		if withActor := s.tokenExchange("listens-backend", backendSecret, tok.AccessToken, url.Values{"resource": {xStatsAPI}, "actor_token": {own}, "actor_token_type": {provider.AccessTokenType}}); withActor.status != http.StatusOK {
			t.Errorf("the client's own actor token: %d %v", withActor.status, withActor.body)
		}
		wantExchangeError(t, "someone else's actor token", s.tokenExchange("listens-backend", backendSecret, tok.AccessToken,
			url.Values{"resource": {xStatsAPI}, "actor_token": {s.clientToken("stats-backend", statsSecret, "stats:read")}, "actor_token_type": {provider.AccessTokenType}}), "invalid_request")

		// Each exchange is on record: who, for which API, whose token.
		events, err := s.app.store.ListEvents(ctx, storage.EventFilter{Type: audit.TokenExchanged, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 5 {
			t.Fatalf("%d token.exchanged events, want 5", len(events))
		}
		var detail struct {
			API           string   `json:"api"`
			Scopes        []string `json:"scopes"`
			SubjectClient string   `json:"subjectClient"`
		}
		found := false
		for _, e := range events {
			_ = json.Unmarshal(e.Detail, &detail)
			found = found || (e.User == rita.ID && e.Client == "stats-backend" && detail.API == xStatsAPI && slices.Equal(detail.Scopes, []string{"stats:read"}) && detail.SubjectClient == "listens-backend")
		}
		if !found {
			t.Fatalf("no event of the second exchange: %+v", events)
		}

		// A revoked subject token is exchanged no more, nor an expired one.
		if rv := s.post(provider.RevokePath, "player", playerSecret, url.Values{"token": {tok.AccessToken}}); rv.status != http.StatusOK {
			t.Fatalf("revoke: %d %v", rv.status, rv.body)
		}
		wantExchangeError(t, "a revoked subject token", s.tokenExchange("listens-backend", backendSecret, tok.AccessToken, url.Values{"resource": {xStatsAPI}}), "invalid_request")
		clock.advance(2 * time.Hour)
		wantExchangeError(t, "an expired subject token", s.tokenExchange("stats-backend", statsSecret, exchanged, url.Values{"resource": {xStatsAPI}}), "invalid_request")
	})
}
