// Package accounts holds tonearm's user logic: creating users, checking
// passwords, browser sessions and the ListenBrainz link. It talks to storage
// through the narrow Store interface and to ListenBrainz through
// TokenValidator; cmd/tonearm connects the real ones.
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
)

// Store is what accounts needs from storage.
type Store interface {
	CreateUser(ctx context.Context, u storage.User) error
	GetUser(ctx context.Context, id string) (storage.User, error)
	GetUserByUsername(ctx context.Context, username string) (storage.User, error)
	UpdateUser(ctx context.Context, id string, update func(storage.User) (storage.User, error)) (storage.User, error)
	GetUserByEmail(ctx context.Context, email string) (storage.User, error)
	DeleteUser(ctx context.Context, id string) error
	ListUsers(ctx context.Context, f storage.UserFilter) ([]storage.User, error)
	CountActiveAdmins(ctx context.Context) (int64, error)
	DeleteOAuthRequestsBySubject(ctx context.Context, subject string) (int64, error)
	CreatePasswordReset(ctx context.Context, r storage.PasswordReset) error
	ConsumePasswordReset(ctx context.Context, tokenHash []byte, now time.Time) (storage.PasswordReset, error)
	CreateEmailVerification(ctx context.Context, v storage.EmailVerification) error
	ConsumeEmailVerification(ctx context.Context, tokenHash []byte, now time.Time) (storage.EmailVerification, error)
	DeleteUserEmailVerifications(ctx context.Context, userID string) (int64, error)
	CreateSession(ctx context.Context, s storage.Session) error
	GetSession(ctx context.Context, idHash []byte) (storage.Session, error)
	DeleteSession(ctx context.Context, idHash []byte) error
	DeleteSessionBySID(ctx context.Context, userID, sid string) (int64, error)
	GetSessionBySID(ctx context.Context, sid string) (storage.Session, error)
	DeleteUserSessions(ctx context.Context, userID string) (int64, error)
	ListUserSessions(ctx context.Context, userID string, now time.Time) ([]storage.Session, error)
	TouchSession(ctx context.Context, idHash []byte, at time.Time) error
	ListConnectedApps(ctx context.Context, userID string, now time.Time) ([]storage.Consent, error)
	GetConsent(ctx context.Context, userID, clientID string) (storage.Consent, error)
	SaveConsent(ctx context.Context, c storage.Consent) error
	RevokeConsent(ctx context.Context, userID, clientID string) error
	RevokeUserTokens(ctx context.Context, userID, keepSID string) (int64, error)
	RevokeUserSessionTokens(ctx context.Context, userID string) (int64, error)
	RevokeDeveloperCredentials(ctx context.Context, owner string) (int64, error)
	QueueBackchannelLogouts(ctx context.Context, subject string, sids []string, now time.Time) (int64, error)
	AddEvent(ctx context.Context, e storage.Event) error
	ListPasskeys(ctx context.Context, userID string) ([]storage.Passkey, error)
	RenamePasskey(ctx context.Context, userID string, id []byte, name string) error
	DeletePasskey(ctx context.Context, userID string, id []byte) error
	DeleteUserPasskeys(ctx context.Context, userID string) (int64, error)
	LinkIdentity(ctx context.Context, l storage.LinkedIdentity) error
	GetLinkedIdentity(ctx context.Context, connectorID, issuer, subject string) (storage.LinkedIdentity, error)
	UseLinkedIdentity(ctx context.Context, l storage.LinkedIdentity) error
	ListLinkedIdentities(ctx context.Context, userID string) ([]storage.LinkedIdentity, error)
	UnlinkIdentity(ctx context.Context, userID, connectorID string) error
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error
	UseRecoveryCode(ctx context.Context, userID string, hash []byte) error
	CountRecoveryCodes(ctx context.Context, userID string) (int, error)
	BeginTx(ctx context.Context) (context.Context, error)
	CommitTx(ctx context.Context) error
	RollbackTx(ctx context.Context) error
}

// TokenValidator checks a ListenBrainz token. valid=false with a nil error
// means ListenBrainz refused the token; an error means it could not be asked.
type TokenValidator interface {
	ValidateToken(ctx context.Context, token string) (name string, valid bool, err error)
}

// Errors the transports map to statuses.
var (
	ErrUsernameTaken      = fault.New(fault.Conflict, "username is already taken").Saying("Username is already taken")
	ErrInvalidCredentials = fault.New(fault.Unauthenticated, "invalid username or password").Saying("Invalid username or password")
	ErrUserNotFound       = fault.New(fault.NotFound, "no such user").Saying("No such user")
	ErrNoSession          = errors.New("no valid session")
	ErrInvalidToken       = fault.New(fault.Invalid, "ListenBrainz does not accept this token")
	ErrTokenCheckFailed   = fault.New(fault.Upstream, "ListenBrainz could not be reached to check the token").Saying("ListenBrainz could not be reached; try again later")
	ErrGuestNoToken       = fault.New(fault.Forbidden, "guest accounts cannot associate a ListenBrainz token").Saying("Guest accounts cannot associate a ListenBrainz token")
)

// invalid is bad input; its message is safe to show the client.
func invalid(format string, args ...any) error { return fault.Errorf(fault.Invalid, format, args...) }

// invalidText is an invalid error whose text a page shows translated: text
// is a catalogued message (locale.M), printed in English by the JSON APIs.
func invalidText(text string) error { return fault.New(fault.Invalid, text) }

// invalidFill is invalidText for a catalogued template with named
// placeholders (locale.M("… {{.Max}} …"), then name, value pairs): the
// English text is the filled template, which a page recognises and
// translates with its values (locale.Lang.Lenient).
func invalidFill(template string, args ...any) error {
	return fault.New(fault.Invalid, locale.Fill(template, args...))
}

// DefaultSessionTTL is how long a browser session lasts after sign-in.
const DefaultSessionTTL = 24 * time.Hour

// Config wires a Service. Store, Hasher, Validator and Box are required.
type Config struct {
	Store      Store
	Hasher     *Hasher
	Validator  TokenValidator
	Box        *seal.Box // seals ListenBrainz tokens at rest
	SessionTTL time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
	// Mailer sends email verification links (optional: without one no
	// link is sent).
	Mailer Mailer
	// RecoveryKey keys the hashes of recovery codes (a database copy
	// then does not let anyone test guesses offline); nil: plain SHA-256.
	RecoveryKey []byte
	// PreviousRecoveryKeys are RecoveryKey under earlier TONEARM_SECRET
	// values: codes hashed under them are still accepted (a keyed hash
	// cannot be moved to a new key without the code).
	PreviousRecoveryKeys [][]byte
	// Languages are the catalogs a saved language must match (nil: the
	// shipped ones).
	Languages *locale.Catalogs
}

// Service implements the account operations.
type Service struct {
	store       Store
	hasher      *Hasher
	validator   TokenValidator
	box         *seal.Box
	sessionTTL  time.Duration
	now         func() time.Time
	log         *slog.Logger
	mailer      Mailer
	mailSlots   chan struct{}
	recoveryKey []byte
	oldRecovery [][]byte
	// codesChecked counts the second-factor codes compared (read by
	// CodesChecked).
	codesChecked atomic.Int64
	langs        *locale.Catalogs
}

// New returns a Service, refusing missing dependencies.
func New(c Config) (*Service, error) {
	if c.Store == nil || c.Hasher == nil || c.Validator == nil || c.Box == nil {
		return nil, errors.New("accounts: Store, Hasher, Validator and Box are required")
	}
	s := &Service{store: c.Store, hasher: c.Hasher, validator: c.Validator, box: c.Box,
		sessionTTL: c.SessionTTL, now: c.Now, log: c.Logger, mailer: c.Mailer, mailSlots: make(chan struct{}, maxMailsInFlight),
		recoveryKey: c.RecoveryKey, oldRecovery: c.PreviousRecoveryKeys}
	if s.sessionTTL <= 0 {
		s.sessionTTL = DefaultSessionTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.langs = c.Languages; s.langs == nil {
		langs, err := locale.Load("", "")
		if err != nil {
			return nil, err
		}
		s.langs = langs
	}
	return s, nil
}

// SessionTTL reports how long new sessions last.
func (s *Service) SessionTTL() time.Duration { return s.sessionTTL }

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// atomically runs fn in one database transaction: every store call fn
// makes with the context it is given commits together or not at all. Slow
// work (password hashing) belongs before it, not inside.
func (s *Service) atomically(ctx context.Context, fn func(ctx context.Context) error) error {
	tx, err := s.store.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer s.store.RollbackTx(tx) //nolint:errcheck // after a commit it does nothing
	if err := fn(tx); err != nil {
		return err
	}
	return s.store.CommitTx(tx)
}

// Field limits of the account, the contract of the User API (docs/accounts.md).
const (
	MinUsernameLen = 3
	MaxUsernameLen = 100
	MinPasswordLen = 8
	MaxPasswordLen = 200
	MaxTokenLen    = 200
)

// ValidateUsername applies the username rules: 3–100 characters, no white
// space or control characters.
func ValidateUsername(username string) error {
	if username == "" {
		return invalidText(locale.M("Username cannot be empty"))
	}
	if !utf8.ValidString(username) {
		return invalidText(locale.M("Username must be valid UTF-8"))
	}
	for _, r := range username {
		if unicode.IsSpace(r) {
			return invalidText(locale.M("Username cannot contain white space"))
		}
		if unicode.IsControl(r) || r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return invalidText(locale.M("Username cannot contain control or invisible characters"))
		}
	}
	if n := utf8.RuneCountInString(username); n < MinUsernameLen || n > MaxUsernameLen {
		return invalidFill(locale.M("Username cannot be less than {{.Min}} or over {{.Max}} characters"), "Min", MinUsernameLen, "Max", MaxUsernameLen)
	}
	return nil
}

// ValidatePassword applies the password rules: 8–200 characters.
func ValidatePassword(password string) error {
	if password == "" {
		return invalidText(locale.M("Password cannot be empty"))
	}
	if !utf8.ValidString(password) {
		return invalidText(locale.M("Password must be valid UTF-8"))
	}
	if n := utf8.RuneCountInString(password); n < MinPasswordLen || n > MaxPasswordLen {
		return invalidFill(locale.M("Password cannot be less than {{.Min}} or over {{.Max}} characters"), "Min", MinPasswordLen, "Max", MaxPasswordLen)
	}
	return nil
}

// ValidRole reports whether role is one tonearm knows.
func ValidRole(role string) bool {
	return role == storage.RoleAdmin || role == storage.RoleUser || role == storage.RoleGuest
}

// CreateUser validates and creates a user with an argon2id-hashed password.
func (s *Service) CreateUser(ctx context.Context, username, password, role string) (storage.User, error) {
	return s.Create(ctx, NewUser{Username: username, Password: password, Role: role})
}

// Authenticate checks a username (or email) and password under guard. An
// unknown account costs a full hash, like a wrong password, and both return
// ErrInvalidCredentials. A disabled account gets ErrDisabled, but only
// with the right password.
func (s *Service) Authenticate(ctx context.Context, username, password string, guard PasswordGuard) (storage.User, error) {
	u, err := s.store.GetUserByUsername(ctx, username)
	if errors.Is(err, storage.ErrNotFound) && strings.Contains(username, "@") {
		u, err = s.store.GetUserByEmail(ctx, username)
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, err
	}
	ok, stale, err := s.checkPassword(ctx, u, username, password, PurposeSignIn, guard)
	if err != nil {
		return storage.User{}, err
	}
	if !ok {
		return storage.User{}, ErrInvalidCredentials
	}
	if u.Disabled {
		return storage.User{}, ErrDisabled
	}
	if stale {
		s.rehash(ctx, u.ID, password)
	}
	// An account with a second factor is not signed in yet: the event
	// says the password was right and the code is still to come (the
	// owner sees someone has the password even if no code follows);
	// SecondFactorPassed records the sign-in.
	var detail map[string]any
	if HasTOTP(u) {
		detail = map[string]any{"secondFactor": "pending"}
	}
	if err := s.event(ctx, audit.SignInSucceeded, u.ID, detail); err != nil {
		return storage.User{}, err
	}
	return u, nil
}

// SecondFactorPassed records the sign-in of an account with a second
// factor once its code (method "totp" or "recovery_code") passed: the
// signin.succeeded whose password step said "pending".
func (s *Service) SecondFactorPassed(ctx context.Context, userID, method string) error {
	return s.event(ctx, audit.SignInSucceeded, userID, map[string]any{"method": method})
}

// rehash upgrades a hash made with old parameters; failure only delays it.
func (s *Service) rehash(ctx context.Context, userID, password string) {
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return
	}
	_, err = s.store.UpdateUser(ctx, userID, func(u storage.User) (storage.User, error) {
		u.PasswordHash = hash
		u.UpdatedAt = s.clock()
		return u, nil
	})
	if err != nil {
		s.log.Warn("could not upgrade password hash", "user", userID, "err", err)
	}
}

// Origin describes the browser a session is opened from, for its owner's
// list of sessions.
type Origin struct{ UserAgent, IP string }

// maxUserAgent bounds the stored User-Agent (in bytes, cut at a rune).
const maxUserAgent = 256

func (o Origin) clean() Origin {
	ua := strings.ToValidUTF8(o.UserAgent, "")
	for len(ua) > maxUserAgent {
		_, size := utf8.DecodeLastRuneInString(ua)
		ua = ua[:len(ua)-size]
	}
	if len(o.IP) > 64 {
		o.IP = ""
	}
	return Origin{UserAgent: ua, IP: o.IP}
}

// touchEvery is how stale a session's LastUsedAt may get before a request
// updates it: one write per session every few minutes, not per request.
const touchEvery = 5 * time.Minute

// NewSession opens a browser session for a user who has just proved who they
// are, by amr (AMRPassword, AMRPasskey), and returns the cookie value. Only
// its SHA-256 is stored.
func (s *Service) NewSession(ctx context.Context, userID, amr string, from Origin) (string, storage.Session, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", storage.Session{}, err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	now := s.clock()
	sid := make([]byte, 16)
	if _, err := rand.Read(sid); err != nil {
		return "", storage.Session{}, err
	}
	from = from.clean()
	sess := storage.Session{IDHash: hashSessionToken(token), SID: base64.RawURLEncoding.EncodeToString(sid), UserID: userID,
		AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(s.sessionTTL), LastUsedAt: now, UserAgent: from.UserAgent, IP: from.IP, AMR: amr}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return "", storage.Session{}, ErrUserNotFound
		}
		return "", storage.Session{}, err
	}
	return token, sess, nil
}

// StartSession authenticates and opens a session in one step. An account
// with an authenticator app cannot: a password alone is one factor
// (ErrSecondFactorRequired; it signs in on the sign-in page).
func (s *Service) StartSession(ctx context.Context, username, password string, guard PasswordGuard, from Origin) (storage.User, string, storage.Session, error) {
	u, err := s.Authenticate(ctx, username, password, guard)
	if err == nil && HasTOTP(u) {
		err = ErrSecondFactorRequired
	}
	if err != nil {
		return storage.User{}, "", storage.Session{}, err
	}
	token, sess, err := s.NewSession(ctx, u.ID, AMRPassword, from)
	if err != nil {
		return storage.User{}, "", storage.Session{}, err
	}
	return u, token, sess, nil
}

func hashSessionToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// SessionUser resolves a session cookie value to its live session and user.
func (s *Service) SessionUser(ctx context.Context, token string) (storage.User, storage.Session, error) {
	if len(token) != 43 { // base64url of 32 bytes
		return storage.User{}, storage.Session{}, ErrNoSession
	}
	sess, err := s.store.GetSession(ctx, hashSessionToken(token))
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, storage.Session{}, ErrNoSession
	}
	if err != nil {
		return storage.User{}, storage.Session{}, err
	}
	if !s.clock().Before(sess.ExpiresAt) {
		return storage.User{}, storage.Session{}, ErrNoSession
	}
	u, err := s.store.GetUser(ctx, sess.UserID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Disabled) {
		return storage.User{}, storage.Session{}, ErrNoSession
	}
	if err != nil {
		return storage.User{}, storage.Session{}, err
	}
	if now := s.clock(); now.Sub(sess.LastUsedAt) > touchEvery {
		if err := s.store.TouchSession(ctx, sess.IDHash, now); err != nil {
			s.log.Warn("recording a session's last use", "err", err)
		} else {
			sess.LastUsedAt = now
		}
	}
	return u, sess, nil
}

// Sessions lists the user's live sessions, most recently used first.
func (s *Service) Sessions(ctx context.Context, userID string) ([]storage.Session, error) {
	return s.store.ListUserSessions(ctx, userID, s.clock())
}

// EndOtherSessions ends every session of the user but the one relying
// parties know as keepSID, telling the relying parties.
func (s *Service) EndOtherSessions(ctx context.Context, userID, keepSID string) (int, error) {
	sessions, err := s.Sessions(ctx, userID)
	if err != nil {
		return 0, err
	}
	var sids []string
	for _, sess := range sessions {
		if sess.SID != keepSID {
			sids = append(sids, sess.SID)
		}
	}
	if len(sids) == 0 {
		return 0, nil
	}
	ended := 0
	err = s.atomically(ctx, func(ctx context.Context) error {
		ended = 0
		for _, sid := range sids {
			n, err := s.store.DeleteSessionBySID(ctx, userID, sid)
			if err != nil {
				return err
			}
			ended += int(n)
		}
		if err := s.event(ctx, audit.SignOut, userID, map[string]any{"sessions": "others", "count": ended}); err != nil {
			return err
		}
		if err := s.logoutRelyingParties(ctx, userID, sids); err != nil {
			return err
		}
		// Every app's tokens but those of the session kept: device and
		// first-party apps too (a person phished through a device code
		// cuts the attacker off here).
		_, err := s.store.RevokeUserTokens(ctx, userID, keepSID)
		return err
	})
	return ended, err
}

// event records an audit event about user (in ctx's transaction, if any).
func (s *Service) event(ctx context.Context, typ, user string, detail map[string]any) error {
	return audit.Record(ctx, s.store, s.clock(), typ, user, "", detail)
}

// Every way a session ends tells the relying parties that hold tokens from
// it (OpenID Connect Back-Channel Logout): the deliveries are queued in the
// transaction that ends it, and those parties' codes and access tokens from
// it are revoked. Refresh tokens are issued only with offline_access and
// survive a sign-out (Back-Channel Logout 1.0 §2.7); what ends them is
// endAllSessions, RevokeApp and EndOtherSessions.

// EndSession ends the one session behind a cookie value.
func (s *Service) EndSession(ctx context.Context, token string) error {
	sess, err := s.store.GetSession(ctx, hashSessionToken(token))
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.atomically(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteSession(ctx, sess.IDHash); err != nil {
			return err
		}
		if err := s.event(ctx, audit.SignOut, sess.UserID, map[string]any{"sessions": "one"}); err != nil {
			return err
		}
		return s.logoutRelyingParties(ctx, sess.UserID, []string{sess.SID})
	})
}

// EndSessionBySID ends the session of userID that relying parties know as
// sid (an ID token's sid), if it is still there.
func (s *Service) EndSessionBySID(ctx context.Context, userID, sid string) error {
	return s.atomically(ctx, func(ctx context.Context) error {
		n, err := s.store.DeleteSessionBySID(ctx, userID, sid)
		if err != nil {
			return err
		}
		if n > 0 {
			if err := s.event(ctx, audit.SignOut, userID, map[string]any{"sessions": "one", "by": "id_token_hint"}); err != nil {
				return err
			}
		}
		return s.logoutRelyingParties(ctx, userID, []string{sid})
	})
}

// EndUserSessions ends every session of the user (the User API's
// endSession): a sign-out, so every app's codes and access tokens go but
// the refresh tokens stay. They are issued only with offline_access, which
// outlives the sessions (Back-Channel Logout 1.0 §2.7): an app that syncs
// in the background keeps working.
func (s *Service) EndUserSessions(ctx context.Context, userID string) error {
	if _, err := s.GetUser(ctx, userID); err != nil {
		return err
	}
	return s.atomically(ctx, func(ctx context.Context) error {
		if err := s.event(ctx, audit.SignOut, userID, map[string]any{"sessions": "all"}); err != nil {
			return err
		}
		if err := s.endSessions(ctx, userID); err != nil {
			return err
		}
		_, err := s.store.RevokeUserSessionTokens(ctx, userID)
		return err
	})
}

// endAllSessions ends every session of the user and every app's tokens,
// refresh tokens included, in the caller's transaction, telling the
// relying parties: what a password change, disabling the person or taking
// away a second factor mean.
func (s *Service) endAllSessions(ctx context.Context, userID string) error {
	if err := s.endSessions(ctx, userID); err != nil {
		return err
	}
	// Every app's tokens go with the sessions, whatever session (or
	// device) they came from.
	_, err := s.store.RevokeUserTokens(ctx, userID, "")
	return err
}

// endSessions ends every session of the user, in the caller's
// transaction, telling the relying parties.
func (s *Service) endSessions(ctx context.Context, userID string) error {
	if err := s.logoutRelyingParties(ctx, userID, nil); err != nil {
		return err
	}
	_, err := s.store.DeleteUserSessions(ctx, userID)
	return err
}

// logoutRelyingParties queues back-channel logouts for the sessions sids
// of userID (nil: all) and revokes the receiving clients' codes and access
// tokens from them; their refresh tokens (offline_access) stay.
func (s *Service) logoutRelyingParties(ctx context.Context, userID string, sids []string) error {
	_, err := s.store.QueueBackchannelLogouts(ctx, userID, sids, s.clock())
	return err
}

// GetUser returns a user or ErrUserNotFound.
func (s *Service) GetUser(ctx context.Context, id string) (storage.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, ErrUserNotFound
	}
	return u, err
}

// NewUserID returns a random (version 4) UUID.
func NewUserID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexdigits = "0123456789abcdef"
	var sb strings.Builder
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			sb.WriteByte('-')
		}
		sb.WriteByte(hexdigits[c>>4])
		sb.WriteByte(hexdigits[c&0xf])
	}
	return sb.String()
}
