package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// VerifyTTL is how long an email verification link works.
const VerifyTTL = 24 * time.Hour

// Errors of email verification.
var (
	ErrInvalidVerification = fault.New(fault.Invalid, "the verification link is invalid, used or expired").Saying("The verification link is invalid, used or expired")
	ErrNoEmail             = fault.New(fault.Invalid, "the account has no email address").Saying("Your account has no email address")
	ErrAlreadyVerified     = fault.New(fault.Conflict, "the email address is already verified").Saying("Your email address is already verified")
)

// maxMailsInFlight bounds the verification mails being sent at once; past
// it a mail is dropped (the owner can ask again) rather than queued without
// bound.
const maxMailsInFlight = 16

// verifyMail is a verification link to mail once the change that made it
// has committed.
// verifyMail is a verification mail to send after the commit; lang is
// its language (locale.WithTag): the account's saved one, else the page's
// that caused it.
type verifyMail struct{ to, username, token, lang string }

// newToken returns a random 256-bit token and the SHA-256 stored for it.
func newToken() (string, []byte, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	h := sha256.Sum256([]byte(token))
	return token, h[:], nil
}

// newVerification stores a verification of u's current address (in the
// caller's transaction) and returns the mail to send after the commit.
func (s *Service) newVerification(ctx context.Context, u storage.User) (*verifyMail, error) {
	token, hash, err := newToken()
	if err != nil {
		return nil, err
	}
	now := s.clock()
	v := storage.EmailVerification{TokenHash: hash, UserID: u.ID, Email: u.Email, CreatedAt: now, ExpiresAt: now.Add(VerifyTTL)}
	if err := s.store.CreateEmailVerification(ctx, v); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, ErrUserNotFound
		}
		return nil, err
	}
	lang := u.Language
	if lang == "" {
		lang = locale.TagOf(ctx)
	}
	return &verifyMail{to: u.Email, username: u.Username, token: token, lang: lang}, nil
}

// afterEmailChange runs in the transaction of a change from before to
// after: a new address kills every pending link of the old one, and is
// itself sent a link unless it was set verified (by an admin).
func (s *Service) afterEmailChange(ctx context.Context, before, after storage.User) (*verifyMail, error) {
	if strings.EqualFold(before.Email, after.Email) {
		return nil, nil
	}
	if _, err := s.store.DeleteUserEmailVerifications(ctx, after.ID); err != nil {
		return nil, err
	}
	if after.Email == "" || after.EmailVerified {
		return nil, nil
	}
	return s.newVerification(ctx, after)
}

// sendVerification mails m off the caller's request: the change is
// committed, and a slow or failing mail server must not hold it up or undo
// it. A lost mail is sent again on request (ResendEmailVerification).
func (s *Service) sendVerification(m *verifyMail) {
	if m == nil || s.mailer == nil {
		return
	}
	select {
	case s.mailSlots <- struct{}{}:
	default:
		s.log.Warn("email verification mail dropped: too many being sent (the owner can ask again)")
		return
	}
	go func() {
		defer func() { <-s.mailSlots }()
		ctx, cancel := context.WithTimeout(locale.WithTag(context.Background(), m.lang), 2*time.Minute)
		defer cancel()
		if err := s.mailer.SendEmailVerification(ctx, m.to, m.username, m.token); err != nil {
			s.log.Warn("email verification mail failed", "err", err)
		}
	}()
}

// VerifyEmail spends a verification token: when it is live and was sent to
// the address the account still has, the address becomes verified. Every
// other pending link of the user dies with it.
func (s *Service) VerifyEmail(ctx context.Context, token string) (storage.User, error) {
	if len(token) != 43 {
		return storage.User{}, ErrInvalidVerification
	}
	h := sha256.Sum256([]byte(token))
	var u storage.User
	err := s.atomically(ctx, func(ctx context.Context) error {
		v, err := s.store.ConsumeEmailVerification(ctx, h[:], s.clock())
		if errors.Is(err, storage.ErrNotFound) {
			return ErrInvalidVerification
		}
		if err != nil {
			return err
		}
		u, err = s.store.UpdateUser(ctx, v.UserID, func(u storage.User) (storage.User, error) {
			if u.Email == "" || !strings.EqualFold(u.Email, v.Email) {
				return u, ErrInvalidVerification
			}
			u.EmailVerified = true
			u.UpdatedAt = s.clock()
			return u, nil
		})
		if errors.Is(err, storage.ErrNotFound) {
			return ErrInvalidVerification
		}
		if err != nil {
			return err
		}
		return s.event(ctx, audit.EmailVerified, v.UserID, nil)
	})
	if err != nil {
		return storage.User{}, err
	}
	return u, nil
}

// ResendEmailVerification mails a new link to the user's unverified
// address (earlier links keep working until they expire or one is used).
func (s *Service) ResendEmailVerification(ctx context.Context, userID string) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	switch {
	case u.Email == "":
		return ErrNoEmail
	case u.EmailVerified:
		return ErrAlreadyVerified
	}
	m, err := s.newVerification(ctx, u)
	if err != nil {
		return err
	}
	s.sendVerification(m)
	return nil
}
