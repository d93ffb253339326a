package main

import (
	"net/http"
	"strings"
	"testing"
)

// The User API's user defaults to the caller: a signed-in browser (or a
// token with the account scope) may leave it out.
func TestUserAPIUserDefaultsToTheCaller(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		s.user("implicit")
		browser := s.loginBrowser("implicit")
		got := s.want(s.call(browser, http.MethodPost, "/api/User/associateToken", "", map[string]any{"scrobbleToken": lbToken}), http.StatusOK)
		if got.body["listenBrainzName"] == "" || got.body["listenBrainzName"] == nil {
			t.Fatalf("associateToken without user = %s", got.raw)
		}
		s.want(s.call(browser, http.MethodPost, "/api/User/endSession", "", map[string]any{}), http.StatusOK)
		s.want(s.call(browser, http.MethodGet, "/api/me", "", nil), http.StatusUnauthorized)
		// Without credentials there is nobody to default to.
		if r := s.want(s.call(nil, http.MethodPost, "/api/User/endSession", "", map[string]any{}), http.StatusUnauthorized); !strings.Contains(r.errMsg(), "Sign in") {
			t.Fatalf("endSession without anyone = %q", r.errMsg())
		}
	})
}
