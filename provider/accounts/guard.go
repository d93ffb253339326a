package accounts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// PasswordGuard throttles the password checks of one request. Every check
// of a user's password (sign-in, password change, account deletion, email
// change) goes through one, keyed by the account the password is checked
// against once it is resolved: a username and an email of the same account
// are one key, and switching between them or between endpoints buys a
// guesser nothing. Codes of the second factor (authenticator, recovery,
// enrolment) go through the same guard. A nil guard throttles nothing (the
// command line).
type PasswordGuard interface {
	// Allow reserves the attempt before the check (so that attempts sent at
	// once cannot all pass under a limit) and returns a *ThrottledError
	// when it may not go ahead. Every check calls it first, and after the
	// check Failed or Succeeded.
	Allow(ctx context.Context, a Attempt) error
	// Failed: the guess was wrong; its reservation stands.
	Failed(ctx context.Context, a Attempt)
	// Succeeded: the guess was right; its reservation is given back.
	Succeeded(ctx context.Context, a Attempt)
	// Released: no guess was checked after all (the hash queue was full,
	// the database failed); the reservation is given back.
	Released(ctx context.Context, a Attempt)
}

// release gives back the attempt a check that did not happen reserved.
func release(ctx context.Context, guard PasswordGuard, a Attempt) {
	if guard != nil {
		guard.Released(ctx, a)
	}
}

// Attempt is one password check about to happen.
type Attempt struct {
	// Account is the user's ID, or for an identifier that names no account
	// a digest of it (its guesses are still counted).
	Account string
	// DeviceEpoch is the user's (storage.User.DeviceEpoch): a known-device
	// cookie of another epoch does not count.
	DeviceEpoch int64
	// SecondFactor says a code (authenticator, recovery, enrolment) is
	// checked, not the password. Its guesses count on their own per-address
	// counter, so that a right password, which forgets the address's wrong
	// passwords, does not also forget its wrong codes: whoever holds the
	// password could otherwise sign in again between rounds of code guesses.
	SecondFactor bool
}

// ThrottledError: too many wrong passwords; try again after RetryAfter.
// Account says it is the account's count (guesses from anywhere) that asks
// this browser to wait, not its own address.
type ThrottledError struct {
	RetryAfter time.Duration
	Account    bool
	// Reason names what was limited ("sign-ups from this address"); empty
	// for password attempts.
	Reason string
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many %s; retry in %s", e.what(), e.RetryAfter.Round(time.Second))
}

// what names what was counted, in the words of the message.
func (e *ThrottledError) what() string {
	switch {
	case e.Account:
		return locale.M("failed sign-ins for this account from browsers it has not signed in on")
	case e.Reason != "":
		return e.Reason
	}
	return locale.M("failed password attempts")
}

// Seconds is RetryAfter in whole seconds, rounded up (for Retry-After).
func (e *ThrottledError) Seconds() int {
	return int((e.RetryAfter + time.Second - 1) / time.Second)
}

// Kind makes a ThrottledError a fault.Throttled.
func (e *ThrottledError) Kind() fault.Kind { return fault.Throttled }

// Wait is RetryAfter (fault.Waiter: the answer's Retry-After).
func (e *ThrottledError) Wait() time.Duration { return e.RetryAfter }

// Message says why the attempt must wait, and how long.
func (e *ThrottledError) Message() string {
	return locale.Fill(locale.M("Too many {{.What}}; try again in {{.Wait}}"), "What", e.what(), "Wait", waitText(e.RetryAfter))
}

// waitText is d in whole seconds or minutes, rounded up, in plain words
// ("1 second", "30 seconds", "15 minutes"): the English forms of the
// catalogs' plurals, which pages read back and translate.
func waitText(d time.Duration) string {
	n, id := int((d+time.Second-1)/time.Second), locale.MN("{{.Count}} seconds")
	if d >= time.Minute {
		n, id = int((d+time.Minute-1)/time.Minute), locale.MN("{{.Count}} minutes")
	}
	if n == 1 {
		id = strings.TrimSuffix(id, "s")
	}
	return locale.Fill(id, "Count", n)
}

// ErrReauthRequired: a sensitive change (the email address, new recovery
// codes, an authenticator app) needs the current password or a sign-in
// within RecentAuth.
var ErrReauthRequired = fault.New(fault.Forbidden, "this change needs the current password or a sign-in within the last 5 minutes").Saying("Changing the email address needs currentPassword (or a sign-in within the last 5 minutes)")

// RecentAuth is how recent a sign-in must be for a sensitive change
// without typing the password again.
const RecentAuth = 5 * time.Minute

// attemptOf is the Attempt of checking u's password (zero u: the
// identifier names no account).
func attemptOf(u storage.User, identifier string) Attempt {
	if u.ID != "" {
		return Attempt{Account: u.ID, DeviceEpoch: u.DeviceEpoch}
	}
	h := sha256.Sum256([]byte(strings.ToLower(identifier)))
	return Attempt{Account: "unknown:" + hex.EncodeToString(h[:16])}
}

// codeAttemptOf is the Attempt of checking a second-factor code of u.
func codeAttemptOf(u storage.User) Attempt {
	a := attemptOf(u, u.ID)
	a.SecondFactor = true
	return a
}

// Why a password is checked: the "purpose" of a signin.failed event, so
// that the owner and the admins see where a wrong password was typed.
const (
	PurposeSignIn         = "signin"
	PurposePasswordChange = "password_change"
	PurposeAccountDelete  = "account_delete"
	PurposeEmailChange    = "email_change"
	PurposeTOTPRemove     = "totp_remove"
	PurposeTOTPEnrol      = "totp_enrol"
	PurposeRecoveryCodes  = "recovery_codes"
)

// checkPassword verifies password against u's hash under guard. An unknown
// account (zero u) costs a full hash like a wrong password. It returns
// whether the password matched and whether the hash wants upgrading.
// Every wrong password, whatever it was typed for (purpose), is recorded
// here, the one place every check passes (docs/security.md: every wrong
// password for an account is a signin.failed event).
func (s *Service) checkPassword(ctx context.Context, u storage.User, identifier, password, purpose string, guard PasswordGuard) (ok, stale bool, err error) {
	attempt := attemptOf(u, identifier)
	if guard != nil {
		if err := guard.Allow(ctx, attempt); err != nil {
			return false, false, err
		}
	}
	ok, stale, err = s.hasher.Verify(ctx, u.PasswordHash, password)
	if err != nil {
		if errors.Is(err, errBadHash) {
			s.log.Error("stored password hash is malformed", "user", u.ID)
			err = nil
		} else {
			release(ctx, guard, attempt)
			return false, false, err
		}
	}
	if guard != nil {
		if ok {
			guard.Succeeded(ctx, attempt)
		} else {
			guard.Failed(ctx, attempt)
		}
	}
	if !ok {
		// The owner learns of guesses at their account from these.
		if err := s.event(ctx, audit.SignInFailed, u.ID, map[string]any{"purpose": purpose}); err != nil {
			s.log.Warn("recording a wrong password", "err", err)
		}
	}
	return ok, stale, nil
}

// confirmPassword checks the current password of a signed-in user, typed
// for purpose (a Purpose… constant).
func (s *Service) confirmPassword(ctx context.Context, u storage.User, password, purpose string, guard PasswordGuard) error {
	ok, _, err := s.checkPassword(ctx, u, u.ID, password, purpose, guard)
	if err != nil {
		return err
	}
	if !ok {
		return ErrWrongPassword
	}
	return nil
}

// Reauth is how the owner of an account shows they are at the keyboard
// before a sensitive change: a sign-in at AuthTime within RecentAuth, or
// the current Password, checked under Guard.
type Reauth struct {
	AuthTime time.Time
	Password string
	Guard    PasswordGuard
}

// UpdateOwnProfile is a user changing their own profile. A change of the
// email address (the address password resets are mailed to) also needs
// proof: a recent sign-in or the current password, so a stolen session or
// token cannot redirect the account's recovery.
func (s *Service) UpdateOwnProfile(ctx context.Context, userID string, p ProfileUpdate, proof Reauth) (storage.User, error) {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return storage.User{}, err
	}
	if p, err = s.languageOf(p); err != nil {
		return storage.User{}, err
	}
	changed := u
	if err := p.apply(&changed); err != nil {
		return storage.User{}, err
	}
	if changed.Email != u.Email {
		if err := s.reauthenticated(ctx, u, proof, PurposeEmailChange); err != nil {
			return storage.User{}, err
		}
	}
	return s.UpdateProfile(ctx, userID, p)
}

// reauthenticated is the one rule for a sensitive change by the owner of
// an account (the email address, new recovery codes, an authenticator
// app): the sign-in behind the request is recent (within RecentAuth,
// whatever proved it: a password, a code or a passkey), or the current
// password is given again, checked under the guard. A stolen session or
// token alone then cannot take over the account's recovery. A password
// that is given is always checked, recent sign-in or not: a wrong one
// refuses the change and is counted and recorded like any wrong password,
// never silently ignored.
// ErrReauthRequired, ErrWrongPassword.
func (s *Service) reauthenticated(ctx context.Context, u storage.User, proof Reauth, purpose string) error {
	if proof.Password != "" {
		return s.confirmPassword(ctx, u, proof.Password, purpose, proof.Guard)
	}
	if s.clock().Sub(proof.AuthTime) <= RecentAuth {
		return nil
	}
	return ErrReauthRequired
}
