package main

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/mail/mailtest"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// openVerifyLink opens a verification link as a person would: the page,
// then its button. It returns the page after the press.
func (s *server) openVerifyLink(browser *http.Client, token string) page {
	s.t.Helper()
	p := get(s.t, browser, s.issuer+web.VerifyEmailPath+"?token="+token)
	if p.status != http.StatusOK || !strings.Contains(p.body, "<button") {
		s.t.Fatalf("verification page = %d:\n%s", p.status, p.body)
	}
	return submit(s.t, browser, parseForm(s.t, p.body, p.url), nil)
}

func (s *server) emailVerified(id string) (string, bool) {
	s.t.Helper()
	u, err := s.app.store.GetUser(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return u.Email, u.EmailVerified
}

func TestEmailVerification(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		mailer := newCaptureMailer()
		clock := &offsetClock{}
		s := startE2E(t, dbURL, options{mailer: mailer, now: clock.now})
		s.admin("root")
		adminTok := s.userToken("root", "admin") // before the clock moves
		created := s.want(s.call(nil, http.MethodPost, "/api/User/createUser", "", map[string]any{
			"username": "vera", "password": e2ePassword, "email": "vera@example.org"}), http.StatusOK)
		id := created.body["user"].(string)
		first := mailer.verification(t)
		if first.to != "vera@example.org" || len(first.token) != 43 {
			t.Fatalf("verification mail = %+v", first)
		}

		// A mail scanner fetching the link verifies nothing.
		p := get(t, s.browser(), s.issuer+web.VerifyEmailPath+"?token="+first.token)
		if p.status != http.StatusOK || !strings.Contains(p.body, "Verify my email address") {
			t.Fatalf("link page = %d:\n%s", p.status, p.body)
		}
		if _, ok := s.emailVerified(id); ok {
			t.Fatal("opening the link verified the address")
		}
		// Nor does a POST without the page's CSRF token.
		resp, err := http.PostForm(s.issuer+web.VerifyEmailPath, map[string][]string{"token": {first.token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if _, ok := s.emailVerified(id); ok || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a forged POST = %d and verified %v", resp.StatusCode, ok)
		}

		// The owner presses the button: verified, once.
		if done := s.openVerifyLink(s.browser(), first.token); done.status != http.StatusOK || !strings.Contains(done.body, "is verified") {
			t.Fatalf("after the press = %d:\n%s", done.status, done.body)
		}
		if email, ok := s.emailVerified(id); !ok || email != "vera@example.org" {
			t.Fatalf("after verification: %q %v", email, ok)
		}
		if ev, _ := s.app.store.ListEvents(context.Background(), storage.EventFilter{Type: "email.verified", User: id, Limit: 5}); len(ev) != 1 {
			t.Fatalf("email.verified events: %d", len(ev))
		}
		again := s.openVerifyLink(s.browser(), first.token)
		if again.status != http.StatusBadRequest || !strings.Contains(again.body, "invalid, already used or expired") {
			t.Fatalf("a reused link = %d:\n%s", again.status, again.body)
		}

		// A change of address unverifies it and kills the older links.
		browser := s.loginBrowser("vera")
		s.want(s.call(browser, http.MethodPatch, "/api/me", "", map[string]any{"email": "vera2@example.org"}), http.StatusOK)
		second := mailer.verification(t)
		s.want(s.call(browser, http.MethodPost, "/api/me/email/verify", "", nil), http.StatusOK)
		third := mailer.verification(t)
		if second.to != "vera2@example.org" || third.to != "vera2@example.org" {
			t.Fatalf("mails went to %q and %q", second.to, third.to)
		}
		if _, ok := s.emailVerified(id); ok {
			t.Fatal("a new address is verified before its link is opened")
		}
		s.want(s.call(browser, http.MethodPatch, "/api/me", "", map[string]any{"email": "vera3@example.org"}), http.StatusOK)
		fourth := mailer.verification(t)
		if p := s.openVerifyLink(s.browser(), second.token); p.status != http.StatusBadRequest {
			t.Fatalf("a link to a former address = %d", p.status)
		}
		if email, ok := s.emailVerified(id); ok || email != "vera3@example.org" {
			t.Fatalf("after a dead link: %q %v", email, ok)
		}

		// An expired link changes nothing.
		clock.advance(accounts.VerifyTTL + time.Minute)
		if p := s.openVerifyLink(s.browser(), fourth.token); p.status != http.StatusBadRequest {
			t.Fatalf("an expired link = %d", p.status)
		}
		if _, ok := s.emailVerified(id); ok {
			t.Fatal("an expired link verified the address")
		}

		// Resending is limited (three per 15 minutes, the window begun
		// above long gone); a verified or missing address is refused.
		browser = s.loginBrowser("vera")
		for i := 0; i < 3; i++ {
			s.want(s.call(browser, http.MethodPost, "/api/me/email/verify", "", nil), http.StatusOK)
			mailer.verification(t)
		}
		s.want(s.call(browser, http.MethodPost, "/api/me/email/verify", "", nil), http.StatusTooManyRequests)
		s.user("nomail")
		s.want(s.call(s.loginBrowser("nomail"), http.MethodPost, "/api/me/email/verify", "", nil), http.StatusBadRequest)

		// Admins set it directly; an admin's change of address is mailed
		// unless they also say it is verified.
		s.want(s.call(nil, http.MethodPatch, "/api/admin/users/"+id, adminTok, map[string]any{"emailVerified": true}), http.StatusOK)
		if _, ok := s.emailVerified(id); !ok {
			t.Fatal("an admin could not verify the address")
		}
		s.want(s.call(nil, http.MethodPatch, "/api/admin/users/"+id, adminTok, map[string]any{"email": "vera4@example.org"}), http.StatusOK)
		if v := mailer.verification(t); v.to != "vera4@example.org" {
			t.Fatalf("admin change mailed %q", v.to)
		}
		s.want(s.call(nil, http.MethodPatch, "/api/admin/users/"+id, adminTok, map[string]any{"email": "vera5@example.org", "emailVerified": true}), http.StatusOK)
		if email, ok := s.emailVerified(id); !ok || email != "vera5@example.org" {
			t.Fatalf("admin-verified change: %q %v", email, ok)
		}
		select {
		case v := <-mailer.verifies:
			t.Fatalf("a verification mail went to an admin-verified address: %+v", v)
		case <-time.After(200 * time.Millisecond):
		}
		// vera's own requests are used up; another verified user is told so.
		done := s.user("done")
		setEmail(t, s, done.ID, "done@example.org")
		mailer.verification(t)
		s.want(s.call(nil, http.MethodPatch, "/api/admin/users/"+done.ID, adminTok, map[string]any{"emailVerified": true}), http.StatusOK)
		s.want(s.call(s.loginBrowser("done"), http.MethodPost, "/api/me/email/verify", "", nil), http.StatusConflict)
	})
}

var verifyLinkPattern = regexp.MustCompile(`/email/verify\?token=([A-Za-z0-9_-]{43})`)

// The real SMTP mailer delivers the link to a server on loopback.
func TestEmailVerificationOverSMTP(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		smtp := mailtest.Start(t, nil)
		s := startE2EConfig(t, dbURL, options{}, func(c *config.Config) {
			c.SMTPURL = "smtp://" + smtp.Addr() + "?from=tonearm@example.org&tls=none"
		})
		created := s.want(s.call(nil, http.MethodPost, "/api/User/createUser", "", map[string]any{
			"username": "smtpuser", "password": e2ePassword, "email": "smtpuser@example.org"}), http.StatusOK)
		var msg string
		select {
		case msg = <-smtp.Received:
		case <-time.After(15 * time.Second):
			t.Fatal("the SMTP stand-in received no mail")
		}
		m := verifyLinkPattern.FindStringSubmatch(msg)
		if m == nil || !strings.Contains(msg, "To: smtpuser@example.org") || !strings.Contains(msg, "Subject: Verify your tonearm email address") {
			t.Fatalf("mail = %q", msg)
		}
		s.openVerifyLink(s.browser(), m[1])
		if _, ok := s.emailVerified(created.body["user"].(string)); !ok {
			t.Fatal("the mailed link did not verify the address")
		}
	})
}
