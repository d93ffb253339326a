package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage"
)

// busyAccounts answers every password check as the hashing queue does
// when it is full.
type busyAccounts struct{ SignInAccounts }

func (busyAccounts) Authenticate(context.Context, string, string, accounts.PasswordGuard) (storage.User, error) {
	return storage.User{}, accounts.ErrBusy
}

// countersUnused is a limiter store the test never reaches (busyAccounts
// does not consult the guard).
type countersUnused struct{ LoginFailureStore }

// A sign-in page refused because too many password checks are in progress
// answers as the User API does: 503 with Retry-After (the password was not
// judged), not 401 as if it were wrong.
func TestSignInBusyIs503(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	limiter, err := NewLoginLimiter(countersUnused{}, NewDeviceCookies([]byte(strings.Repeat("k", 32)), "http://127.0.0.1:8080", nil), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSignIn(busyAccounts{}, nil, limiter, "http://127.0.0.1:8080", nil, log)
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"username": {"alice"}, "password": {"correct-horse-42"}}
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	_, _, refusal := s.Check(w, r)
	if refusal == nil || refusal.Status != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("busy: refusal %+v, Retry-After %q; want 503 with Retry-After", refusal, w.Header().Get("Retry-After"))
	}
}
