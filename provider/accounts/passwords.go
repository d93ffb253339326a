package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// Changing a password: by its owner, by an admin, or by a mailed reset
// token. Each signs the user out everywhere in the same transaction.

// storePasswordHash writes an already computed hash: an account with a
// password is no longer passkey-only.
func (s *Service) storePasswordHash(ctx context.Context, userID, hash string) error {
	_, err := s.store.UpdateUser(ctx, userID, func(u storage.User) (storage.User, error) {
		u.PasswordHash, u.PasskeyOnly = hash, false
		u.UpdatedAt = s.clock()
		return u, nil
	})
	return mapUpdateErr(err)
}

// AdminSetPassword sets a user's password and signs them out everywhere,
// in one transaction.
func (s *Service) AdminSetPassword(ctx context.Context, userID, password string) error {
	return s.replacePassword(ctx, userID, password, map[string]any{"by": "admin"}, s.revokeEverything)
}

// replacePassword checks and hashes a new password, then stores it with a
// password.changed event and then (if any) in one transaction.
func (s *Service) replacePassword(ctx context.Context, userID, password string, detail map[string]any, then func(ctx context.Context, userID string) error) error {
	if err := ValidatePassword(password); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	return s.atomically(ctx, func(ctx context.Context) error {
		if err := s.storePasswordHash(ctx, userID, hash); err != nil {
			return err
		}
		if err := s.event(ctx, audit.PasswordChanged, userID, detail); err != nil {
			return err
		}
		if then == nil {
			return nil
		}
		return then(ctx, userID)
	})
}

// ChangePassword changes the user's own password after checking the
// current one, and ends every session of theirs (the caller opens a fresh
// one for the browser that asked). A passkey-only account has no password
// to check: ErrPasskeyOnly (SetPassword gives it one).
func (s *Service) ChangePassword(ctx context.Context, userID, current, next string, guard PasswordGuard) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	if u.PasskeyOnly {
		return ErrPasskeyOnly
	}
	if err := ValidatePassword(next); err != nil {
		return err
	}
	if err := s.confirmPassword(ctx, u, current, PurposePasswordChange, guard); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	return s.atomically(ctx, func(ctx context.Context) error {
		if err := s.storePasswordHash(ctx, userID, hash); err != nil {
			return err
		}
		if err := s.event(ctx, audit.PasswordChanged, userID, nil); err != nil {
			return err
		}
		return s.endAllSessions(ctx, userID)
	})
}

// ResetTTL is how long a password reset token lives.
const ResetTTL = 30 * time.Minute

// Mailer delivers password reset and email verification links.
type Mailer interface {
	SendPasswordReset(ctx context.Context, to, username, token string) error
	SendEmailVerification(ctx context.Context, to, username, token string) error
}

// RequestPasswordReset creates a reset token for the account with this
// email and hands it to the mailer. It reports nothing about whether the
// account exists: the caller answers the same either way. Passkey-only
// accounts get no reset: a mailbox must not be a way around their
// passkeys (an admin removes lost passkeys first).
func (s *Service) RequestPasswordReset(ctx context.Context, email string, mailer Mailer) error {
	u, err := s.store.GetUserByEmail(ctx, email)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (u.Disabled || u.PasskeyOnly)) {
		return nil
	}
	if err != nil {
		return err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	h := sha256.Sum256([]byte(token))
	now := s.clock()
	if err := s.store.CreatePasswordReset(ctx, storage.PasswordReset{TokenHash: h[:], UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(ResetTTL)}); err != nil {
		return err
	}
	// The mail is in the account's saved language, else the language of
	// the page that asked for it (issue 35).
	return mailer.SendPasswordReset(locale.WithTag(ctx, u.Language), u.Email, u.Username, token)
}

// ResetPassword sets a new password with a reset token (single use) and
// signs the user out everywhere.
func (s *Service) ResetPassword(ctx context.Context, token, password string) error {
	if err := ValidatePassword(password); err != nil {
		return err
	}
	if len(token) != 43 {
		return ErrInvalidResetCode
	}
	// Hash first: the token is spent only together with the new password
	// and the sign-out, never alone.
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	h := sha256.Sum256([]byte(token))
	return s.atomically(ctx, func(ctx context.Context) error {
		r, err := s.store.ConsumePasswordReset(ctx, h[:], s.clock())
		if errors.Is(err, storage.ErrNotFound) {
			return ErrInvalidResetCode
		}
		if err != nil {
			return err
		}
		// A link mailed before the account went passkey-only is void.
		if u, err := s.store.GetUser(ctx, r.UserID); err != nil || u.PasskeyOnly {
			return ErrInvalidResetCode
		}
		if err := s.storePasswordHash(ctx, r.UserID, hash); err != nil {
			return err
		}
		if err := s.event(ctx, audit.PasswordReset, r.UserID, nil); err != nil {
			return err
		}
		return s.revokeEverything(ctx, r.UserID)
	})
}
