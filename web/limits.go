package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/accounts"
)

// Limit is one named limit of the attempt counter: at most Max attempts
// per Window under one key (Prefix and a subject: an address, an account,
// a user), counted in the database so that every replica sees every
// attempt, and counted before they are checked (LoginLimiter.countFirst).
// docs/security.md "Every limit" shows the same table.
type Limit struct {
	Name   string
	Prefix string
	Max    int
	Window time.Duration
	// Reason is what people read: "Too many <Reason>; try again in …"
	// (a 429 with Retry-After).
	Reason string
}

// LoginWindow is the window of the sign-in counters, and the longest of
// any limit: the housekeeping sweeps counters untouched for that long.
const LoginWindow = 15 * time.Minute

// Sign-in protection (README "Sign-in protection"). Wrong passwords count
// per address, per address and account, and per account, in 15-minute
// windows shared by every replica (the database holds the counters).
const (
	loginWindow        = LoginWindow
	maxFailuresPerPair = 10
	maxFailuresPerAddr = 100
	// freeAccountFailures wrong passwords of an account, from anywhere, cost
	// nothing; after them, a browser the account has not signed in on must
	// wait accountDelay after the account's latest failure. Known browsers
	// never wait for the account's count.
	freeAccountFailures = 10
	maxAccountDelay     = 30 * time.Second
)

// The named limits. The sign-in rows are read by the password guard
// (ratelimit.go), which adds the account's wait; the others are counted by
// the methods below, one lookup each.
var (
	LimitSignInAddr = Limit{"sign-in per address", "addr:", maxFailuresPerAddr, loginWindow, locale.M("failed password attempts")}
	LimitSignInPair = Limit{"sign-in per address and account", "pair:", maxFailuresPerPair, loginWindow, locale.M("failed password attempts")}
	LimitCodePair   = Limit{"second-factor codes per address and account", "pair-code:", maxFailuresPerPair, loginWindow, locale.M("wrong codes")}
	LimitAccount    = Limit{"sign-in per account, free of waiting", "acct:", freeAccountFailures, loginWindow,
		locale.M("failed sign-ins for this account from browsers it has not signed in on")}
	// A million codes, five guesses per address per window: wrong codes
	// only (a right code or another refusal gives its attempt back).
	LimitSecurityCode = Limit{"first-admin security code per address", "security-code:", 5, loginWindow, locale.M("wrong security codes")}
	// Each attempt costs a password hash, like a sign-in.
	LimitSignup = Limit{"sign-ups per address", "signup:", 10, loginWindow, locale.M("sign-ups from this address")}
	// One count whichever path asked (the account page or
	// POST /api/me/email/verify).
	LimitVerifyMail     = Limit{"verification mails per account", "verify-mail:", 3, loginWindow, locale.M("verification mails asked for")}
	LimitVerifyMailAddr = Limit{"verification mails per address", "verify-mail-addr:", 10, loginWindow, locale.M("verification mails asked for")}
	// Wrong verification links per address: the tokens are long, this
	// only keeps one client from trying them by the thousand.
	LimitVerifyToken = Limit{"verification links per address", "verify-token:", 20, loginWindow, locale.M("attempts")}
	// Anyone may ask for anyone's reset: per email only a few, so that an
	// inbox is not flooded; the owner's known browser is not held to it.
	LimitResetAddr  = Limit{"password reset requests per address", "reset-request:", 10, loginWindow, locale.M("reset requests")}
	LimitResetEmail = Limit{"password reset requests per email", "reset-email:", 3, loginWindow, locale.M("reset requests")}
	LimitResetToken = Limit{"wrong reset tokens per address", "reset-token:", 20, loginWindow, locale.M("attempts")}
	// User codes tried on every path of the device page: 30 per person
	// against 20^8 codes makes guessing a live one hopeless; the address
	// bound is wider, so that one person does not lock out the others.
	LimitDevicePerson = Limit{"device codes per person", "device-user:", 30, loginWindow, locale.M("device codes tried")}
	LimitDeviceAddr   = Limit{"device codes per address", "device:", 300, loginWindow, locale.M("device codes tried")}
	// Each device sign-in started stores a device code.
	LimitDeviceStart = Limit{"device sign-ins started per address", "device-start:", 60, loginWindow, locale.M("device sign-ins started from this address")}
	// Enough for a household behind one address, not for filling the
	// database with challenges.
	LimitPasskey = Limit{"passkey ceremonies per address", "passkey:", 60, loginWindow, locale.M("passkey attempts from this address")}
	// TONEARM_CLIENT_REGISTRATION=open: apps registered without an
	// initial access token.
	LimitOpenRegistration = Limit{"open app registrations per address", "open-registration:", 10, loginWindow, locale.M("app registrations from this address")}
	LimitAppRegistration  = Limit{"app registrations per developer", "app-registration:", 20, loginWindow, locale.M("app registrations for this account")}
	// Each stored sign-in is a row kept 10 minutes whoever asks: 300 per
	// window is one every 3 seconds, far above what an office starts.
	LimitStoredSignIn = Limit{"stored sign-ins per address", "stored-signin:", 300, loginWindow, locale.M("sign-ins started from this address")}
)

// Limits is every named limit, in the order of docs/security.md.
var Limits = []Limit{
	LimitSignInAddr, LimitSignInPair, LimitCodePair, LimitAccount,
	LimitSecurityCode, LimitSignup, LimitVerifyMail, LimitVerifyMailAddr, LimitVerifyToken,
	LimitResetAddr, LimitResetEmail, LimitResetToken,
	LimitDevicePerson, LimitDeviceAddr, LimitDeviceStart, LimitPasskey,
	LimitOpenRegistration, LimitAppRegistration, LimitStoredSignIn,
}

// hit is one attempt under one limit for one subject.
type hit struct {
	limit   Limit
	subject string
}

func (h hit) key() string { return h.limit.Prefix + h.subject }

// OpenRegistration counts an app registered without an initial access
// token from r's address.
func (l *LoginLimiter) OpenRegistration(ctx context.Context, r *http.Request) error {
	return l.countFirst(ctx, hit{LimitOpenRegistration, ClientAddr(r)})
}

// AppRegistration counts an app registered by a developer (on /developer
// or with their initial access token).
func (l *LoginLimiter) AppRegistration(ctx context.Context, userID string) error {
	return l.countFirst(ctx, hit{LimitAppRegistration, userID})
}

// DeviceLookup counts a user code typed on the device page by userID from
// r's address, whatever the form does with it.
func (l *LoginLimiter) DeviceLookup(ctx context.Context, r *http.Request, userID string) error {
	return l.countFirst(ctx, hit{LimitDeviceAddr, ClientAddr(r)}, hit{LimitDevicePerson, userID})
}

// DeviceStart counts a device sign-in started from r's address.
func (l *LoginLimiter) DeviceStart(ctx context.Context, r *http.Request) error {
	return l.countFirst(ctx, hit{LimitDeviceStart, ClientAddr(r)})
}

// PasskeyCeremony counts a passkey ceremony started from r's address
// (each stores a challenge).
func (l *LoginLimiter) PasskeyCeremony(ctx context.Context, r *http.Request) error {
	return l.countFirst(ctx, hit{LimitPasskey, ClientAddr(r)})
}

// Signup counts an attempt to create an account from r's address.
func (l *LoginLimiter) Signup(ctx context.Context, r *http.Request) error {
	return l.countFirst(ctx, hit{LimitSignup, ClientAddr(r)})
}

// StoredSignIn counts a sign-in interaction about to be stored for r's
// address (anonymous: nothing else bounds how many one client leaves).
func (l *LoginLimiter) StoredSignIn(ctx context.Context, r *http.Request) error {
	return l.countFirst(ctx, hit{LimitStoredSignIn, ClientAddr(r)})
}

// VerificationMail counts a verification mail asked for by userID from
// r's address.
func (l *LoginLimiter) VerificationMail(ctx context.Context, r *http.Request, userID string) error {
	return l.countFirst(ctx, hit{LimitVerifyMail, userID}, hit{LimitVerifyMailAddr, ClientAddr(r)})
}

// ResetRequest counts a password reset asked for from r's address for
// email; owner (the request comes from the account's known browser) spares
// it the per-email limit, so that a stranger cannot keep the owner from
// resetting. The email is hashed: the counters name no address.
func (l *LoginLimiter) ResetRequest(ctx context.Context, r *http.Request, email string, owner bool) error {
	hits := []hit{{LimitResetAddr, ClientAddr(r)}}
	if !owner {
		sum := sha256.Sum256([]byte(strings.ToLower(email)))
		hits = append(hits, hit{LimitResetEmail, hex.EncodeToString(sum[:16])})
	}
	return l.countFirst(ctx, hits...)
}

// SecurityCode reserves a guess at the first-admin security code from r's
// address. The caller gives it back (GiveBack) unless the code was wrong,
// so that only wrong codes use up the limit, and every replica's guesses
// count together.
func (l *LoginLimiter) SecurityCode(ctx context.Context, r *http.Request) (Reservation, error) {
	return l.reserve(ctx, hit{LimitSecurityCode, ClientAddr(r)})
}

// ResetToken reserves an attempt at a password reset token from r's
// address; like SecurityCode, only wrong tokens keep theirs.
func (l *LoginLimiter) ResetToken(ctx context.Context, r *http.Request) (Reservation, error) {
	return l.reserve(ctx, hit{LimitResetToken, ClientAddr(r)})
}

// VerifyToken reserves an attempt at an email verification token from r's
// address; like SecurityCode, only wrong tokens keep theirs.
func (l *LoginLimiter) VerifyToken(ctx context.Context, r *http.Request) (Reservation, error) {
	return l.reserve(ctx, hit{LimitVerifyToken, ClientAddr(r)})
}

// Reservation is an attempt counted first; GiveBack returns it when the
// attempt turned out not to be a wrong guess.
type Reservation struct {
	l    *LoginLimiter
	hits []hit
}

// GiveBack returns the reservation (once; a zero Reservation does nothing).
func (r *Reservation) GiveBack(ctx context.Context) {
	if r.l == nil {
		return
	}
	for _, w := range r.l.byWindow(r.hits) {
		if _, err := r.l.store.CountAttempts(ctx, w.keys, -1, r.l.now(), w.window); err != nil {
			r.l.log.Warn("giving back an attempt", "request_id", RequestID(ctx), "err", err)
		}
	}
	r.l = nil
}

func (l *LoginLimiter) reserve(ctx context.Context, hits ...hit) (Reservation, error) {
	if err := l.countFirst(ctx, hits...); err != nil {
		return Reservation{}, err
	}
	return Reservation{l: l, hits: hits}, nil
}

type windowKeys struct {
	window time.Duration
	keys   []string
}

// byWindow groups the keys of hits by window: one statement counts them.
func (l *LoginLimiter) byWindow(hits []hit) []windowKeys {
	var out []windowKeys
	for _, h := range hits {
		i := slices.IndexFunc(out, func(w windowKeys) bool { return w.window == h.limit.Window })
		if i < 0 {
			out = append(out, windowKeys{window: h.limit.Window})
			i = len(out) - 1
		}
		out[i].keys = append(out[i].keys, h.key())
	}
	return out
}

// countFirst counts one attempt under every hit's key, then refuses when
// any is past its limit. Counting before looking keeps the bound under
// concurrency and across replicas: of N simultaneous attempts at most the
// limit see a count within it (a read-then-write check lets them all
// through). The count is one statement per window that returns the new
// counts. A refused attempt keeps its count: it ends with the window.
func (l *LoginLimiter) countFirst(ctx context.Context, hits ...hit) error {
	now := l.now()
	byKey := make(map[string]Limit, len(hits))
	for _, h := range hits {
		byKey[h.key()] = h.limit
	}
	for _, w := range l.byWindow(hits) {
		counts, err := l.store.CountAttempts(ctx, w.keys, 1, now, w.window)
		if err != nil {
			return err
		}
		for _, c := range counts {
			if lim, ok := byKey[c.Key]; ok && c.Count > lim.Max {
				return &accounts.ThrottledError{RetryAfter: c.WindowStart.Add(lim.Window).Sub(now), Reason: lim.Reason}
			}
		}
	}
	return nil
}
