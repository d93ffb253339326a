package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage"
)

// accountDelay is how long after an account's latest failure a browser it
// has not signed in on must wait, once the account has failures wrong
// passwords in the window: 1 s after the free ones, doubling, at most
// maxAccountDelay.
func accountDelay(failures int) time.Duration {
	if failures < freeAccountFailures {
		return 0
	}
	n := failures - freeAccountFailures
	if n >= 5 { // 2^5 s > maxAccountDelay
		return maxAccountDelay
	}
	return min(time.Duration(1<<n)*time.Second, maxAccountDelay)
}

// LoginFailureStore keeps the sign-in counters: the database, so that every
// replica sees every attempt.
type LoginFailureStore interface {
	CountAttempts(ctx context.Context, keys []string, n int, now time.Time, window time.Duration) ([]storage.LoginFailure, error)
	ClearLoginFailures(ctx context.Context, keys []string) error
}

// LoginLimiter throttles password and code guessing. One instance is shared
// by every check of a user's password or second factor (the User API, the
// login page, the second-factor step, enrolment, password change, account
// deletion, email change), so that switching paths buys an attacker
// nothing; its counters live in the database, so that replicas do not
// multiply an attacker's budget.
//
// Every check reserves its attempt first, in one statement that returns
// the new counts, and is refused when a count is past its limit: of N
// attempts sent at once each sees its own count, so at most the limit
// reach the hash or the code (reading the counts before the check and
// recording a failure after it let every request in flight through). A
// wrong guess keeps its reservation; a success gives it back.
type LoginLimiter struct {
	store   LoginFailureStore
	devices *DeviceCookies
	now     func() time.Time
	log     *slog.Logger
}

// NewLoginLimiter returns a limiter over store; now may be nil.
func NewLoginLimiter(store LoginFailureStore, devices *DeviceCookies, log *slog.Logger, now func() time.Time) (*LoginLimiter, error) {
	if store == nil || devices == nil || log == nil {
		return nil, errors.New("web: LoginLimiter needs a store, device cookies and a logger")
	}
	if now == nil {
		now = time.Now
	}
	return &LoginLimiter{store: store, devices: devices, now: now, log: log}, nil
}

// Devices returns the known-device cookies the limiter honours.
func (l *LoginLimiter) Devices() *DeviceCookies { return l.devices }

// Guard returns the accounts.PasswordGuard of request r: its address and
// its known-device cookie.
func (l *LoginLimiter) Guard(r *http.Request) accounts.PasswordGuard {
	return &loginGuard{l: l, addr: ClientAddr(r), device: l.devices.Read(r)}
}

type loginGuard struct {
	l      *LoginLimiter
	addr   string
	device knownDevice
	// pairHad: this address had guessed wrong on this account before the
	// attempt Allow reserved (a success then forgets those guesses).
	pairHad bool
}

func (g *loginGuard) addrKey() string { return LimitSignInAddr.Prefix + g.addr }
func (g *loginGuard) pairKey(a accounts.Attempt) string {
	if a.SecondFactor {
		return LimitCodePair.Prefix + g.addr + "|" + a.Account
	}
	return LimitSignInPair.Prefix + g.addr + "|" + a.Account
}
func acctKey(account string) string     { return LimitAccount.Prefix + account }
func acctWaitKey(account string) string { return "acct-wait:" + account }

// Allow implements accounts.PasswordGuard: it reserves the attempt on the
// address, the address and account, and the account counters, and refuses
// it when the address or the pair is past its limit, or, for a browser the
// account has not signed in on, when the account's wait is not over.
func (g *loginGuard) Allow(ctx context.Context, a accounts.Attempt) error {
	now := g.l.now()
	addrKey, pairKey, acct := g.addrKey(), g.pairKey(a), acctKey(a.Account)
	counts, err := g.l.store.CountAttempts(ctx, []string{addrKey, pairKey, acct}, 1, now, loginWindow)
	if err != nil {
		return err
	}
	var addr, pair, acctCount storage.LoginFailure
	for _, c := range counts {
		switch c.Key {
		case addrKey:
			addr = c
		case pairKey:
			pair = c
		case acct:
			acctCount = c
		}
	}
	g.pairHad = pair.Count > 1
	windowLeft := func(c storage.LoginFailure) time.Duration { return c.WindowStart.Add(loginWindow).Sub(now) }
	// A refused attempt gives its reservations back: only guesses that
	// reached the check count, so that the owner told to wait on a new
	// browser does not use up the address's budget by trying again, and
	// an attacker's refused guesses do not lengthen the account's wait.
	// The bound holds all the same: an attempt goes ahead only when the
	// guesses kept (wrong ones, and those still being checked) leave room.
	var refused *accounts.ThrottledError
	switch {
	case addr.Count > maxFailuresPerAddr:
		refused = &accounts.ThrottledError{RetryAfter: windowLeft(addr)}
	case pair.Count > maxFailuresPerPair:
		refused = &accounts.ThrottledError{RetryAfter: windowLeft(pair)}
	case g.device.known(a):
		return nil
	default:
		refused = g.accountWait(ctx, a.Account, acctCount.Count, now)
	}
	if refused != nil {
		if a.SecondFactor && !refused.Account {
			// A code step tells of codes, not passwords.
			refused.Reason = "wrong codes"
		}
		g.giveBack(ctx, addrKey, pairKey, acct)
		return refused
	}
	return nil
}

// accountWait admits a guess from a browser the account has not signed in
// on: the free ones at once, then one per accountDelay. The wait is a
// counter of its own whose window is the delay: the guess that finds its
// window ended starts a new one and goes ahead, every other guess in that
// window is refused until it ends. The last free guess takes a window too
// (of 1 s), so that of guesses sent at the same instant only one gets past
// the free ones, whichever reaches the counter first; one after another,
// the next after it waits 1 s, then 2, 4 … as documented.
func (g *loginGuard) accountWait(ctx context.Context, account string, reserved int, now time.Time) *accounts.ThrottledError {
	if reserved < freeAccountFailures {
		return nil
	}
	delay := max(accountDelay(reserved-1), time.Second) // by the guesses before this one
	counts, err := g.l.store.CountAttempts(ctx, []string{acctWaitKey(account)}, 1, now, delay)
	if err != nil {
		// Refuse, briefly: the counters are in the database every sign-in
		// needs anyway.
		g.l.log.Error("reserving a sign-in attempt", "request_id", RequestID(ctx), "err", err)
		return &accounts.ThrottledError{RetryAfter: time.Second, Account: true}
	}
	if len(counts) == 1 && counts[0].Count > 1 {
		return &accounts.ThrottledError{RetryAfter: accountRetryAfter(counts[0].WindowStart, delay, now), Account: true}
	}
	return nil
}

// accountRetryAfter is the wait left in an account's window that started at
// start and lasts delay, between 1 s and delay. Under concurrency the window
// may have been started by a request that read the clock after this one
// (start after now), and the wait left would then exceed the delay by a
// fraction that Retry-After rounds up to a whole second more than the
// documented maximum (30 s).
func accountRetryAfter(start time.Time, delay time.Duration, now time.Time) time.Duration {
	return min(max(start.Add(delay).Sub(now), time.Second), delay)
}

// giveBack returns reservations of an attempt that did not guess wrong.
func (g *loginGuard) giveBack(ctx context.Context, keys ...string) {
	if _, err := g.l.store.CountAttempts(ctx, keys, -1, g.l.now(), loginWindow); err != nil {
		g.l.log.Warn("giving back a sign-in attempt", "request_id", RequestID(ctx), "err", err)
	}
}

// Failed implements accounts.PasswordGuard: the wrong guess keeps the
// reservations Allow made; there is nothing more to write.
func (g *loginGuard) Failed(context.Context, accounts.Attempt) {}

// Released implements accounts.PasswordGuard: nothing was checked, so
// the reservations go back and nothing is forgotten.
func (g *loginGuard) Released(ctx context.Context, a accounts.Attempt) {
	g.giveBack(ctx, g.addrKey(), g.pairKey(a), acctKey(a.Account))
}

// Succeeded implements accounts.PasswordGuard: the attempt's reservations
// are given back, so that the owner's own sign-ins count neither toward
// the address's limit nor the account's wait, and this address's earlier
// wrong guesses on this account are forgotten.
func (g *loginGuard) Succeeded(ctx context.Context, a accounts.Attempt) {
	pairKey := g.pairKey(a)
	if g.pairHad {
		if err := g.l.store.ClearLoginFailures(ctx, []string{pairKey}); err != nil {
			g.l.log.Warn("clearing sign-in failures", "request_id", RequestID(ctx), "err", err)
		}
		g.giveBack(ctx, g.addrKey(), acctKey(a.Account))
		return
	}
	g.giveBack(ctx, g.addrKey(), pairKey, acctKey(a.Account))
}
