package accounts

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/storage"
)

// recoveryLimits counts like the server's limiter: every attempt first,
// refused past max; a reservation given back is uncounted.
type recoveryLimits struct {
	mu                    sync.Mutex
	max                   int
	requests, resets, ver int
	owners                []bool // the owner flag of each reset request
	device                string // the known-device cookie's account
	epoch                 int64
}

func (l *recoveryLimits) count(n *int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	*n++
	if *n > l.max {
		return &ThrottledError{RetryAfter: time.Minute, Reason: "attempts"}
	}
	return nil
}

func (l *recoveryLimits) ResetRequest(_ context.Context, _ string, owner bool) error {
	l.owners = append(l.owners, owner)
	return l.count(&l.requests)
}

func (l *recoveryLimits) ResetToken(context.Context) (Reservation, error) {
	if err := l.count(&l.resets); err != nil {
		return nil, err
	}
	return giveBack{l, &l.resets}, nil
}

func (l *recoveryLimits) VerifyToken(context.Context) (Reservation, error) {
	if err := l.count(&l.ver); err != nil {
		return nil, err
	}
	return giveBack{l, &l.ver}, nil
}

func (l *recoveryLimits) KnownDevice() (string, int64) { return l.device, l.epoch }

type giveBack struct {
	l *recoveryLimits
	n *int
}

func (g giveBack) GiveBack(context.Context) {
	g.l.mu.Lock()
	defer g.l.mu.Unlock()
	*g.n--
}

// tokenMail keeps the last reset or verification token mailed.
type tokenMail struct {
	mu           sync.Mutex
	reset, link  string
	sent, linked chan struct{}
}

func (m *tokenMail) SendPasswordReset(_ context.Context, _, _, token string) error {
	m.mu.Lock()
	m.reset = token
	m.mu.Unlock()
	m.sent <- struct{}{}
	return nil
}

func (m *tokenMail) SendEmailVerification(_ context.Context, _, _, token string) error {
	m.mu.Lock()
	m.link = token
	m.mu.Unlock()
	m.linked <- struct{}{}
	return nil
}

// TestRecovery holds the reset and verification flows that the JSON API
// and the pages share: a bad email is refused before it is counted, the
// account's own browser is spared the per-email limit, the mail goes out
// after the answer, and only wrong tokens keep their count.
func TestRecovery(t *testing.T) {
	acc, store := newService(t)
	ctx := context.Background()
	mail := &tokenMail{sent: make(chan struct{}, 1), linked: make(chan struct{}, 1)}
	acc.mailer = mail
	u, err := acc.Create(ctx, NewUser{Username: "erin", Password: "old-password", Role: storage.RoleUser, Profile: ProfileUpdate{Email: Value("erin@example.org")}})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := NewRecovery(RecoveryConfig{Accounts: acc, Mailer: mail, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}

	lim := &recoveryLimits{max: 2}
	if err := rc.StartReset(ctx, "not-an-email", lim); !fault.Is(err, fault.Invalid) || lim.requests != 0 {
		t.Fatalf("bad email = %v, %d counted; want an invalid fault, none counted", err, lim.requests)
	}
	if err := rc.StartReset(ctx, "Erin@Example.org", lim); err != nil {
		t.Fatal(err)
	}
	select {
	case <-mail.sent:
	case <-time.After(10 * time.Second):
		t.Fatal("no reset mail")
	}
	// The browser the account signed in on is not held by the per-email
	// limit (its flag reaches the limiter); a stale epoch is a stranger.
	lim.device, lim.epoch = u.ID, u.DeviceEpoch
	_ = rc.StartReset(ctx, "erin@example.org", lim)
	<-mail.sent
	lim.epoch++
	if err := rc.StartReset(ctx, "erin@example.org", lim); !errors.As(err, new(*ThrottledError)) {
		t.Fatalf("third request = %v, want throttled", err)
	}
	if want := []bool{false, true, false}; len(lim.owners) != 3 || lim.owners[0] != want[0] || lim.owners[1] != want[1] || lim.owners[2] != want[2] {
		t.Fatalf("owner flags = %v, want %v", lim.owners, want)
	}

	// A wrong token keeps its count; the right one gives it back.
	if err := rc.FinishReset(ctx, "wrong-token", "new-password", lim); !errors.Is(err, ErrInvalidResetCode) || lim.resets != 1 {
		t.Fatalf("wrong token = %v, %d kept", err, lim.resets)
	}
	mail.mu.Lock()
	token := mail.reset
	mail.mu.Unlock()
	if err := rc.FinishReset(ctx, token, "new-password", lim); err != nil || lim.resets != 1 {
		t.Fatalf("right token = %v, %d kept; want nil, 1", err, lim.resets)
	}
	if _, err := acc.Authenticate(ctx, "erin", "new-password", nil); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	_ = rc.FinishReset(ctx, "wrong-token", "new-password", lim)
	if err := rc.FinishReset(ctx, token, "other-password", lim); !errors.As(err, new(*ThrottledError)) {
		t.Fatalf("past the limit = %v, want throttled before the token is looked at", err)
	}

	// Verification: the same rule.
	select {
	case <-mail.linked:
	case <-time.After(10 * time.Second):
		t.Fatal("no verification mail for the new account")
	}
	mail.mu.Lock()
	link := mail.link
	mail.mu.Unlock()
	if _, err := rc.VerifyEmail(ctx, "wrong-token", lim); !errors.Is(err, ErrInvalidVerification) || lim.ver != 1 {
		t.Fatalf("wrong verification token = %v, %d kept", err, lim.ver)
	}
	if v, err := rc.VerifyEmail(ctx, link, lim); err != nil || !v.EmailVerified || lim.ver != 1 {
		t.Fatalf("right verification token = %+v, %v, %d kept", v, err, lim.ver)
	}
	if got, _ := store.GetUser(ctx, u.ID); !got.EmailVerified {
		t.Fatal("the email is not verified")
	}
}
