package web

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/sqlitetest"
)

// The limiter on the real SQLite store, on a clock that moves only when
// told: the counters, windows and messages the end-to-end tests meet
// through pages, here without a server.

type limiterClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *limiterClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *limiterClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var deviceKey = bytes.Repeat([]byte("d"), 32)

// newLimiter returns a limiter over a fresh store, on a clock that moves
// only when told.
func newLimiter(t *testing.T) (*LoginLimiter, *limiterClock) {
	t.Helper()
	clk := &limiterClock{t: time.Unix(1_800_000_000, 0)}
	return limiterOn(t, sqlitetest.Open(t), clk), clk
}

// limiterOn returns a limiter over store: two on one store are two
// replicas.
func limiterOn(t *testing.T, store LoginFailureStore, clk *limiterClock) *LoginLimiter {
	t.Helper()
	l, err := NewLoginLimiter(store, NewDeviceCookies(deviceKey, "http://id.example", clk.now), slog.New(slog.NewTextHandler(io.Discard, nil)), clk.now)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func requestFrom(addr string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.RemoteAddr = addr + ":40000"
	return r
}

// throttled returns the wait of a refusal (ok false when err is not one).
func throttled(err error) (*accounts.ThrottledError, bool) {
	var te *accounts.ThrottledError
	return te, errors.As(err, &te)
}

func TestNewLoginLimiterRefusesMissingParts(t *testing.T) {
	t.Parallel()
	d := NewDeviceCookies(deviceKey, "http://id.example", nil)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := NewLoginLimiter(nil, d, log, nil); err == nil {
		t.Error("no store accepted")
	}
	if _, err := NewLoginLimiter(sqlitetest.Open(t), nil, log, nil); err == nil {
		t.Error("no device cookies accepted")
	}
	if _, err := NewLoginLimiter(sqlitetest.Open(t), d, nil, nil); err == nil {
		t.Error("no logger accepted")
	}
}

// TestCountFirstWindow: a limit admits Max attempts per subject in its
// window; the next is refused with the window's remaining time and the
// limit's message; another subject has its own count; the window's end
// admits again.
func TestCountFirstWindow(t *testing.T) {
	t.Parallel()
	l, clk := newLimiter(t)
	ctx := context.Background()
	r := requestFrom("192.0.2.1")
	for i := range LimitSignup.Max {
		if err := l.Signup(ctx, r); err != nil {
			t.Fatalf("sign-up %d: %v", i+1, err)
		}
	}
	clk.advance(time.Minute)
	te, ok := throttled(l.Signup(ctx, r))
	if !ok || te.RetryAfter != LimitSignup.Window-time.Minute || te.Reason != LimitSignup.Reason {
		t.Fatalf("sign-up past the limit = %+v", te)
	}
	if err := l.Signup(ctx, requestFrom("192.0.2.2")); err != nil {
		t.Fatalf("another address: %v", err)
	}
	clk.advance(LimitSignup.Window - time.Minute)
	if err := l.Signup(ctx, r); err != nil {
		t.Fatalf("a new window: %v", err)
	}
}

// TestCountFirstUnderConcurrency: of many attempts at once, at most the
// limit get through, whichever replica they reach. A check that reads the
// count before recording it let every attempt in flight through.
func TestCountFirstUnderConcurrency(t *testing.T) {
	t.Parallel()
	a, clk := newLimiter(t)
	b := limiterOn(t, a.store, clk) // another replica, same database
	ctx := context.Background()
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for i := range 3 * LimitOpenRegistration.Max {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := a
			if i%2 == 1 {
				l = b
			}
			err := l.OpenRegistration(ctx, requestFrom("198.51.100.7"))
			if err == nil {
				admitted.Add(1)
			} else if _, ok := throttled(err); !ok {
				t.Errorf("attempt %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if n := int(admitted.Load()); n != LimitOpenRegistration.Max {
		t.Fatalf("%d attempts admitted at once, want %d", n, LimitOpenRegistration.Max)
	}
}

// TestTwoLimitsOneAttempt: an attempt counted under two limits is refused
// by whichever is past its bound: the verification mail per account (3)
// before the address (10), and the address for every account.
func TestTwoLimitsOneAttempt(t *testing.T) {
	t.Parallel()
	l, _ := newLimiter(t)
	ctx := context.Background()
	r := requestFrom("203.0.113.5")
	for range LimitVerifyMail.Max {
		if err := l.VerificationMail(ctx, r, "u-1"); err != nil {
			t.Fatal(err)
		}
	}
	if te, ok := throttled(l.VerificationMail(ctx, r, "u-1")); !ok || te.Reason != LimitVerifyMail.Reason {
		t.Fatalf("a fourth mail for one account = %+v", te)
	}
	// Four attempts so far from the address; six other accounts take it
	// to ten, the next is refused whoever asks.
	for i := range LimitVerifyMailAddr.Max - LimitVerifyMail.Max - 1 {
		if err := l.VerificationMail(ctx, r, "u-"+string(rune('a'+i))); err != nil {
			t.Fatalf("account %d: %v", i, err)
		}
	}
	if _, ok := throttled(l.VerificationMail(ctx, r, "u-new")); !ok {
		t.Fatal("past the address's limit, a new account's mail went through")
	}
}

// TestReservationGiveBack: only wrong guesses use up the security code's
// limit: a reservation given back is as if never made.
func TestReservationGiveBack(t *testing.T) {
	t.Parallel()
	l, _ := newLimiter(t)
	ctx := context.Background()
	r := requestFrom("192.0.2.9")
	for range 3 * LimitSecurityCode.Max { // right codes, or refusals for another reason
		res, err := l.SecurityCode(ctx, r)
		if err != nil {
			t.Fatalf("a guess given back still counted: %v", err)
		}
		res.GiveBack(ctx)
		res.GiveBack(ctx) // once only
	}
	for i := range LimitSecurityCode.Max { // wrong codes keep theirs
		if _, err := l.SecurityCode(ctx, r); err != nil {
			t.Fatalf("wrong code %d: %v", i+1, err)
		}
	}
	if te, ok := throttled(func() error { _, err := l.SecurityCode(ctx, r); return err }()); !ok || te.Reason != LimitSecurityCode.Reason {
		t.Fatalf("past the wrong codes' limit = %+v", te)
	}
	var zero Reservation
	zero.GiveBack(ctx) // a refused attempt's zero reservation does nothing
}

// TestResetRequestOwnerSparedPerEmail: a stranger's requests use up the
// per-email limit; the owner's known browser is not held to it (only to
// the address's).
func TestResetRequestOwnerSparedPerEmail(t *testing.T) {
	t.Parallel()
	l, _ := newLimiter(t)
	ctx := context.Background()
	stranger := requestFrom("198.51.100.1")
	for range LimitResetEmail.Max {
		if err := l.ResetRequest(ctx, stranger, "Ann@Example.org", false); err != nil {
			t.Fatal(err)
		}
	}
	// Case does not make another email.
	if _, ok := throttled(l.ResetRequest(ctx, requestFrom("198.51.100.2"), "ann@example.org", false)); !ok {
		t.Fatal("the per-email limit did not hold for another address")
	}
	if err := l.ResetRequest(ctx, requestFrom("192.0.2.3"), "ann@example.org", true); err != nil {
		t.Fatalf("the owner's browser: %v", err)
	}
}

// guardFrom is the password guard of a request from addr, carrying the
// known-device cookie of userID when userID is not "".
func (l *LoginLimiter) guardFrom(addr, userID string) accounts.PasswordGuard {
	r := requestFrom(addr)
	if userID != "" {
		rec := httptest.NewRecorder()
		l.devices.Set(rec, userID, 0)
		for _, c := range rec.Result().Cookies() {
			r.AddCookie(c)
		}
	}
	return l.Guard(r)
}

// TestPasswordGuardPair: ten wrong passwords per address and account, then
// the address waits for the window; the owner's right password forgets
// the address's wrong ones; a wrong code counts on its own counter.
func TestPasswordGuardPair(t *testing.T) {
	t.Parallel()
	l, _ := newLimiter(t)
	ctx := context.Background()
	ann := accounts.Attempt{Account: "u-ann"}
	wrong := func(addr string, a accounts.Attempt) error {
		g := l.guardFrom(addr, "u-ann") // the owner's browser: no account wait
		if err := g.Allow(ctx, a); err != nil {
			return err
		}
		g.Failed(ctx, a)
		return nil
	}
	for i := range maxFailuresPerPair - 1 {
		if err := wrong("192.0.2.1", ann); err != nil {
			t.Fatalf("wrong password %d: %v", i+1, err)
		}
	}
	// The right password now forgets them: ten more wrong ones fit.
	g := l.guardFrom("192.0.2.1", "u-ann")
	if err := g.Allow(ctx, ann); err != nil {
		t.Fatal(err)
	}
	g.Succeeded(ctx, ann)
	for i := range maxFailuresPerPair {
		if err := wrong("192.0.2.1", ann); err != nil {
			t.Fatalf("after the right password, wrong password %d: %v", i+1, err)
		}
	}
	te, ok := throttled(wrong("192.0.2.1", ann))
	if !ok || te.Account || te.RetryAfter != loginWindow {
		t.Fatalf("the eleventh wrong password = %+v", te)
	}
	// Codes have their own count, and say so.
	code := ann
	code.SecondFactor = true
	if err := wrong("192.0.2.1", code); err != nil {
		t.Fatalf("a code after ten wrong passwords: %v", err)
	}
	// A check that did not happen gives its reservation back.
	g = l.guardFrom("192.0.2.2", "u-ann")
	for range 3 * maxFailuresPerPair {
		if err := g.Allow(ctx, ann); err != nil {
			t.Fatalf("released checks counted: %v", err)
		}
		g.Released(ctx, ann)
	}
}

// TestPasswordGuardAccountWait: after ten wrong passwords for an account
// from anywhere, a browser it has not signed in on waits 1 s after the
// latest, then 2 s…; its own known browser never waits for that count.
func TestPasswordGuardAccountWait(t *testing.T) {
	t.Parallel()
	l, clk := newLimiter(t)
	ctx := context.Background()
	bob := accounts.Attempt{Account: "u-bob"}
	for i := range freeAccountFailures { // one per address: no pair limit
		g := l.guardFrom("10.0.0."+string(rune('1'+i)), "")
		if err := g.Allow(ctx, bob); err != nil {
			t.Fatalf("free failure %d: %v", i+1, err)
		}
		g.Failed(ctx, bob)
	}
	// The last free guess started a 1 s wait (so that of guesses sent at
	// the same instant only one gets past the free ones).
	stranger := l.guardFrom("198.51.100.9", "")
	te, ok := throttled(stranger.Allow(ctx, bob))
	if !ok || !te.Account || te.RetryAfter != time.Second {
		t.Fatalf("at once after the free ones = %+v", te)
	}
	owner := l.guardFrom("192.0.2.50", "u-bob")
	if err := owner.Allow(ctx, bob); err != nil {
		t.Fatalf("the owner's known browser waited: %v", err)
	}
	owner.Succeeded(ctx, bob)
	for _, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		clk.advance(wait)
		if err := stranger.Allow(ctx, bob); err != nil {
			t.Fatalf("after a wait of %s: %v", wait, err)
		}
		stranger.Failed(ctx, bob)
		if te, ok := throttled(stranger.Allow(ctx, bob)); !ok || te.RetryAfter != 2*wait {
			t.Fatalf("after a wait of %s, the next wait = %+v, want %s", wait, te, 2*wait)
		}
	}
}
