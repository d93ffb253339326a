package web

import (
	"strings"
	"sync"
	"time"
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
// sign-in path (the User API and the login page) so that switching paths
// buys an attacker nothing.
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

func loginKeys(addr, username string) (pair, target string) {
	target = strings.ToLower(username)
	return addr + "\x00" + target, target
}

// Blocked reports whether a sign-in from addr for username must wait, and
// how long.
func (l *LoginLimiter) Blocked(addr, username string) (bool, time.Duration) {
	pair, target := loginKeys(addr, username)
	for _, c := range []struct {
		lim *FailureLimiter
		key string
	}{{l.byPair, pair}, {l.byAddr, addr}, {l.byTarget, target}} {
		if blocked, wait := c.lim.Blocked(c.key); blocked {
			return true, wait
		}
	}
	return false, 0
}

// Failed records a wrong password.
func (l *LoginLimiter) Failed(addr, username string) {
	pair, target := loginKeys(addr, username)
	l.byPair.Fail(pair)
	l.byAddr.Fail(addr)
	l.byTarget.Fail(target)
}

// Succeeded forgets the failures of this address for this user.
func (l *LoginLimiter) Succeeded(addr, username string) {
	pair, _ := loginKeys(addr, username)
	l.byPair.Reset(pair)
}
