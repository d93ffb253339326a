package accounts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/sqlitetest"
)

type noValidator struct{}

func (noValidator) ValidateToken(context.Context, string) (string, bool, error) {
	return "", false, nil
}

func newService(t *testing.T) (*Service, *sqlstore.Store) {
	t.Helper()
	store := sqlitetest.Open(t)
	box, _ := seal.New(seal.DeriveKey([]byte(strings.Repeat("s", 32)), "t"))
	s, err := New(Config{Store: store, Hasher: NewHasher(testParams, 0, 100), Validator: noValidator{}, Box: box})
	if err != nil {
		t.Fatal(err)
	}
	return s, store
}

func TestBootstrapCode(t *testing.T) {
	s, store := newService(t)
	ctx := context.Background()
	b, code, err := NewBootstrap(ctx, store)
	if err != nil || len(code) != 6 {
		t.Fatalf("NewBootstrap = %q, %v", code, err)
	}
	// Concurrent uses of the right code create exactly one admin.
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = s.CreateAdmin(ctx, b, code, NewUser{Username: fmt.Sprintf("admin%d", i), Password: "admin-password"})
		}(i)
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, ErrBadSecurityCode) && !errors.Is(err, ErrAdminExists) {
			t.Fatal(err)
		}
	}
	if n, _ := store.CountActiveAdmins(ctx); ok != 1 || n != 1 {
		t.Fatalf("%d successes, %d admins; want exactly one", ok, n)
	}
	if _, code2, _ := NewBootstrap(ctx, store); code2 != "" {
		t.Fatal("a code was made although an admin exists")
	}
}

func TestBootstrapCodeBurns(t *testing.T) {
	s, store := newService(t)
	ctx := context.Background()
	b, code, _ := NewBootstrap(ctx, store)
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	for i := 0; i < maxCodeFailures; i++ {
		if _, err := s.CreateAdmin(ctx, b, wrong, NewUser{Username: "root", Password: "admin-password"}); !errors.Is(err, ErrBadSecurityCode) {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateAdmin(ctx, b, code, NewUser{Username: "root", Password: "admin-password"}); !errors.Is(err, ErrBadSecurityCode) {
		t.Fatalf("the right code after %d wrong guesses = %v, want it burned", maxCodeFailures, err)
	}
}

func TestValidateEmail(t *testing.T) {
	for _, good := range []string{"a@b.example", "first.last+tag@sub.example.org"} {
		if err := ValidateEmail(good); err != nil {
			t.Errorf("%q refused: %v", good, err)
		}
	}
	for _, bad := range []string{"", "plain", "a@b", "A <a@b.example>", "a@b.example\r\nBcc: x@y.example", strings.Repeat("a", 250) + "@b.example", "a b@c.example"} {
		if err := ValidateEmail(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCreateWithProfile(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	u, err := s.Create(ctx, NewUser{Username: "pp1", Password: "password-1", Role: storage.RoleUser,
		Profile: ProfileUpdate{Email: Value("P1@example.org"), Name: Value("Person One")}})
	if err != nil || u.Email != "P1@example.org" || u.Name != "Person One" {
		t.Fatalf("Create = %+v, %v", u, err)
	}
	if _, err := s.Create(ctx, NewUser{Username: "pp2", Password: "password-2", Role: storage.RoleUser, Profile: ProfileUpdate{Email: Value("p1@EXAMPLE.org")}}); !errors.Is(err, ErrEmailTaken) {
		t.Fatalf("taken email = %v", err)
	}
	// Sign-in by email; a disabled account is refused only after the password.
	if _, err := s.Authenticate(ctx, "p1@example.org", "password-1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdminUpdate(ctx, u.ID, AdminChange{Disabled: ptrTo(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "pp1", "wrong-password", nil); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("disabled + wrong password = %v, want ErrInvalidCredentials", err)
	}
	if _, err := s.Authenticate(ctx, "pp1", "password-1", nil); !errors.Is(err, ErrDisabled) {
		t.Fatalf("disabled + right password = %v, want ErrDisabled", err)
	}
}

func ptrTo[T any](v T) *T { return &v }

// Raising the parameters later: an old hash still verifies and is replaced
// by one with the new parameters at the next successful sign-in.
func TestRehashOnStaleParameters(t *testing.T) {
	s, store := newService(t)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, "oldhash", "password-1", storage.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	stronger := HashParams{Memory: 128, Time: 2, Threads: 1}
	s.hasher = NewHasher(stronger, 0, 10)
	if _, err := s.Authenticate(ctx, "oldhash", "password-1", nil); err != nil {
		t.Fatal(err)
	}
	got, _ := store.GetUser(ctx, u.ID)
	if !strings.HasPrefix(got.PasswordHash, "$argon2id$v=19$m=128,t=2,p=1$") {
		t.Fatalf("hash after sign-in = %q, want the new parameters", got.PasswordHash)
	}
	if _, err := s.Authenticate(ctx, "oldhash", "password-1", nil); err != nil {
		t.Fatalf("sign-in with the upgraded hash: %v", err)
	}
}

type keepMailer struct{ token string }

func (m *keepMailer) SendPasswordReset(_ context.Context, _, _, token string) error {
	m.token = token
	return nil
}

func (m *keepMailer) SendEmailVerification(context.Context, string, string, string) error { return nil }

// A reset that fails (here: every hashing slot is taken, as in a burst of
// logins, or the request is gone) spends nothing: the token still works
// afterwards, exactly once, and the old password stays until then.
func TestResetPasswordIsAllOrNothing(t *testing.T) {
	s, store := newService(t)
	ctx := context.Background()
	u, err := s.Create(ctx, NewUser{Username: "erin", Password: "old-password", Role: storage.RoleUser, Profile: ProfileUpdate{Email: Value("erin@example.org")}})
	if err != nil {
		t.Fatal(err)
	}
	_, sessToken, _, err := s.StartSession(ctx, "erin", "old-password", nil, Origin{})
	if err != nil {
		t.Fatal(err)
	}
	var m keepMailer
	if err := s.RequestPasswordReset(ctx, "erin@example.org", &m); err != nil || m.token == "" {
		t.Fatalf("RequestPasswordReset: %v, token %q", err, m.token)
	}
	// Fill the hashing queue, as a burst of logins would.
	var held int
	for len(s.hasher.waiting) < cap(s.hasher.waiting) {
		s.hasher.waiting <- struct{}{}
		held++
	}
	if err := s.ResetPassword(ctx, m.token, "new-password"); !errors.Is(err, ErrBusy) {
		t.Fatalf("reset with the hashing queue full: %v, want ErrBusy", err)
	}
	for ; held > 0; held-- {
		<-s.hasher.waiting
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.ResetPassword(gone, m.token, "new-password"); err == nil {
		t.Fatal("reset with a cancelled request succeeded")
	}
	if _, err := s.Authenticate(ctx, "erin", "old-password", nil); err != nil {
		t.Fatalf("old password after the failed reset: %v", err)
	}
	if _, _, err := s.SessionUser(ctx, sessToken); err != nil {
		t.Fatalf("session after the failed reset: %v", err)
	}
	if err := s.ResetPassword(ctx, m.token, "new-password"); err != nil {
		t.Fatalf("reset after the failed one: %v", err)
	}
	if err := s.ResetPassword(ctx, m.token, "other-password"); !errors.Is(err, ErrInvalidResetCode) {
		t.Fatalf("second use of the token: %v", err)
	}
	if _, err := s.Authenticate(ctx, "erin", "new-password", nil); err != nil {
		t.Fatalf("new password: %v", err)
	}
	if n, _ := store.DeleteUserSessions(ctx, u.ID); n != 0 {
		t.Fatalf("%d sessions survived the reset", n)
	}
}
