package web

import (
	"context"
	"net/http"

	"github.com/tonearm-idp/tonearm/provider/accounts"
)

// Attempts returns the limits of request r as the account services ask
// for them (accounts.SignupLimits, accounts.RecoveryLimits): the same
// count-first database counters, keyed by r's address and honouring its
// known-device cookie.
func (l *LoginLimiter) Attempts(r *http.Request) *RequestAttempts {
	return &RequestAttempts{l: l, r: r}
}

// RequestAttempts is LoginLimiter bound to one request.
type RequestAttempts struct {
	l *LoginLimiter
	r *http.Request
}

var (
	_ accounts.SignupLimits   = (*RequestAttempts)(nil)
	_ accounts.RecoveryLimits = (*RequestAttempts)(nil)
)

// Signup counts an attempt to create an account.
func (a *RequestAttempts) Signup(ctx context.Context) error { return a.l.Signup(ctx, a.r) }

// SecurityCode reserves a guess at the bootstrap security code.
func (a *RequestAttempts) SecurityCode(ctx context.Context) (accounts.Reservation, error) {
	return reservation(a.l.SecurityCode(ctx, a.r))
}

// ResetRequest counts a password reset asked for email.
func (a *RequestAttempts) ResetRequest(ctx context.Context, email string, owner bool) error {
	return a.l.ResetRequest(ctx, a.r, email, owner)
}

// ResetToken reserves an attempt at a password reset token.
func (a *RequestAttempts) ResetToken(ctx context.Context) (accounts.Reservation, error) {
	return reservation(a.l.ResetToken(ctx, a.r))
}

// VerifyToken reserves an attempt at an email verification token.
func (a *RequestAttempts) VerifyToken(ctx context.Context) (accounts.Reservation, error) {
	return reservation(a.l.VerifyToken(ctx, a.r))
}

// KnownDevice is the owner of the request's known-device cookie, if any.
func (a *RequestAttempts) KnownDevice() (userID string, epoch int64) {
	return a.l.devices.Read(a.r).Owner()
}

// reservation hands a Reservation on as the interface (never a typed nil).
func reservation(res Reservation, err error) (accounts.Reservation, error) {
	if err != nil {
		return nil, err
	}
	return &res, nil
}
