package accounts

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/storage"
)

// countingLimits counts like the server's limiter: every attempt first,
// refused past max; a reservation given back is uncounted.
type countingLimits struct {
	max              int
	signups, guesses int
}

func (l *countingLimits) Signup(context.Context) error {
	l.signups++
	if l.signups > l.max {
		return &ThrottledError{RetryAfter: time.Minute, Reason: "sign-ups from this address"}
	}
	return nil
}

func (l *countingLimits) SecurityCode(context.Context) (Reservation, error) {
	l.guesses++
	if l.guesses > l.max {
		return nil, &ThrottledError{RetryAfter: time.Minute, Reason: "security code guesses from this address"}
	}
	return guessBack{l}, nil
}

type guessBack struct{ l *countingLimits }

func (g guessBack) GiveBack(context.Context) { g.l.guesses-- }

// asker is a Requester as a transport resolves it.
type asker struct {
	admin   bool
	err     error // the credentials refused
	actErr  error // the admin policy refuses
	actions int   // ActAsAdmin calls
}

func (a *asker) Admin(context.Context) (bool, error) { return a.admin, a.err }
func (a *asker) ActAsAdmin(context.Context) error {
	a.actions++
	return a.actErr
}

var (
	errBadToken   = errors.New("this access token is not valid")
	errWeakSignIn = errors.New("admins need two factors here")
)

// TestSignupPolicy holds the one account creation policy: registration
// mode × who asks × valid or not × budget left or not, and what is counted
// (validation comes before counting; an admin is not counted).
func TestSignupPolicy(t *testing.T) {
	const right, wrong = "right", "wrong" // stand for the real and a wrong bootstrap code
	valid := NewUser{Username: "newcomer", Password: "a-good-password"}
	with := func(n NewUser, f func(*NewUser)) NewUser { f(&n); return n }
	badName := with(valid, func(n *NewUser) { n.Username = "x" })
	badPassword := with(valid, func(n *NewUser) { n.Password = "short" })
	badEmail := with(valid, func(n *NewUser) { n.Profile.Email = Value("not-an-email") })
	guest := with(valid, func(n *NewUser) { n.Role = storage.RoleGuest })
	admin := with(valid, func(n *NewUser) { n.Role = storage.RoleAdmin })
	root := with(valid, func(n *NewUser) { n.Role = "root" })
	anon := func() Requester { return Anonymous }
	signedIn := func() Requester { return &asker{} }
	anAdmin := func() Requester { return &asker{admin: true} }
	weakAdmin := func() Requester { return &asker{admin: true, actErr: errWeakSignIn} }
	badCreds := func() Requester { return &asker{err: errBadToken} }
	anonCreds := func() Requester { return &asker{err: &AnonymousError{Err: errBadToken}} }

	cases := []struct {
		name    string
		mode    Registration
		n       NewUser
		code    string
		who     func() Requester
		budget  int // attempts the limits allow
		want    error
		created bool
		signups int // sign-up attempts counted
		guesses int // security code guesses kept
		// adminExists: an active admin exists before the request.
		adminExists bool
	}{
		{"open, anyone, valid", RegistrationOpen, valid, "", anon, 5, nil, true, 1, 0, false},
		{"open, anyone, budget spent", RegistrationOpen, valid, "", anon, 0, &ThrottledError{}, false, 1, 0, false},
		{"open, anyone, bad username: not counted", RegistrationOpen, badName, "", anon, 5, kindOf(fault.Invalid), false, 0, 0, false},
		{"open, anyone, bad password: not counted", RegistrationOpen, badPassword, "", anon, 5, kindOf(fault.Invalid), false, 0, 0, false},
		{"open, anyone, bad email: not counted", RegistrationOpen, badEmail, "", anon, 5, kindOf(fault.Invalid), false, 0, 0, false},
		{"open, invalid role first", RegistrationOpen, root, "", anon, 5, kindOf(fault.Invalid), false, 0, 0, false},
		{"open, signed-in user counted", RegistrationOpen, valid, "", signedIn, 5, nil, true, 1, 0, false},
		{"open, refused credentials counted as anyone", RegistrationOpen, valid, "", badCreds, 5, nil, true, 1, 0, false},
		{"open, admin not counted", RegistrationOpen, valid, "", anAdmin, 0, nil, true, 0, 0, false},
		{"open, guest by anyone", RegistrationOpen, guest, "", anon, 5, &AdminOnlyError{}, false, 0, 0, false},
		{"open, guest by a user", RegistrationOpen, guest, "", signedIn, 5, &AdminOnlyError{}, false, 0, 0, false},
		{"open, guest by an admin", RegistrationOpen, guest, "", anAdmin, 0, nil, true, 0, 0, false},
		{"open, guest by a one-factor admin", RegistrationOpen, guest, "", weakAdmin, 5, errWeakSignIn, false, 0, 0, false},
		{"open, admin by anyone", RegistrationOpen, admin, "", anon, 5, ErrAdminCredentials, false, 0, 0, false},
		{"open, admin by refused anonymous credentials", RegistrationOpen, admin, "", anonCreds, 5, ErrAdminCredentials, false, 0, 0, false},
		{"open, admin by a user", RegistrationOpen, admin, "", signedIn, 5, &AdminOnlyError{}, false, 0, 0, false},
		{"open, admin by refused credentials", RegistrationOpen, admin, "", badCreds, 5, errBadToken, false, 0, 0, false},
		{"open, admin by an admin", RegistrationOpen, admin, "", anAdmin, 0, nil, true, 0, 0, false},
		{"closed, user by anyone", RegistrationAdmin, valid, "", anon, 5, ErrRegistrationClosed, false, 0, 0, false},
		{"closed, user by refused anonymous credentials", RegistrationAdmin, valid, "", anonCreds, 5, errBadToken, false, 0, 0, false},
		{"closed, user by a user", RegistrationAdmin, valid, "", signedIn, 5, ErrRegistrationClosed, false, 0, 0, false},
		{"closed, user by refused credentials", RegistrationAdmin, valid, "", badCreds, 5, errBadToken, false, 0, 0, false},
		{"closed, user by an admin, not counted", RegistrationAdmin, valid, "", anAdmin, 0, nil, true, 0, 0, false},
		{"closed, user by a one-factor admin", RegistrationAdmin, valid, "", weakAdmin, 5, errWeakSignIn, false, 0, 0, false},
		{"closed, bad user by an admin", RegistrationAdmin, badName, "", anAdmin, 5, kindOf(fault.Invalid), false, 0, 0, false},
		{"closed, bad user by anyone: who first", RegistrationAdmin, badName, "", anon, 5, ErrRegistrationClosed, false, 0, 0, false},
		{"bootstrap code, anyone", RegistrationAdmin, admin, right, anon, 5, nil, true, 0, 0, false},
		{"bootstrap code, open", RegistrationOpen, admin, right, anon, 5, nil, true, 0, 0, false},
		{"wrong bootstrap code kept", RegistrationAdmin, admin, wrong, anon, 5, ErrBadSecurityCode, false, 0, 1, false},
		{"bootstrap guesses spent", RegistrationAdmin, admin, right, anon, 0, &ThrottledError{}, false, 0, 1, false},
		{"wrong bootstrap code, bad username: refused before the guess", RegistrationAdmin, with(admin, func(n *NewUser) { n.Username = "a b!" }), wrong, anon, 5, kindOf(fault.Invalid), false, 0, 0, false},
		{"bootstrap code, bad admin: given back", RegistrationAdmin, with(admin, func(n *NewUser) { n.Password = "short" }), right, anon, 5, kindOf(fault.Invalid), false, 0, 0, false},
		{"a code for a user is no code", RegistrationAdmin, valid, right, anon, 5, ErrRegistrationClosed, false, 0, 0, false},
		// Once an admin exists, the code is no way in, right or wrong: 409,
		// and the guess is given back (docs/accounts.md).
		{"admin exists, right code", RegistrationAdmin, admin, right, anon, 5, ErrAdminExists, false, 0, 0, true},
		{"admin exists, wrong code", RegistrationAdmin, admin, wrong, anon, 5, ErrAdminExists, false, 0, 0, true},
		{"admin exists, open, wrong code", RegistrationOpen, admin, wrong, anon, 5, ErrAdminExists, false, 0, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			acc, store := newService(t)
			ctx := context.Background()
			b, code, err := NewBootstrap(ctx, store)
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewSignups(acc, tc.mode, b)
			if err != nil {
				t.Fatal(err)
			}
			if tc.adminExists {
				if _, err := acc.Create(ctx, NewUser{Username: "first-admin", Password: "a-good-password", Role: storage.RoleAdmin}); err != nil {
					t.Fatal(err)
				}
			}
			req := SignUp{NewUser: tc.n}
			switch tc.code {
			case right:
				req.SecurityCode = code
			case wrong:
				req.SecurityCode = "000000"
				if code == req.SecurityCode {
					req.SecurityCode = "000001"
				}
			}
			lim := &countingLimits{max: tc.budget}
			u, err := s.Create(ctx, req, tc.who(), lim)
			checkErr(t, err, tc.want)
			_, lookErr := store.GetUserByUsername(ctx, tc.n.Username)
			if created := lookErr == nil; created != tc.created || (tc.created && u.Username != tc.n.Username) {
				t.Errorf("created = %v (returned %q), want %v", created, u.Username, tc.created)
			}
			if lim.signups != tc.signups || lim.guesses != tc.guesses {
				t.Errorf("counted %d sign-ups and kept %d guesses, want %d and %d", lim.signups, lim.guesses, tc.signups, tc.guesses)
			}
		})
	}
}

// kindOf wants any error of that kind (a validation error says which
// field in its message; the kind is what the caller acts on).
type kindOf fault.Kind

func (k kindOf) Error() string { return fault.Kind(k).String() }

// checkErr: nil wants nil, a kindOf an error of that kind, a pointer type wants that type, a sentinel
// itself.
func checkErr(t *testing.T, err, want error) {
	t.Helper()
	var ok bool
	switch k := want.(type) {
	case nil:
		ok = err == nil
	case kindOf:
		ok = fault.Is(err, fault.Kind(k))
	case *ThrottledError:
		var te *ThrottledError
		ok = errors.As(err, &te)
	case *AdminOnlyError:
		var ae *AdminOnlyError
		ok = errors.As(err, &ae)
	default:
		ok = errors.Is(err, want)
	}
	if !ok {
		t.Fatalf("error = %v, want %T %v", err, want, want)
	}
}

// TestSignupCreateLinked holds the policy for a new upstream identity: an
// account holding its email first, then the mode, then the budget, which
// is counted before the username is checked (the person then chooses
// another without a second count).
func TestSignupCreateLinked(t *testing.T) {
	up := func(username, email string) Upstream {
		return Upstream{ConnectorID: "mb", Kind: "musicbrainz", Issuer: "https://mb.example", Subject: "s-" + username,
			Username: username, Email: email, EmailVerified: true}
	}
	cases := []struct {
		name    string
		mode    Registration
		up      Upstream
		budget  int
		want    error
		signups int
	}{
		{"open", RegistrationOpen, up("fromupstream", "new@example.org"), 5, nil, 1},
		{"open, budget spent", RegistrationOpen, up("fromupstream", ""), 0, &ThrottledError{}, 1},
		{"open, email held", RegistrationOpen, up("fromupstream", "held@example.org"), 5, ErrEmailHeld, 0},
		{"open, invalid username: counted", RegistrationOpen, up("x", ""), 5, kindOf(fault.Invalid), 1},
		{"open, username taken: counted", RegistrationOpen, up("holder", ""), 5, ErrUsernameTaken, 1},
		{"closed", RegistrationAdmin, up("fromupstream", ""), 5, ErrRegistrationClosed, 0},
		{"closed, email held first", RegistrationAdmin, up("fromupstream", "held@example.org"), 5, ErrEmailHeld, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			acc, store := newService(t)
			ctx := context.Background()
			if err := store.CreateConnector(ctx, storage.Connector{ID: "mb", Kind: "musicbrainz", Name: "MusicBrainz", ClientID: "c",
				BaseURL: "https://mb.example", CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if _, err := acc.Create(ctx, NewUser{Username: "holder", Password: "a-good-password", Role: storage.RoleUser,
				Profile: ProfileUpdate{Email: Value("held@example.org")}}); err != nil {
				t.Fatal(err)
			}
			s, err := NewSignups(acc, tc.mode, nil)
			if err != nil {
				t.Fatal(err)
			}
			lim := &countingLimits{max: tc.budget}
			u, err := s.CreateLinked(ctx, tc.up, lim)
			checkErr(t, err, tc.want)
			if tc.want == nil && (u.Username != tc.up.Username || u.Email != tc.up.Email || !u.EmailVerified) {
				t.Errorf("created %+v", u)
			}
			if lim.signups != tc.signups {
				t.Errorf("counted %d sign-ups, want %d", lim.signups, tc.signups)
			}
		})
	}
}
