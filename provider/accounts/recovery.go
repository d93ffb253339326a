package accounts

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

// Recovery runs the password reset and the email verification with their
// limits, for the JSON API and the pages alike: a transport reads the
// form or the body and words the answer; the flow and its counting are
// here, once.

// resetWorkers bounds the reset mails being made at once.
const resetWorkers = 8

// resetMailTimeout bounds the lookup, the token and the mail of one reset,
// which run after the request has been answered.
const resetMailTimeout = 30 * time.Second

// RecoveryLimits are the counters of one request that recovery consults,
// each counted first (web.LoginLimiter.Attempts in the server).
type RecoveryLimits interface {
	// ResetRequest counts a reset asked for email; owner (the request
	// comes from the account's known browser) spares it the per-email
	// limit, so that a stranger cannot keep the owner from resetting.
	ResetRequest(ctx context.Context, email string, owner bool) error
	// ResetToken and VerifyToken reserve an attempt at a mailed token;
	// only a wrong token keeps it.
	ResetToken(ctx context.Context) (Reservation, error)
	VerifyToken(ctx context.Context) (Reservation, error)
	// KnownDevice is the account whose known-device cookie the request
	// carries ("" for none) and that cookie's device epoch.
	KnownDevice() (userID string, epoch int64)
}

// RecoveryConfig configures NewRecovery.
type RecoveryConfig struct {
	Accounts *Service
	// Mailer delivers reset tokens.
	Mailer Mailer
	Logger *slog.Logger
	// RequestID names the request of ctx in the log (optional).
	RequestID func(ctx context.Context) string
}

// Recovery is the reset and verification service.
type Recovery struct {
	acc       *Service
	mailer    Mailer
	log       *slog.Logger
	requestID func(ctx context.Context) string
	workers   chan struct{}
}

// NewRecovery returns the recovery service, refusing missing dependencies.
func NewRecovery(c RecoveryConfig) (*Recovery, error) {
	if c.Accounts == nil || c.Mailer == nil || c.Logger == nil {
		return nil, errors.New("accounts: Recovery needs the accounts service, a mailer and a logger")
	}
	id := c.RequestID
	if id == nil {
		id = func(context.Context) string { return "" }
	}
	return &Recovery{acc: c.Accounts, mailer: c.Mailer, log: c.Logger, requestID: id, workers: make(chan struct{}, resetWorkers)}, nil
}

// StartReset checks the email, applies the request limits, then looks the
// email up, makes the token and mails it after the caller has answered: the
// answer is the same whether or not an account has this email, and
// neither its body nor its timing tells.
func (rc *Recovery) StartReset(ctx context.Context, email string, lim RecoveryLimits) error {
	if err := ValidateEmail(email); err != nil {
		return err
	}
	if err := lim.ResetRequest(ctx, foldEmail(email), rc.ownersBrowser(ctx, email, lim)); err != nil {
		return err
	}
	select {
	case rc.workers <- struct{}{}:
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), resetMailTimeout)
		reqID := rc.requestID(ctx)
		go func() {
			defer func() { <-rc.workers; cancel() }()
			if err := rc.acc.RequestPasswordReset(bg, email, rc.mailer); err != nil {
				rc.log.Error("password reset request failed", "request_id", reqID, "err", err)
			}
		}()
	default:
		rc.log.Warn("password reset request dropped: too many in progress", "request_id", rc.requestID(ctx))
	}
	return nil
}

// ownersBrowser reports whether the request comes from a browser that has
// signed in to the account with this email (its known-device cookie). Only
// a request carrying a valid cookie costs a lookup, so timing tells a
// stranger nothing.
func (rc *Recovery) ownersBrowser(ctx context.Context, email string, lim RecoveryLimits) bool {
	userID, epoch := lim.KnownDevice()
	if userID == "" {
		return false
	}
	u, err := rc.acc.GetUser(ctx, userID)
	return err == nil && u.DeviceEpoch == epoch && u.Email != "" && foldEmail(u.Email) == foldEmail(email)
}

// FinishReset applies the attempt limit and sets the new password.
func (rc *Recovery) FinishReset(ctx context.Context, token, password string, lim RecoveryLimits) error {
	attempt, err := lim.ResetToken(ctx)
	if err != nil {
		return err
	}
	if err := rc.acc.ResetPassword(ctx, token, password); err != nil {
		// Every refusal keeps its count: a wrong token, and a right one
		// with a password the policy refuses.
		return err
	}
	attempt.GiveBack(ctx)
	rc.log.Info("password reset completed", "request_id", rc.requestID(ctx))
	return nil
}

// VerifyEmail spends a verification link's token, a limited number of
// wrong tokens per address.
func (rc *Recovery) VerifyEmail(ctx context.Context, token string, lim RecoveryLimits) (storage.User, error) {
	attempt, err := lim.VerifyToken(ctx)
	if err != nil {
		return storage.User{}, err
	}
	u, err := rc.acc.VerifyEmail(ctx, token)
	if !errors.Is(err, ErrInvalidVerification) {
		attempt.GiveBack(ctx)
	}
	return u, err
}

// foldEmail lowers ASCII letters only, as the per-email counter always
// has (its keys must not move between versions).
func foldEmail(e string) string {
	b := []byte(e)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}
