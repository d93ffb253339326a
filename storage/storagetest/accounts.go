package storagetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

func accountCases() []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"ProfileAndEmail", testProfileAndEmail},
		{"ListUsers", testListUsers},
		{"DeleteUserLeavesNothing", testDeleteUserLeavesNothing},
		{"LastAdmin", testLastAdmin},
		{"ConcurrentDemotions", testConcurrentDemotions},
		{"PasswordResets", testPasswordResets},
		{"ConcurrentConsume", testConcurrentConsume},
		{"EmailVerifications", testEmailVerifications},
		{"Language", testLanguage},
	}
}

func testProfileAndEmail(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("profiled")
	u.Email, u.EmailVerified, u.Name, u.Bio, u.Pronouns, u.Website = "Pro@Example.org", true, "Pro File", "bio", "they/them", "https://pro.example"
	mustCreate(t, s, u)
	got, err := s.GetUserByEmail(ctx, "pro@EXAMPLE.org")
	if err != nil || got.ID != u.ID || got.Email != "Pro@Example.org" || !got.EmailVerified || got.Name != "Pro File" ||
		got.Bio != "bio" || got.Pronouns != "they/them" || got.Website != "https://pro.example" || got.Disabled {
		t.Fatalf("GetUserByEmail = %+v, %v", got, err)
	}
	clash := newUser("other")
	clash.Email = "PRO@example.org"
	if err := s.CreateUser(ctx, clash); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicate email (other case) = %v, want ErrAlreadyExists", err)
	}
	// Users without email do not clash with each other.
	mustCreate(t, s, newUser("noemail1"))
	mustCreate(t, s, newUser("noemail2"))
	if _, err := s.GetUserByEmail(ctx, ""); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetUserByEmail(empty) = %v", err)
	}
	n1, _ := s.GetUserByUsername(ctx, "noemail1")
	if _, err := s.UpdateUser(ctx, n1.ID, func(x storage.User) (storage.User, error) { x.Email = "pro@example.ORG"; return x, nil }); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("update to a taken email = %v", err)
	}
	// Clearing an email frees it.
	if _, err := s.UpdateUser(ctx, u.ID, func(x storage.User) (storage.User, error) { x.Email = ""; return x, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateUser(ctx, n1.ID, func(x storage.User) (storage.User, error) { x.Email = "pro@example.org"; return x, nil }); err != nil {
		t.Fatalf("taking a freed email: %v", err)
	}
}

func testListUsers(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for i := 0; i < 7; i++ {
		u := newUser(fmt.Sprintf("list_%d", i))
		u.Email = fmt.Sprintf("l%d@list.example", i)
		if i%2 == 0 {
			u.Role = storage.RoleGuest
		}
		mustCreate(t, s, u)
	}
	mustCreate(t, s, newUser("listXother")) // "_" must not act as a wildcard
	mustCreate(t, s, newUser("zed"))
	page1, err := s.ListUsers(ctx, storage.UserFilter{UsernamePrefix: "LIST_", Limit: 4})
	if err != nil || len(page1) != 4 || page1[0].Username != "list_0" || page1[3].Username != "list_3" {
		t.Fatalf("page 1 = %v, %v", names(page1), err)
	}
	page2, err := s.ListUsers(ctx, storage.UserFilter{UsernamePrefix: "list_", Limit: 4, After: "list_3"})
	if err != nil || len(page2) != 3 || page2[0].Username != "list_4" {
		t.Fatalf("page 2 = %v, %v", names(page2), err)
	}
	guests, _ := s.ListUsers(ctx, storage.UserFilter{Role: storage.RoleGuest, Limit: 100})
	if len(guests) != 4 {
		t.Fatalf("guests = %v", names(guests))
	}
	byEmail, _ := s.ListUsers(ctx, storage.UserFilter{EmailPrefix: "L1@", Limit: 100})
	if len(byEmail) != 1 || byEmail[0].Username != "list_1" {
		t.Fatalf("email prefix = %v", names(byEmail))
	}
	pct, _ := s.ListUsers(ctx, storage.UserFilter{UsernamePrefix: "%", Limit: 100})
	if len(pct) != 0 {
		t.Fatalf("a %% prefix matched %v", names(pct))
	}
	// Prefixes are bytewise on every database: accents and punctuation are
	// characters like any other, and pages come in the same order.
	for _, n := range []string{"émile", "emile", "em-dash", "emz", "em"} {
		mustCreate(t, s, newUser(n))
	}
	em, _ := s.ListUsers(ctx, storage.UserFilter{UsernamePrefix: "EM", Limit: 100})
	if strings.Join(names(em), " ") != "em em-dash emile emz" {
		t.Fatalf("prefix em = %v", names(em))
	}
	acc, _ := s.ListUsers(ctx, storage.UserFilter{UsernamePrefix: "É", Limit: 100})
	if strings.Join(names(acc), " ") != "émile" {
		t.Fatalf("prefix é = %v", names(acc))
	}
}

func names(us []storage.User) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Username)
	}
	return out
}

func testDeleteUserLeavesNothing(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u, keep := newUser("leaving"), newUser("staying")
	mustCreate(t, s, u)
	mustCreate(t, s, keep)
	if err := s.CreateClient(ctx, newClient("app")); err != nil {
		t.Fatal(err)
	}
	for _, who := range []storage.User{u, keep} {
		if err := s.CreateSession(ctx, newSession(who.ID, now.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveConsent(ctx, storage.Consent{UserID: who.ID, ClientID: "app", Scopes: []string{"openid"}, GrantedAt: now}); err != nil {
			t.Fatal(err)
		}
		r := newRequest(storage.KindRefreshToken, "rt-"+who.Username, "req-"+who.Username, "app", now.Add(time.Hour))
		r.Subject = who.ID
		if err := s.CreateOAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.CreatePasswordReset(ctx, storage.PasswordReset{TokenHash: []byte("reset-" + who.Username), UserID: who.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("user survived")
	}
	if _, err := s.GetConsent(ctx, u.ID, "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("consent survived")
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindRefreshToken, "rt-leaving"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("refresh token survived")
	}
	if n, _ := s.DeleteUserSessions(ctx, u.ID); n != 0 {
		t.Fatal("sessions survived")
	}
	if _, err := s.ConsumePasswordReset(ctx, []byte("reset-leaving"), now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("password reset survived")
	}
	// The other user is untouched.
	if _, err := s.GetConsent(ctx, keep.ID, "app"); err != nil {
		t.Fatalf("other user's consent: %v", err)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindRefreshToken, "rt-staying"); err != nil {
		t.Fatalf("other user's token: %v", err)
	}
	if err := s.DeleteUser(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second DeleteUser = %v", err)
	}
	if n, err := s.DeleteOAuthRequestsBySubject(ctx, keep.ID); err != nil || n != 1 {
		t.Fatalf("DeleteOAuthRequestsBySubject = %d, %v", n, err)
	}
}

func promote(t *testing.T, s storage.Storage, name string) storage.User {
	u := newUser(name)
	u.Role = storage.RoleAdmin
	mustCreate(t, s, u)
	return u
}

func testLastAdmin(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	if n, _ := s.CountActiveAdmins(ctx); n != 0 {
		t.Fatalf("CountActiveAdmins on an empty store = %d", n)
	}
	a := promote(t, s, "admin_a")
	demote := func(x storage.User) (storage.User, error) { x.Role = storage.RoleUser; return x, nil }
	disable := func(x storage.User) (storage.User, error) { x.Disabled = true; return x, nil }
	if _, err := s.UpdateUser(ctx, a.ID, demote); !errors.Is(err, storage.ErrLastAdmin) {
		t.Fatalf("demoting the last admin = %v", err)
	}
	if _, err := s.UpdateUser(ctx, a.ID, disable); !errors.Is(err, storage.ErrLastAdmin) {
		t.Fatalf("disabling the last admin = %v", err)
	}
	if err := s.DeleteUser(ctx, a.ID); !errors.Is(err, storage.ErrLastAdmin) {
		t.Fatalf("deleting the last admin = %v", err)
	}
	// Profile edits of the last admin are fine.
	if _, err := s.UpdateUser(ctx, a.ID, func(x storage.User) (storage.User, error) { x.Bio = "still here"; return x, nil }); err != nil {
		t.Fatal(err)
	}
	b := promote(t, s, "admin_b")
	if n, _ := s.CountActiveAdmins(ctx); n != 2 {
		t.Fatalf("CountActiveAdmins = %d", n)
	}
	if _, err := s.UpdateUser(ctx, a.ID, demote); err != nil {
		t.Fatalf("demoting one of two admins: %v", err)
	}
	if err := s.DeleteUser(ctx, b.ID); !errors.Is(err, storage.ErrLastAdmin) {
		t.Fatalf("deleting the remaining admin = %v", err)
	}
}

// Two admins demote each other at once: one must fail.
func testConcurrentDemotions(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for round := 0; round < 3; round++ {
		a := promote(t, s, fmt.Sprintf("cd_a%d", round))
		b := promote(t, s, fmt.Sprintf("cd_b%d", round))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, u := range []storage.User{a, b} {
			wg.Add(1)
			go func(i int, id string) {
				defer wg.Done()
				_, errs[i] = s.UpdateUser(ctx, id, func(x storage.User) (storage.User, error) { x.Role = storage.RoleUser; return x, nil })
			}(i, u.ID)
		}
		wg.Wait()
		if n, _ := s.CountActiveAdmins(ctx); n < 1 {
			t.Fatalf("round %d: concurrent demotions left %d admins (errors %v)", round, n, errs)
		}
		// Reset for the next round: clear the remaining admin via a new one.
		for _, u := range []storage.User{a, b} {
			if err := func() error {
				fresh := promote(t, s, fmt.Sprintf("cd_keeper%d_%s", round, u.Username))
				_ = fresh
				_, err := s.UpdateUser(ctx, u.ID, func(x storage.User) (storage.User, error) { x.Role = storage.RoleUser; return x, nil })
				return err
			}(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func testPasswordResets(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("forgetful")
	mustCreate(t, s, u)
	tok := func() []byte { b := make([]byte, 32); _, _ = rand.Read(b); return b }
	live, other, old := tok(), tok(), tok()
	for _, r := range []storage.PasswordReset{
		{TokenHash: live, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute)},
		{TokenHash: other, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute)},
		{TokenHash: old, UserID: u.ID, CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute)},
	} {
		if err := s.CreatePasswordReset(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreatePasswordReset(ctx, storage.PasswordReset{TokenHash: tok(), UserID: "ghost", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("reset for a missing user = %v", err)
	}
	if _, err := s.ConsumePasswordReset(ctx, old, now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("expired reset = %v", err)
	}
	got, err := s.ConsumePasswordReset(ctx, live, now)
	if err != nil || got.UserID != u.ID {
		t.Fatalf("ConsumePasswordReset = %+v, %v", got, err)
	}
	if _, err := s.ConsumePasswordReset(ctx, live, now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("a reset token worked twice")
	}
	if _, err := s.ConsumePasswordReset(ctx, other, now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("the user's other reset token survived a completed reset")
	}
	stale := storage.PasswordReset{TokenHash: tok(), UserID: u.ID, CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute)}
	fresh := storage.PasswordReset{TokenHash: tok(), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	for _, r := range []storage.PasswordReset{stale, fresh} {
		if err := s.CreatePasswordReset(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeleteExpiredPasswordResets(ctx, now, 10); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredPasswordResets = %d, %v", n, err)
	}
}

// testConcurrentConsume: of concurrent consumers of one single-use token
// (a password reset, an email verification), exactly one wins.
func testConcurrentConsume(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("racer_reset")
	mustCreate(t, s, u)
	for name, c := range map[string]struct {
		create  func(h []byte) error
		consume func(h []byte) error
	}{
		"password reset": {
			func(h []byte) error {
				return s.CreatePasswordReset(ctx, storage.PasswordReset{TokenHash: h, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			},
			func(h []byte) error { _, err := s.ConsumePasswordReset(ctx, h, now); return err },
		},
		"email verification": {
			func(h []byte) error {
				return s.CreateEmailVerification(ctx, storage.EmailVerification{TokenHash: h, UserID: u.ID, Email: "r@example.org", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			},
			func(h []byte) error { _, err := s.ConsumeEmailVerification(ctx, h, now); return err },
		},
	} {
		h := []byte("concurrent-token-hash-" + name)
		if err := c.create(h); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Add(1)
			go func(i int) { defer wg.Done(); errs[i] = c.consume(h) }(i)
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
			} else if !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("%s: consume: %v", name, err)
			}
		}
		if wins != 1 {
			t.Fatalf("%s: %d concurrent consumers won, want 1", name, wins)
		}
	}
}

func testEmailVerifications(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("verifying")
	mustCreate(t, s, u)
	tok := func() []byte { b := make([]byte, 32); _, _ = rand.Read(b); return b }
	live, other, old, dropped := tok(), tok(), tok(), tok()
	for _, v := range []storage.EmailVerification{
		{TokenHash: live, UserID: u.ID, Email: "New@Example.org", CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)},
		{TokenHash: other, UserID: u.ID, Email: "new@example.org", CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)},
		{TokenHash: old, UserID: u.ID, Email: "old@example.org", CreatedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(-time.Minute)},
	} {
		if err := s.CreateEmailVerification(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateEmailVerification(ctx, storage.EmailVerification{TokenHash: tok(), UserID: "ghost", Email: "g@example.org", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("verification for a missing user = %v", err)
	}
	if _, err := s.ConsumeEmailVerification(ctx, old, now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("expired verification = %v", err)
	}
	got, err := s.ConsumeEmailVerification(ctx, live, now)
	if err != nil || got.UserID != u.ID || got.Email != "New@Example.org" || !got.ExpiresAt.Equal(now.Add(24*time.Hour).Truncate(time.Microsecond)) {
		t.Fatalf("ConsumeEmailVerification = %+v, %v", got, err)
	}
	if _, err := s.ConsumeEmailVerification(ctx, live, now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("a verification token worked twice")
	}
	if _, err := s.ConsumeEmailVerification(ctx, other, now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("the user's other verification survived a completed one")
	}
	// A change of address drops what is pending, and nothing of others.
	keep := newUser("verifying_too")
	mustCreate(t, s, keep)
	kept := tok()
	for _, v := range []storage.EmailVerification{
		{TokenHash: dropped, UserID: u.ID, Email: "a@example.org", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		{TokenHash: kept, UserID: keep.ID, Email: "b@example.org", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
	} {
		if err := s.CreateEmailVerification(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeleteUserEmailVerifications(ctx, u.ID); err != nil || n != 1 {
		t.Fatalf("DeleteUserEmailVerifications = %d, %v", n, err)
	}
	if _, err := s.ConsumeEmailVerification(ctx, dropped, now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("a dropped verification still works")
	}
	if err := s.CreateEmailVerification(ctx, storage.EmailVerification{TokenHash: tok(), UserID: keep.ID, Email: "b@example.org", CreatedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteExpiredEmailVerifications(ctx, now, 10); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredEmailVerifications = %d, %v", n, err)
	}
	if err := s.DeleteUser(ctx, keep.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeEmailVerification(ctx, kept, now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("a deleted user's verification survived")
	}
}

// testLanguage: the saved language (issue 35) round-trips through create,
// update and every lookup, and clears.
func testLanguage(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("polyglot")
	u.Email, u.Language = "poly@lang.example", "pt-BR"
	mustCreate(t, s, u)
	for _, get := range []func() (storage.User, error){
		func() (storage.User, error) { return s.GetUser(ctx, u.ID) },
		func() (storage.User, error) { return s.GetUserByUsername(ctx, "POLYGLOT") },
		func() (storage.User, error) { return s.GetUserByEmail(ctx, "poly@lang.example") },
	} {
		if got, err := get(); err != nil || got.Language != "pt-BR" {
			t.Fatalf("created: language %q, %v", got.Language, err)
		}
	}
	if got, err := s.UpdateUser(ctx, u.ID, func(x storage.User) (storage.User, error) { x.Language = "ja"; return x, nil }); err != nil || got.Language != "ja" {
		t.Fatalf("UpdateUser = %q, %v", got.Language, err)
	}
	if got, _ := s.GetUser(ctx, u.ID); got.Language != "ja" {
		t.Fatalf("after update: %q", got.Language)
	}
	if _, err := s.UpdateUser(ctx, u.ID, func(x storage.User) (storage.User, error) { x.Language = ""; return x, nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetUser(ctx, u.ID); got.Language != "" {
		t.Fatalf("cleared: %q", got.Language)
	}
	other := newUser("monoglot")
	mustCreate(t, s, other)
	if got, _ := s.GetUser(ctx, other.ID); got.Language != "" {
		t.Fatalf("never set: %q", got.Language)
	}
}
