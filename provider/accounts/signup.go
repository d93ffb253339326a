package accounts

import (
	"context"
	"errors"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/storage"
)

// Who may create which account, decided once for every front door: the
// User API's createUser, the sign-up page, a new identity arriving through
// a connector. The rules:
//
//   - anyone may create a user account while registration is open; only
//     admins create one while it is closed;
//   - only admins create guests and admins, or, while no admin exists, the
//     bootstrap security code creates the first admin;
//   - a sign-up is checked against the rules BEFORE it is counted (a typo
//     costs nothing), then counted against the per-address sign-up budget
//     before anything is looked up or hashed: each attempt costs a password
//     hash and tells whether a username or email is taken. An admin is not
//     counted.

// Registration says who creates user accounts. cmd/tonearm maps
// TONEARM_REGISTRATION onto it (provider/* does not import config); the
// zero value is the closed one.
type Registration int

const (
	RegistrationAdmin Registration = iota // only admins create users
	RegistrationOpen                      // anyone signs up
)

// Reservation is an attempt counted first; GiveBack returns it when the
// attempt turned out not to be a wrong guess.
type Reservation interface {
	GiveBack(ctx context.Context)
}

// SignupLimits are the counters of one request that account creation
// consults, each counted first (web.LoginLimiter.Attempts in the server:
// the request's address, in the database).
type SignupLimits interface {
	// Signup counts an attempt to create an account; an error (a
	// *ThrottledError) refuses it.
	Signup(ctx context.Context) error
	// SecurityCode reserves a guess at the bootstrap security code.
	SecurityCode(ctx context.Context) (Reservation, error)
}

// Requester is who asks for an account, as the transport found out; the
// policy asks only what it needs, when it needs it.
type Requester interface {
	// Admin reports whether the request is an admin's. An *AnonymousError
	// says it carries no valid credentials; any other error refuses the
	// credentials it carries and is returned as is.
	Admin(ctx context.Context) (bool, error)
	// ActAsAdmin applies the admin policy (the second factor that
	// TONEARM_ADMIN_MFA asks for) before an admin creates what only admins
	// may create.
	ActAsAdmin(ctx context.Context) error
}

// AnonymousError is a Requester's answer for a request without valid
// credentials; Err is the transport's own answer to that (nil: none, the
// policy words the refusal).
type AnonymousError struct{ Err error }

func (e *AnonymousError) Error() string {
	if e.Err == nil {
		return "accounts: the request names no one"
	}
	return e.Err.Error()
}

func (e *AnonymousError) Unwrap() error { return e.Err }

// Anonymous is the Requester of a front door that knows no caller (the
// sign-up page, a connector): its sign-ups are always counted.
var Anonymous Requester = anonymous{}

type anonymous struct{}

func (anonymous) Admin(context.Context) (bool, error) { return false, &AnonymousError{} }
func (anonymous) ActAsAdmin(context.Context) error    { return &AnonymousError{} }

var (
	// ErrRegistrationClosed: a user account asked for by someone other
	// than an admin while registration is closed.
	ErrRegistrationClosed = errors.New("accounts: registration is closed: only admins create users")
	// ErrAdminCredentials: an admin account asked for with neither an
	// admin's credentials nor the bootstrap security code.
	ErrAdminCredentials = errors.New("accounts: creating an admin needs an admin or the bootstrap security code")
	// ErrEmailHeld: an upstream identity whose email an account holds; the
	// person signs in to that account and links the identity there (never
	// automatically: the upstream may not own the mailbox).
	ErrEmailHeld = errors.New("accounts: an account holds this email")
)

// AdminOnlyError: a guest or admin account asked for by someone other
// than an admin.
type AdminOnlyError struct{ Role string }

func (e *AdminOnlyError) Error() string {
	return "accounts: only admins (or the bootstrap security code) create " + e.Role + " accounts"
}

// Signups applies the account creation policy.
type Signups struct {
	acc       *Service
	mode      Registration
	bootstrap *Bootstrap
}

// NewSignups returns the policy over acc; bootstrap (nil: none) holds the
// first-admin security code.
func NewSignups(acc *Service, mode Registration, bootstrap *Bootstrap) (*Signups, error) {
	if acc == nil {
		return nil, errors.New("accounts: Signups needs the accounts service")
	}
	if bootstrap == nil {
		bootstrap = &Bootstrap{}
	}
	return &Signups{acc: acc, mode: mode, bootstrap: bootstrap}, nil
}

// Open reports whether anyone may sign up.
func (s *Signups) Open() bool { return s.mode == RegistrationOpen }

// SignUp asks for an account: the new user and, for the first admin, the
// bootstrap security code.
type SignUp struct {
	NewUser
	SecurityCode string
}

// FieldError is what the rules refuse in one field of a new user:
// "username", "password", "role" or "profile".
type FieldError struct {
	Field string
	Err   error
}

// Problems lists what the rules refuse in n, field by field, in the order
// Create reports them; it looks nothing up and counts nothing.
func Problems(n NewUser) []FieldError {
	var out []FieldError
	if err := ValidateUsername(n.Username); err != nil {
		out = append(out, FieldError{"username", err})
	}
	if err := ValidatePassword(n.Password); err != nil {
		out = append(out, FieldError{"password", err})
	}
	if !ValidRole(n.Role) {
		out = append(out, FieldError{"role", invalidText(locale.M("Role must be admin, user or guest"))})
	}
	if err := n.Profile.apply(&storage.User{}); err != nil {
		out = append(out, FieldError{"profile", err})
	}
	return out
}

// Create creates the account req asks for if who may ask for it: the
// role first (an empty one is user), then who asks, then the rules, then
// the budget (ErrRegistrationClosed, *AdminOnlyError, ErrAdminCredentials,
// ErrBadSecurityCode, an invalid or throttled fault error, or what
// Service.Create answers).
func (s *Signups) Create(ctx context.Context, req SignUp, who Requester, lim SignupLimits) (storage.User, error) {
	n := req.NewUser
	if n.Role == "" {
		n.Role = storage.RoleUser
	}
	if !ValidRole(n.Role) {
		return storage.User{}, invalidText(locale.M("Role must be admin, user or guest"))
	}
	if n.Role == storage.RoleAdmin && req.SecurityCode != "" {
		// The rules before the guess, as before any count: a request the
		// rules refuse spends nothing of the code's five guesses per
		// address nor of the twenty that burn it.
		if p := Problems(n); len(p) > 0 {
			return storage.User{}, p[0].Err
		}
		return s.createFirstAdmin(ctx, req.SecurityCode, n, lim)
	}
	if n.Role != storage.RoleUser || !s.Open() {
		if err := s.admitAdmin(ctx, n.Role, who); err != nil {
			return storage.User{}, err
		}
		return s.acc.Create(ctx, n)
	}
	if p := Problems(n); len(p) > 0 {
		return storage.User{}, p[0].Err // refused before it is counted
	}
	if admin, err := who.Admin(ctx); err != nil || !admin {
		if err := lim.Signup(ctx); err != nil {
			return storage.User{}, err
		}
	}
	return s.acc.Create(ctx, n)
}

// createFirstAdmin spends a guess at the bootstrap security code. The
// guess is counted before the code is compared, in the database: guesses
// sent at once, or to several replicas, stop at the same number as guesses
// sent one after another. Only a wrong code keeps its count.
func (s *Signups) createFirstAdmin(ctx context.Context, code string, n NewUser, lim SignupLimits) (storage.User, error) {
	guess, err := lim.SecurityCode(ctx)
	if err != nil {
		return storage.User{}, err
	}
	u, err := s.acc.CreateAdmin(ctx, s.bootstrap, code, n)
	if !errors.Is(err, ErrBadSecurityCode) {
		guess.GiveBack(ctx)
	}
	return u, err
}

// admitAdmin checks that who is an admin allowed to create an account of
// role.
func (s *Signups) admitAdmin(ctx context.Context, role string, who Requester) error {
	admin, err := who.Admin(ctx)
	var anon *AnonymousError
	if errors.As(err, &anon) {
		if role == storage.RoleAdmin {
			return ErrAdminCredentials
		}
		if anon.Err == nil {
			err = nil // no answer of the transport's: the policy's below
		}
	}
	if err != nil {
		return err
	}
	if !admin {
		if role == storage.RoleUser {
			return ErrRegistrationClosed
		}
		return &AdminOnlyError{Role: role}
	}
	return who.ActAsAdmin(ctx)
}

// CreateLinked creates the account of an upstream identity that no account
// is linked to, under the upstream's username. An account holding its
// email comes first (ErrEmailHeld), then the registration mode
// (ErrRegistrationClosed), then the budget. Unlike a password sign-up the
// attempt is counted before the username is checked: a taken or invalid
// one sends the person to choose another (Service.CreateLinked, not
// counted again), so this count pays for the whole sign-up.
func (s *Signups) CreateLinked(ctx context.Context, up Upstream, lim SignupLimits) (storage.User, error) {
	_, held, err := s.acc.EmailOwner(ctx, up.Email)
	if err != nil {
		return storage.User{}, err
	}
	if held {
		return storage.User{}, ErrEmailHeld
	}
	if !s.Open() {
		return storage.User{}, ErrRegistrationClosed
	}
	if err := lim.Signup(ctx); err != nil {
		return storage.User{}, err
	}
	return s.acc.CreateLinked(ctx, up.Username, up)
}
