package web

import (
	"sync"
	"time"

	"github.com/tonearm-idp/tonearm/provider/accounts"
)

// FailureLimiter counts failures per key in fixed windows. A key with max
// failures in its window is blocked until the window ends. Memory is bounded:
// expired entries are swept when the map grows past maxKeys.
type FailureLimiter struct {
	mu      sync.Mutex
	max     int
	window  time.Duration
	now     func() time.Time
	entries map[string]*failureWindow
}

type failureWindow struct {
	start time.Time
	count int
}

const maxLimiterKeys = 100_000

// NewFailureLimiter allows max failures per key per window.
func NewFailureLimiter(max int, window time.Duration, now func() time.Time) *FailureLimiter {
	if now == nil {
		now = time.Now
	}
	return &FailureLimiter{max: max, window: window, now: now, entries: map[string]*failureWindow{}}
}

// Blocked reports whether key is blocked and, if so, for how long.
func (l *FailureLimiter) Blocked(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[key]
	if !ok {
		return false, 0
	}
	now := l.now()
	if now.Sub(e.start) >= l.window {
		delete(l.entries, key)
		return false, 0
	}
	if e.count >= l.max {
		return true, e.start.Add(l.window).Sub(now)
	}
	return false, 0
}

// Fail records one failure for key.
func (l *FailureLimiter) Fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e, ok := l.entries[key]
	if !ok || now.Sub(e.start) >= l.window {
		if len(l.entries) >= maxLimiterKeys {
			l.sweep(now)
			if len(l.entries) >= maxLimiterKeys {
				// Still full of live windows: stay bounded rather than
				// grow; the per-address key of the same request is older
				// and still counts.
				return
			}
		}
		e = &failureWindow{start: now}
		l.entries[key] = e
	}
	e.count++
}

// Reset forgets key's failures (after a success).
func (l *FailureLimiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, key)
}

func (l *FailureLimiter) sweep(now time.Time) {
	for k, e := range l.entries {
		if now.Sub(e.start) >= l.window {
			delete(l.entries, k)
		}
	}
}

// Login rate limits: failures allowed per window for one address and user
// name, for one address, and for one user name from anywhere.
const (
	loginWindow          = 15 * time.Minute
	maxFailuresPerPair   = 10
	maxFailuresPerAddr   = 100
	maxFailuresPerTarget = 50
)

// LoginLimiter throttles password guessing. One instance is shared by every
// check of a user's password (the User API, the login page, password
// change, account deletion, email change), so that switching paths buys an
// attacker nothing. Failures count per address, per address and account,
// and per account; the account is the resolved user, so its username and
// its email are one target.
type LoginLimiter struct {
	byPair, byAddr, byTarget *FailureLimiter
}

// NewLoginLimiter returns a limiter; now may be nil.
func NewLoginLimiter(now func() time.Time) *LoginLimiter {
	return &LoginLimiter{
		byPair:   NewFailureLimiter(maxFailuresPerPair, loginWindow, now),
		byAddr:   NewFailureLimiter(maxFailuresPerAddr, loginWindow, now),
		byTarget: NewFailureLimiter(maxFailuresPerTarget, loginWindow, now),
	}
}

// Guard returns the accounts.PasswordGuard of a request from addr.
func (l *LoginLimiter) Guard(addr string) accounts.PasswordGuard {
	return loginGuard{l: l, addr: addr}
}

// AddrBlocked reports whether addr has used up its failures: such a request
// is refused before any account is looked up.
func (l *LoginLimiter) AddrBlocked(addr string) (bool, time.Duration) {
	return l.byAddr.Blocked(addr)
}

type loginGuard struct {
	l    *LoginLimiter
	addr string
}

func (g loginGuard) pair(account string) string { return g.addr + "\x00" + account }

// Allow implements accounts.PasswordGuard.
func (g loginGuard) Allow(account string) error {
	for _, c := range []struct {
		lim *FailureLimiter
		key string
	}{{g.l.byPair, g.pair(account)}, {g.l.byAddr, g.addr}, {g.l.byTarget, account}} {
		if blocked, wait := c.lim.Blocked(c.key); blocked {
			return &accounts.ThrottledError{RetryAfter: wait}
		}
	}
	return nil
}

// Failed implements accounts.PasswordGuard.
func (g loginGuard) Failed(account string) {
	g.l.byPair.Fail(g.pair(account))
	g.l.byAddr.Fail(g.addr)
	g.l.byTarget.Fail(account)
}

// Succeeded implements accounts.PasswordGuard: it forgets the failures of
// this address for this account.
func (g loginGuard) Succeeded(account string) {
	g.l.byPair.Reset(g.pair(account))
}
