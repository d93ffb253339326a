package main

import (
	"net/http"
	"sort"
	"strings"
	"testing"
)

// Issue 31 (limits2) item 1: a wrong current password typed anywhere
// (the /api/me password change and deletion, the account page's forms) is
// a signin.failed event for the account, saying where it was typed, as
// docs/security.md promises; only the sign-in's were recorded.
func TestWrongPasswordsEverywhereAreAudited(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s := startE2E(t, dbURL, options{})
		u := s.user("wanda")
		api := s.loginBrowser("wanda")
		s.want(s.call(api, http.MethodPost, "/api/me/password", "", map[string]string{"currentPassword": "wrong-password-1", "newPassword": "another-pass-99"}), http.StatusForbidden)
		s.want(s.call(api, http.MethodDelete, "/api/me", "", map[string]string{"password": "wrong-password-2"}), http.StatusForbidden)

		b := s.browser()
		s.signInPage(t, b, "wanda")
		f := accountForm(t, get(t, b, s.issuer+"/account"), "/account/password")
		if p := submit(t, b, f, map[string]string{"password_current": "wrong-password-3", "new_password": e2ePassword + "-new"}); p.status != http.StatusForbidden {
			t.Fatalf("/account/password with a wrong password: %d", p.status)
		}
		f = accountForm(t, get(t, b, s.issuer+"/account"), "/account/delete")
		if p := submit(t, b, f, map[string]string{"delete_password": "wrong-password-4", "confirm": "yes"}); p.status != http.StatusForbidden {
			t.Fatalf("/account/delete with a wrong password: %d", p.status)
		}

		var purposes []string
		for _, e := range eventsOf(s.events(t, "type=signin.failed&user="+u.ID)) {
			d, _ := e["detail"].(map[string]any)
			p, _ := d["purpose"].(string)
			purposes = append(purposes, p)
		}
		sort.Strings(purposes)
		if got := strings.Join(purposes, ","); got != "account_delete,account_delete,password_change,password_change" {
			t.Fatalf("signin.failed purposes = %q, want two password changes and two deletions", got)
		}
		if p := get(t, b, s.issuer+"/account"); strings.Count(p.body, "Wrong password entered") != 4 {
			t.Fatalf("the account's recent activity shows %d wrong passwords, want 4", strings.Count(p.body, "Wrong password entered"))
		}
	})
}
