package accounts

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/totp"
	"github.com/tonearm-idp/tonearm/storage"
)

// Authentication methods (RFC 8176) and the multi-factor context class
// (OpenID PAPE) a second factor adds.
const (
	AMROTP  = "otp"  // a one-time password (TOTP or a recovery code)
	AMRMFA  = "mfa"  // more than one factor
	AMRUser = "user" // the user was verified (a passkey's PIN or biometrics)
	// ACRMultiFactor is the acr of a sign-in with two factors, and the
	// acr_values an app sends to demand one.
	ACRMultiFactor = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
	// RecoveryCodes is how many recovery codes an enrolment makes.
	RecoveryCodes = 10
	// enrolmentTTL is how long the key shown on the account page may be
	// confirmed.
	enrolmentTTL = time.Hour
)

// Second-factor errors.
var (
	ErrTOTPEnrolled      = fault.New(fault.Conflict, "an authenticator app is already set up: remove it first").Saying("An authenticator app is already set up: remove it first")
	ErrNoTOTP            = fault.New(fault.NotFound, "this account has no authenticator app").Saying("This account has no authenticator app")
	ErrWrongCode         = fault.New(fault.Unauthenticated, "wrong or expired code").Saying("That code is wrong, expired or used already")
	ErrEnrolmentExpired  = fault.New(fault.Invalid, "this setup expired: reload the page and scan the new code").Saying("This setup expired: reload the page and scan the new code")
	ErrSecondFactorProof = fault.New(fault.Forbidden, "removing the authenticator app needs your password or a current code").Saying("Removing the authenticator app needs your password or a current code")
	// ErrSecondFactorRequired: a password alone does not open a session
	// of an account with an authenticator app.
	ErrSecondFactorRequired = fault.New(fault.Unauthenticated, "this account signs in with a second factor").Saying("This account signs in with a second factor: sign in on the sign-in page")
)

// HasTOTP reports whether u has an authenticator app.
func HasTOTP(u storage.User) bool { return len(u.TOTPSecret) > 0 }

// TOTPEnrolment is a key shown for setting up an app: nothing is stored
// until the person confirms it with a code; Token carries the key (sealed,
// bound to the user, expiring) in the confirmation form.
type TOTPEnrolment struct {
	Secret []byte
	Token  string
	URI    string
}

func enrolmentContext(userID string) string { return "totp-enrolment:" + userID }
func totpContext(userID string) string      { return "totp:" + userID }

// NewTOTPEnrolment makes a key for u to set up (issuer names the site in
// the app).
func (s *Service) NewTOTPEnrolment(u storage.User, issuer string) (TOTPEnrolment, error) {
	secret := totp.NewSecret()
	plain := binary.BigEndian.AppendUint64(nil, uint64(s.clock().Add(enrolmentTTL).Unix()))
	sealed, err := s.box.Seal(append(plain, secret...), enrolmentContext(u.ID))
	if err != nil {
		return TOTPEnrolment{}, err
	}
	account := u.Username
	return TOTPEnrolment{Secret: secret, Token: base64.RawURLEncoding.EncodeToString(sealed), URI: totp.URI(issuer, account, secret)}, nil
}

// EnrolTOTP confirms an enrolment with a code from the app: the key is
// stored (sealed) and RecoveryCodes recovery codes are made and returned,
// to be shown once. It needs a recent sign-in or the password (proof):
// the app becomes a way in. Wrong codes count under proof.Guard like wrong
// passwords. ErrReauthRequired, ErrTOTPEnrolled, ErrWrongCode.
func (s *Service) EnrolTOTP(ctx context.Context, userID, token, code string, proof Reauth) ([]string, error) {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	if HasTOTP(u) {
		return nil, ErrTOTPEnrolled
	}
	if err := s.reauthenticated(ctx, u, proof, PurposeTOTPEnrol); err != nil {
		return nil, err
	}
	guard := proof.Guard
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, ErrEnrolmentExpired
	}
	plain, err := s.box.Open(raw, enrolmentContext(userID))
	if err != nil || len(plain) != 8+totp.SecretLen || s.clock().Unix() > int64(binary.BigEndian.Uint64(plain[:8])) {
		return nil, ErrEnrolmentExpired
	}
	secret := plain[8:]
	attempt := codeAttemptOf(u)
	if err := allow(ctx, guard, attempt); err != nil {
		return nil, err
	}
	s.codesChecked.Add(1)
	step, ok := totp.Match(secret, code, s.clock(), 0)
	if !ok {
		s.codeFailed(ctx, guard, attempt, u.ID, "totp")
		return nil, ErrWrongCode
	}
	sealed, err := s.box.Seal(secret, totpContext(userID))
	if err != nil {
		return nil, err
	}
	codes, hashes := s.newRecoveryCodes(userID)
	err = s.atomically(ctx, func(ctx context.Context) error {
		if _, err := s.store.UpdateUser(ctx, userID, func(x storage.User) (storage.User, error) {
			if HasTOTP(x) {
				return x, ErrTOTPEnrolled
			}
			x.TOTPSecret, x.TOTPLastStep, x.UpdatedAt = sealed, step, s.clock()
			return x, nil
		}); err != nil {
			return mapUpdateErr(err)
		}
		if err := s.store.ReplaceRecoveryCodes(ctx, userID, hashes, s.clock()); err != nil {
			return err
		}
		return s.event(ctx, audit.SecondFactorEnrolled, userID, map[string]any{"method": "totp"})
	})
	if err != nil {
		return nil, err
	}
	succeeded(ctx, guard, attempt)
	return codes, nil
}

func allow(ctx context.Context, guard PasswordGuard, a Attempt) error {
	if guard == nil {
		return nil
	}
	return guard.Allow(ctx, a)
}

// succeeded gives back the attempt a right code reserved under guard.
func succeeded(ctx context.Context, guard PasswordGuard, a Attempt) {
	if guard != nil {
		guard.Succeeded(ctx, a)
	}
}

// CodesChecked reports how many second-factor codes (authenticator and
// recovery codes) have been compared since the Service was made: the
// guesses that got past the limits.
func (s *Service) CodesChecked() int64 { return s.codesChecked.Load() }

// PasswordsChecked reports how many passwords have been compared with a
// hash since the Service was made (its Hasher's count).
func (s *Service) PasswordsChecked() int64 { return s.hasher.Verified() }

func (s *Service) codeFailed(ctx context.Context, guard PasswordGuard, a Attempt, userID, method string) {
	if guard != nil {
		guard.Failed(ctx, a)
	}
	if err := s.event(ctx, audit.SecondFactorFailed, userID, map[string]any{"method": method}); err != nil {
		s.log.Warn("recording a failed second factor", "err", err)
	}
}

// CheckTOTP checks a code of u's app: a code within one step of now, of a
// step later than the last one accepted (a code is accepted once). Wrong
// codes count under guard like wrong passwords. ErrWrongCode, ErrNoTOTP.
func (s *Service) CheckTOTP(ctx context.Context, u storage.User, code string, guard PasswordGuard) error {
	if !HasTOTP(u) {
		return ErrNoTOTP
	}
	attempt := codeAttemptOf(u)
	if err := allow(ctx, guard, attempt); err != nil {
		return err
	}
	secret, err := s.box.Open(u.TOTPSecret, totpContext(u.ID))
	if err != nil {
		release(ctx, guard, attempt)
		return err
	}
	s.codesChecked.Add(1)
	_, err = s.store.UpdateUser(ctx, u.ID, func(x storage.User) (storage.User, error) {
		step, ok := totp.Match(secret, code, s.clock(), x.TOTPLastStep)
		if !ok {
			return x, ErrWrongCode
		}
		x.TOTPLastStep = step
		return x, nil
	})
	if errors.Is(err, ErrWrongCode) {
		s.codeFailed(ctx, guard, attempt, u.ID, "totp")
		return ErrWrongCode
	}
	if err != nil {
		release(ctx, guard, attempt)
		return mapUpdateErr(err)
	}
	succeeded(ctx, guard, attempt)
	return nil
}

// UseRecoveryCode spends one of u's recovery codes. ErrWrongCode.
func (s *Service) UseRecoveryCode(ctx context.Context, u storage.User, code string, guard PasswordGuard) error {
	attempt := codeAttemptOf(u)
	if err := allow(ctx, guard, attempt); err != nil {
		return err
	}
	s.codesChecked.Add(1)
	err := s.store.UseRecoveryCode(ctx, u.ID, s.recoveryHash(u.ID, code))
	// Codes made before TONEARM_SECRET was rotated are stored under a
	// previous key's hash.
	for _, key := range s.oldRecovery {
		if !errors.Is(err, storage.ErrNotFound) {
			break
		}
		err = s.store.UseRecoveryCode(ctx, u.ID, keyedRecoveryHash(key, u.ID, code))
	}
	if errors.Is(err, storage.ErrNotFound) {
		s.codeFailed(ctx, guard, attempt, u.ID, "recovery_code")
		return ErrWrongCode
	}
	if err != nil {
		release(ctx, guard, attempt)
		return err
	}
	succeeded(ctx, guard, attempt)
	left, _ := s.store.CountRecoveryCodes(ctx, u.ID)
	if err := s.event(ctx, audit.RecoveryCodeUsed, u.ID, map[string]any{"left": left}); err != nil {
		s.log.Warn("recording a recovery code use", "err", err)
	}
	return nil
}

// RecoveryCodesLeft counts the user's unused recovery codes.
func (s *Service) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	return s.store.CountRecoveryCodes(ctx, userID)
}

// RegenerateRecoveryCodes replaces the user's recovery codes with new
// ones, returned to be shown once. It needs a recent sign-in or the
// password (proof): new codes are a way in. ErrNoTOTP, ErrReauthRequired.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, userID string, proof Reauth) ([]string, error) {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	if !HasTOTP(u) {
		return nil, ErrNoTOTP
	}
	if err := s.reauthenticated(ctx, u, proof, PurposeRecoveryCodes); err != nil {
		return nil, err
	}
	codes, hashes := s.newRecoveryCodes(userID)
	if err := s.store.ReplaceRecoveryCodes(ctx, userID, hashes, s.clock()); err != nil {
		return nil, err
	}
	return codes, nil
}

// RemoveTOTP removes the user's app and recovery codes, proved by the
// password or a current code. ErrSecondFactorProof, ErrWrongPassword,
// ErrWrongCode.
func (s *Service) RemoveTOTP(ctx context.Context, userID, password, code string, guard PasswordGuard) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	if !HasTOTP(u) {
		return ErrNoTOTP
	}
	switch {
	case code != "":
		err = s.CheckTOTP(ctx, u, code, guard)
	case password != "":
		err = s.confirmPassword(ctx, u, password, PurposeTOTPRemove, guard)
	default:
		err = ErrSecondFactorProof
	}
	if err != nil {
		return err
	}
	return s.clearTOTP(ctx, userID, map[string]any{"method": "totp"})
}

func (s *Service) clearTOTP(ctx context.Context, userID string, detail map[string]any) error {
	return s.atomically(ctx, func(ctx context.Context) error {
		if _, err := s.store.UpdateUser(ctx, userID, func(x storage.User) (storage.User, error) {
			x.TOTPSecret, x.TOTPLastStep, x.UpdatedAt = nil, 0, s.clock()
			return x, nil
		}); err != nil {
			return mapUpdateErr(err)
		}
		if err := s.store.ReplaceRecoveryCodes(ctx, userID, nil, s.clock()); err != nil {
			return err
		}
		return s.event(ctx, audit.SecondFactorRemoved, userID, detail)
	})
}

// AdminRemoveSecondFactor removes a user's app and recovery codes (a lost
// phone) and signs them out everywhere.
func (s *Service) AdminRemoveSecondFactor(ctx context.Context, userID string) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	if !HasTOTP(u) {
		return ErrNoTOTP
	}
	if err := s.clearTOTP(ctx, userID, map[string]any{"method": "totp", "by_admin": true}); err != nil {
		return err
	}
	return s.endAllSessions(ctx, userID)
}

// HasSecondFactor reports whether u can prove a second factor: an
// authenticator app or a passkey (which verifies the user itself).
func (s *Service) HasSecondFactor(ctx context.Context, u storage.User) (bool, error) {
	if HasTOTP(u) {
		return true, nil
	}
	keys, err := s.store.ListPasskeys(ctx, u.ID)
	return len(keys) > 0, err
}

var recoveryAlphabet = base32.NewEncoding("abcdefghijkmnpqrstuvwxyz23456789").WithPadding(base32.NoPadding)

// newRecoveryCodes makes RecoveryCodes codes (xxxxx-xxxxx, 50 random
// bits each) and their keyed hashes.
func (s *Service) newRecoveryCodes(userID string) ([]string, [][]byte) {
	codes := make([]string, RecoveryCodes)
	hashes := make([][]byte, RecoveryCodes)
	for i := range codes {
		b := make([]byte, 7)
		_, _ = rand.Read(b)
		c := recoveryAlphabet.EncodeToString(b)[:10]
		codes[i] = c[:5] + "-" + c[5:]
		hashes[i] = s.recoveryHash(userID, codes[i])
	}
	return codes, hashes
}

// recoveryHash is the stored form of a code (typed with or without the
// dash, in any case).
func (s *Service) recoveryHash(userID, code string) []byte {
	return keyedRecoveryHash(s.recoveryKey, userID, code)
}

func keyedRecoveryHash(key []byte, userID, code string) []byte {
	norm := strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(code)))
	if key == nil {
		sum := sha256.Sum256([]byte("recovery:" + userID + ":" + norm))
		return sum[:]
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("recovery:" + userID + ":" + norm))
	return m.Sum(nil)
}
