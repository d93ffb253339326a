package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/provider/passkeys"
	"github.com/tonearm-idp/tonearm/storage"
)

// UnavailableRetryAfter is the Retry-After, in seconds, of a 503 for a
// database that cannot be reached: a restart or fail-over takes seconds,
// and clients that retry sooner only add to the queue behind it.
const UnavailableRetryAfter = "5"

// UnavailableMessage is what a person or an app reads while the database
// is gone: not their fault, nothing kept, try again.
const UnavailableMessage = "The service is temporarily unavailable (its database cannot be reached); nothing was changed, try again shortly"

// Unavailable reports whether err means the database is gone for now
// (storage.ErrUnavailable): 503 with Retry-After, never 401 or 500, so
// that clients retry instead of treating their credentials as wrong.
func Unavailable(err error) bool { return errors.Is(err, storage.ErrUnavailable) }

// UnavailablePage is the error page shown while the database is gone.
var UnavailablePage = ErrorPage{Title: "Temporarily unavailable", Message: UnavailableMessage + "."}

// SetUnavailable sets the Retry-After of a 503 for a database that is gone.
func SetUnavailable(w http.ResponseWriter) { w.Header().Set("Retry-After", UnavailableRetryAfter) }

// ErrorMessage words an error for a person or a JSON answer, with its
// status: the one mapping every API and page uses. ok is false for an
// error it does not know (500, "internal error"; log it).
func ErrorMessage(err error) (status int, message string, ok bool) {
	var (
		he  *HTTPError
		ve  *accounts.ValidationError
		cve *clients.ValidationError
		te  *accounts.ThrottledError
	)
	// First: a storage failure may come wrapped in any domain error.
	if Unavailable(err) {
		return http.StatusServiceUnavailable, UnavailableMessage, true
	}
	if status, msg, ok := apiError(err); ok {
		return status, msg, true
	}
	switch {
	case errors.As(err, &he):
		return he.status, he.message, true
	case errors.As(err, &ve):
		return http.StatusBadRequest, ve.Message, true
	case errors.As(err, &cve):
		return http.StatusBadRequest, cve.Message, true
	case errors.Is(err, accounts.ErrUsernameTaken):
		return http.StatusConflict, "Username is already taken", true
	case errors.Is(err, accounts.ErrEmailTaken):
		return http.StatusConflict, "Email already exists", true
	case errors.Is(err, accounts.ErrLastAdmin):
		return http.StatusConflict, "The last active admin cannot be deleted, demoted or disabled", true
	case errors.Is(err, clients.ErrExists):
		return http.StatusConflict, "A client with this ID already exists", true
	case errors.Is(err, clients.ErrNotFound):
		return http.StatusNotFound, "No such client", true
	case errors.Is(err, accounts.ErrInvalidCredentials):
		return http.StatusUnauthorized, "Invalid username or password", true
	case errors.Is(err, accounts.ErrDisabled):
		return http.StatusForbidden, "This account is disabled", true
	case errors.As(err, &te):
		return http.StatusTooManyRequests, throttledMessage(te), true
	case errors.Is(err, accounts.ErrReauthRequired):
		return http.StatusForbidden, "Changing the email address needs currentPassword (or a sign-in within the last 5 minutes)", true
	case errors.Is(err, accounts.ErrWrongPassword):
		return http.StatusForbidden, "The current password is wrong", true
	case errors.Is(err, accounts.ErrBadSecurityCode):
		return http.StatusForbidden, "Wrong or expired security code (each start-up logs a new one while no admin exists)", true
	case errors.Is(err, accounts.ErrAdminExists):
		return http.StatusConflict, "An admin already exists: the security code only creates the first admin; ask an admin to create this account", true
	case errors.Is(err, accounts.ErrInvalidResetCode):
		return http.StatusBadRequest, "The reset token is invalid or has expired", true
	case errors.Is(err, accounts.ErrNoEmail):
		return http.StatusBadRequest, "Your account has no email address", true
	case errors.Is(err, accounts.ErrAlreadyVerified):
		return http.StatusConflict, "Your email address is already verified", true
	case errors.Is(err, accounts.ErrInvalidVerification):
		return http.StatusBadRequest, "The verification link is invalid, used or expired", true
	case errors.Is(err, accounts.ErrPasskeyOnly):
		return http.StatusConflict, "This account signs in with passkeys only", true
	case errors.Is(err, accounts.ErrLastPasskey):
		return http.StatusConflict, "This is your last passkey and your account signs in with passkeys only: set a password first", true
	case errors.Is(err, accounts.ErrPasskeyNotUsed):
		return http.StatusForbidden, "Sign in with one of your passkeys first, so you know it works", true
	case errors.Is(err, accounts.ErrRecentSignIn):
		return http.StatusForbidden, "Sign in again (within the last 5 minutes) to make this change", true
	case errors.Is(err, accounts.ErrNoPasskey):
		return http.StatusNotFound, "No such passkey", true
	case errors.Is(err, passkeys.ErrRejected):
		return http.StatusBadRequest, "The passkey could not be verified", true
	case errors.Is(err, passkeys.ErrExists):
		return http.StatusConflict, "This passkey is already registered", true
	case errors.Is(err, accounts.ErrUserNotFound):
		return http.StatusNotFound, "No such user", true
	case errors.Is(err, accounts.ErrInvalidToken):
		return http.StatusBadRequest, "ListenBrainz does not accept this token", true
	case errors.Is(err, accounts.ErrGuestNoToken):
		return http.StatusForbidden, "Guest accounts cannot associate a ListenBrainz token", true
	case errors.Is(err, accounts.ErrTokenCheckFailed):
		return http.StatusBadGateway, "ListenBrainz could not be reached; try again later", true
	case errors.Is(err, accounts.ErrBusy):
		return http.StatusServiceUnavailable, "Too many sign-ins in progress; try again shortly", true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "Request was cancelled or took too long", true
	}
	return http.StatusInternalServerError, "internal error", false
}

// ErrorAnswer is ErrorMessage for an answer about to be written to w: it
// also sets the headers that go with the status, Retry-After on a 429 of
// a limit (docs/security.md) and on a 503, so that every page tells what
// the APIs tell. Every page handler words its errors through it.
func ErrorAnswer(w http.ResponseWriter, err error) (status int, message string, ok bool) {
	setErrorHeaders(w, err)
	return ErrorMessage(err)
}

// setErrorHeaders sets the headers err's answer carries.
func setErrorHeaders(w http.ResponseWriter, err error) {
	var (
		he *HTTPError
		te *accounts.ThrottledError
	)
	switch {
	case Unavailable(err):
		SetUnavailable(w)
	case errors.As(err, &he):
		for k, v := range he.header {
			w.Header().Set(k, v)
		}
	case errors.As(err, &te):
		// RFC 6585 §4: a 429 may say how long to wait.
		w.Header().Set("Retry-After", strconv.Itoa(te.Seconds()))
	case errors.Is(err, accounts.ErrBusy):
		w.Header().Set("Retry-After", "1")
	}
}

// throttledMessage says why a password check must wait, and how long.
func throttledMessage(te *accounts.ThrottledError) string {
	if te.Account {
		return "Too many failed sign-ins for this account from browsers it has not signed in on; try again in " + waitText(te.RetryAfter)
	}
	if te.Reason != "" {
		return fmt.Sprintf("Too many %s; try again in %s", te.Reason, waitText(te.RetryAfter))
	}
	return fmt.Sprintf("Too many failed password attempts; try again in %s", waitText(te.RetryAfter))
}

// waitText is d in whole seconds or minutes, rounded up, in plain words
// ("1 second", "30 seconds", "15 minutes").
func waitText(d time.Duration) string {
	n, unit := int((d+time.Second-1)/time.Second), "second"
	if d >= time.Minute {
		n, unit = int((d+time.Minute-1)/time.Minute), "minute"
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("%d %s", n, unit)
}

// apiError maps the registry's errors.
func apiError(err error) (int, string, bool) {
	var (
		ve    *apis.ValidationError
		taken *apis.ScopeTakenError
		inUse *apis.InUseError
	)
	switch {
	case errors.As(err, &ve):
		return http.StatusBadRequest, ve.Message, true
	case errors.As(err, &taken):
		return http.StatusConflict, taken.Error(), true
	case errors.As(err, &inUse):
		return http.StatusConflict, inUse.Error(), true
	case errors.Is(err, apis.ErrExists):
		return http.StatusConflict, "An API with this identifier already exists", true
	case errors.Is(err, apis.ErrNotFound):
		return http.StatusNotFound, "No such API", true
	}
	var cve *connectors.ValidationError
	switch {
	case errors.As(err, &cve):
		return http.StatusBadRequest, cve.Message, true
	case errors.Is(err, accounts.ErrNotLinked):
		return http.StatusNotFound, "That sign-in method is not linked to this account", true
	case errors.Is(err, accounts.ErrLinkedElsewhere):
		return http.StatusConflict, "This identity is linked to another account", true
	case errors.Is(err, accounts.ErrAlreadyLinked):
		return http.StatusConflict, "This account is already linked through this connector: unlink it first", true
	case errors.Is(err, accounts.ErrSecondFactorRequired):
		return http.StatusUnauthorized, "This account signs in with a second factor: sign in on the sign-in page", true
	case errors.Is(err, accounts.ErrWrongCode):
		return http.StatusUnauthorized, "That code is wrong, expired or used already", true
	case errors.Is(err, accounts.ErrTOTPEnrolled):
		return http.StatusConflict, "An authenticator app is already set up: remove it first", true
	case errors.Is(err, accounts.ErrNoTOTP):
		return http.StatusNotFound, "This account has no authenticator app", true
	case errors.Is(err, accounts.ErrEnrolmentExpired):
		return http.StatusBadRequest, "This setup expired: reload the page and scan the new code", true
	case errors.Is(err, accounts.ErrSecondFactorProof):
		return http.StatusForbidden, "Removing the authenticator app needs your password or a current code", true
	case errors.Is(err, accounts.ErrLastSignInMethod):
		return http.StatusConflict, "This is the only way to sign in to this account: set a password or add a passkey first", true
	}
	return 0, "", false
}

// WriteAPIError renders err as {"error": …} with its status. Unknown errors are
// logged once with the request ID and answered with a bare 500.
func WriteAPIError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	switch {
	case Unavailable(err):
		log.Warn("database unavailable", "request_id", RequestID(r.Context()), "path", r.URL.Path, "err", err)
	case errors.Is(err, accounts.ErrTokenCheckFailed):
		log.Warn("ListenBrainz token check failed", "request_id", RequestID(r.Context()), "err", err)
	}
	status, msg, ok := ErrorAnswer(w, err)
	if !ok {
		log.Error("request failed", "request_id", RequestID(r.Context()), "path", r.URL.Path, "err", err)
	}
	WriteError(w, status, msg)
}
