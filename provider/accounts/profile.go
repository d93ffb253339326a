package accounts

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/mail"
	"net/url"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// More errors the transports map.
var (
	ErrEmailTaken      = fault.New(fault.Conflict, "email already exists").Saying("Email already exists")
	ErrLastAdmin       = fault.New(fault.Conflict, "the last active admin cannot be deleted, demoted or disabled").Saying("The last active admin cannot be deleted, demoted or disabled")
	ErrDisabled        = fault.New(fault.Forbidden, "this account is disabled").Saying("This account is disabled")
	ErrWrongPassword   = fault.New(fault.Forbidden, "the current password is wrong").Saying("The current password is wrong")
	ErrBadSecurityCode = fault.New(fault.Forbidden, "wrong or expired security code").Saying("Wrong or expired security code (each start-up logs a new one while no admin exists)")
	// ErrAdminExists: the security code makes the first admin only.
	ErrAdminExists      = fault.New(fault.Conflict, "an admin already exists: the security code only creates the first admin; ask an admin to create this account").Saying("An admin already exists: the security code only creates the first admin; ask an admin to create this account")
	ErrInvalidResetCode = fault.New(fault.Invalid, "the reset token is invalid or has expired").Saying("The reset token is invalid or has expired")
)

// Field limits of the profile, as docs/accounts.md promises to API clients.
const (
	MinNameLen     = 3
	MaxNameLen     = 150
	MaxBioLen      = 200
	MaxPronounsLen = 40
	MaxWebsiteLen  = 200
	MaxEmailLen    = 254
)

// Optional is a field of a partial update: Set says it was present, Null
// that it was null (clear the field).
type Optional struct {
	Set, Null bool
	Value     string
}

// Value returns a set Optional.
func Value(v string) Optional { return Optional{Set: true, Value: v} }

// ProfileUpdate changes profile fields; unset fields stay as they are.
type ProfileUpdate struct {
	Email, Name, Bio, Pronouns, Website Optional
	// Language is the saved language of pages and mails: a BCP 47 tag a
	// catalog matches, stored as the catalog's tag (de-CH is saved as de);
	// null or "" clears it.
	Language Optional
}

func runes(s string) int { return utf8.RuneCountInString(s) }

func printable(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' {
			return false
		}
	}
	return utf8.ValidString(s)
}

// ValidateEmail accepts a bare address (no display name) of at most 254
// characters.
func ValidateEmail(email string) error {
	if email == "" {
		return invalidText(locale.M("Email cannot be empty"))
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" || len(email) > MaxEmailLen || !strings.Contains(email[strings.LastIndexByte(email, '@'):], ".") {
		return invalidText(locale.M("Invalid email"))
	}
	return nil
}

func validateWebsite(w string) error {
	u, err := url.Parse(w)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || runes(w) > MaxWebsiteLen {
		return invalidFill(locale.M("Website must be an http(s) URL of at most {{.Max}} characters"), "Max", MaxWebsiteLen)
	}
	return nil
}

// apply validates p and applies it to u.
func (p ProfileUpdate) apply(u *storage.User) error {
	if p.Email.Set {
		if p.Email.Null {
			u.Email, u.EmailVerified = "", false
		} else {
			if err := ValidateEmail(p.Email.Value); err != nil {
				return err
			}
			if !strings.EqualFold(p.Email.Value, u.Email) {
				u.EmailVerified = false
			}
			u.Email = p.Email.Value
		}
	}
	if p.Name.Set {
		switch {
		case p.Name.Null:
			u.Name = ""
		case p.Name.Value == "":
			return invalidText(locale.M("Name cannot be empty"))
		case runes(p.Name.Value) < MinNameLen || runes(p.Name.Value) > MaxNameLen || !printable(p.Name.Value):
			return invalidFill(locale.M("Name cannot be less than {{.Min}} or over {{.Max}} characters"), "Min", MinNameLen, "Max", MaxNameLen)
		default:
			u.Name = p.Name.Value
		}
	}
	if p.Bio.Set {
		if runes(p.Bio.Value) > MaxBioLen || !printable(p.Bio.Value) {
			return invalidFill(locale.M("Bio cannot be over {{.Max}} characters"), "Max", MaxBioLen)
		}
		u.Bio = p.Bio.Value
	}
	if p.Pronouns.Set {
		switch {
		case p.Pronouns.Null:
			u.Pronouns = ""
		case p.Pronouns.Value == "":
			return invalidText(locale.M("Pronouns cannot be empty"))
		case runes(p.Pronouns.Value) > MaxPronounsLen || !printable(p.Pronouns.Value):
			return invalidFill(locale.M("Pronouns cannot be over {{.Max}} characters"), "Max", MaxPronounsLen)
		default:
			u.Pronouns = p.Pronouns.Value
		}
	}
	if p.Language.Set {
		// Service.languageOf resolved the tag to a catalog's before.
		u.Language = p.Language.Value
		if p.Language.Null {
			u.Language = ""
		}
	}
	if p.Website.Set {
		switch {
		case p.Website.Null:
			u.Website = ""
		case p.Website.Value == "":
			return invalidText(locale.M("Website cannot be empty"))
		default:
			if err := validateWebsite(p.Website.Value); err != nil {
				return err
			}
			u.Website = p.Website.Value
		}
	}
	return nil
}

// languageOf is p with its language resolved to a catalog's tag (de-CH is
// de), or an error naming the languages there are when none matches.
func (s *Service) languageOf(p ProfileUpdate) (ProfileUpdate, error) {
	if !p.Language.Set || p.Language.Null || p.Language.Value == "" {
		return p, nil
	}
	tag, err := s.Language(p.Language.Value)
	if err != nil {
		return p, err
	}
	p.Language.Value = tag
	return p, nil
}

// MaxLanguageLen bounds a language tag (BCP 47 tags in use are far
// shorter).
const MaxLanguageLen = 35

// Language is the catalog's tag for the BCP 47 tag v (de-CH: de), or an
// invalid error naming the languages there are.
func (s *Service) Language(v string) (string, error) {
	if len(v) <= MaxLanguageLen && !strings.ContainsAny(v, ",;") {
		if l, ok := s.langs.Match(v); ok {
			return l.Tag, nil
		}
	}
	return "", invalidFill(locale.M("Language must be a BCP 47 language tag of one of: {{.Tags}}"), "Tags", strings.Join(s.langs.Tags(), ", "))
}

// Languages are the catalogs of the pages and mails.
func (s *Service) Languages() *locale.Catalogs { return s.langs }

func mapUpdateErr(err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return ErrUserNotFound
	case errors.Is(err, storage.ErrAlreadyExists):
		return ErrEmailTaken
	case errors.Is(err, storage.ErrLastAdmin):
		return ErrLastAdmin
	}
	return err
}

// NewUser is a user to create with an optional profile.
type NewUser struct {
	Username, Password, Role string
	Profile                  ProfileUpdate
}

// Create validates and creates a user with a profile.
func (s *Service) Create(ctx context.Context, n NewUser) (storage.User, error) {
	if err := ValidateUsername(n.Username); err != nil {
		return storage.User{}, err
	}
	if err := ValidatePassword(n.Password); err != nil {
		return storage.User{}, err
	}
	if !ValidRole(n.Role) {
		return storage.User{}, invalidText(locale.M("Role must be admin, user or guest"))
	}
	var u storage.User
	var err error
	if n.Profile, err = s.languageOf(n.Profile); err != nil {
		return storage.User{}, err
	}
	if err := n.Profile.apply(&u); err != nil {
		return storage.User{}, err
	}
	if _, err := s.store.GetUserByUsername(ctx, n.Username); err == nil {
		return storage.User{}, ErrUsernameTaken
	} else if !errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, err
	}
	if u.Email != "" {
		if _, err := s.store.GetUserByEmail(ctx, u.Email); err == nil {
			return storage.User{}, ErrEmailTaken
		}
	}
	hash, err := s.hasher.Hash(ctx, n.Password)
	if err != nil {
		return storage.User{}, err
	}
	now := s.clock()
	u.ID, u.Username, u.PasswordHash, u.Role, u.CreatedAt, u.UpdatedAt = NewUserID(), n.Username, hash, n.Role, now, now
	var pending *verifyMail
	err = s.atomically(ctx, func(ctx context.Context) error {
		if err := s.store.CreateUser(ctx, u); err != nil {
			return err
		}
		if err := s.event(ctx, audit.UserCreated, u.ID, map[string]any{"role": u.Role}); err != nil {
			return err
		}
		var err error
		pending, err = s.afterEmailChange(ctx, storage.User{}, u)
		return err
	})
	if err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			// Which unique index fired? Ask again.
			if _, e := s.store.GetUserByUsername(ctx, n.Username); e == nil {
				return storage.User{}, ErrUsernameTaken
			}
			return storage.User{}, ErrEmailTaken
		}
		return storage.User{}, err
	}
	s.sendVerification(pending)
	return u, nil
}

// UpdateProfile applies a profile change. A new email address is
// unverified and is mailed a verification link.
func (s *Service) UpdateProfile(ctx context.Context, userID string, p ProfileUpdate) (storage.User, error) {
	p, err := s.languageOf(p)
	if err != nil {
		return storage.User{}, err
	}
	return s.changeUser(ctx, userID, p.apply)
}

// changeUser applies mutate to a user in one transaction with what the
// change entails: a new email address drops the old one's pending links and
// gets its own (mailed after the commit), and a disabled user's sessions
// and tokens end. A change that leaves every field as it is writes
// nothing: no event, updatedAt stays, the stored user is returned.
func (s *Service) changeUser(ctx context.Context, userID string, mutate func(*storage.User) error) (storage.User, error) {
	var u, before storage.User
	var pending *verifyMail
	err := s.atomically(ctx, func(ctx context.Context) error {
		var err error
		u, err = s.store.UpdateUser(ctx, userID, func(x storage.User) (storage.User, error) {
			before = x
			if err := mutate(&x); err != nil {
				return x, err
			}
			if len(changedFields(before, x)) == 0 {
				return before, audit.ErrUnchanged
			}
			x.UpdatedAt = s.clock()
			return x, nil
		})
		if err != nil {
			return mapUpdateErr(err)
		}
		typ := audit.UserChanged
		if u.Disabled && !before.Disabled {
			typ = audit.UserDisabled
		}
		if err := s.event(ctx, typ, u.ID, map[string]any{"fields": changedFields(before, u)}); err != nil {
			return err
		}
		if pending, err = s.afterEmailChange(ctx, before, u); err != nil {
			return err
		}
		if u.Disabled {
			// A disabled developer's initial access tokens and their apps'
			// registration access tokens (RFC 7591 §3, RFC 7592) would
			// otherwise keep registering and managing apps in their name:
			// they end with the disabling, and re-enabling does not bring
			// them back (the developer makes new ones).
			if _, err := s.store.RevokeDeveloperCredentials(ctx, u.ID); err != nil {
				return err
			}
			return s.revokeEverything(ctx, u.ID)
		}
		return nil
	})
	if errors.Is(err, audit.ErrUnchanged) {
		return before, nil
	}
	if err != nil {
		return storage.User{}, err
	}
	s.sendVerification(pending)
	return u, nil
}

// AdminChange is what an admin may change on any user.
type AdminChange struct {
	Role          *string
	Disabled      *bool
	EmailVerified *bool
	Profile       ProfileUpdate
	// Claims: nil leaves the custom claims, JSON null clears them, a JSON
	// object (≤ MaxClaimsBytes, keys not registered claim names) sets them.
	Claims json.RawMessage
}

// MaxClaimsBytes bounds a user's custom claims.
const MaxClaimsBytes = 4096

// validClaims checks custom claims and returns them compacted (nil for
// null).
func validClaims(raw json.RawMessage) ([]byte, error) {
	if len(raw) > MaxClaimsBytes {
		return nil, invalid("claims cannot be over %d bytes", MaxClaimsBytes)
	}
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, invalidText(locale.M("claims must be a JSON object"))
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := apis.ValidateCustomClaimKey(k); err != nil {
			return nil, invalid("%s", err.Error())
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, invalidText(locale.M("claims must be a JSON object"))
	}
	if buf.Len() == 2 { // {}
		return nil, nil
	}
	return buf.Bytes(), nil
}

// AdminUpdate applies an admin's change. Disabling ends the user's
// sessions and revokes their tokens.
func (s *Service) AdminUpdate(ctx context.Context, userID string, c AdminChange) (storage.User, error) {
	if c.Role != nil && !ValidRole(*c.Role) {
		return storage.User{}, invalidText(locale.M("Role must be admin, user or guest"))
	}
	var err error
	if c.Profile, err = s.languageOf(c.Profile); err != nil {
		return storage.User{}, err
	}
	var claims []byte
	if c.Claims != nil {
		var err error
		if claims, err = validClaims(c.Claims); err != nil {
			return storage.User{}, err
		}
	}
	return s.changeUser(ctx, userID, func(u *storage.User) error {
		if err := c.Profile.apply(u); err != nil {
			return err
		}
		if c.Role != nil {
			u.Role = *c.Role
			if u.Role == storage.RoleGuest {
				// Guests hold no ListenBrainz token.
				u.ListenBrainzToken, u.ListenBrainzName = nil, ""
			}
		}
		if c.Disabled != nil {
			u.Disabled = *c.Disabled
		}
		if c.EmailVerified != nil {
			u.EmailVerified = *c.EmailVerified && u.Email != ""
		}
		if c.Claims != nil {
			u.Claims = claims
		}
		return nil
	})
}

// revokeEverything ends every session and deletes every code and token of
// the user.
func (s *Service) revokeEverything(ctx context.Context, userID string) error {
	if err := s.endAllSessions(ctx, userID); err != nil {
		return err
	}
	_, err := s.store.DeleteOAuthRequestsBySubject(ctx, userID)
	return err
}

// DeleteUser removes a user and everything issued to them.
func (s *Service) DeleteUser(ctx context.Context, userID string) error {
	err := s.atomically(ctx, func(ctx context.Context) error {
		if err := s.logoutRelyingParties(ctx, userID, nil); err != nil {
			return err
		}
		if err := s.store.DeleteUser(ctx, userID); err != nil {
			return err
		}
		return s.event(ctx, audit.UserDeleted, userID, nil)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return ErrUserNotFound
	}
	if errors.Is(err, storage.ErrLastAdmin) {
		return ErrLastAdmin
	}
	return err
}

// DeleteAccount is a user deleting themself: the password is required,
// or for a passkey-only account a sign-in within RecentAuth.
func (s *Service) DeleteAccount(ctx context.Context, userID string, proof Reauth) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	if u.PasskeyOnly {
		if s.clock().Sub(proof.AuthTime) > RecentAuth {
			return ErrRecentSignIn
		}
	} else if err := s.confirmPassword(ctx, u, proof.Password, PurposeAccountDelete, proof.Guard); err != nil {
		return err
	}
	return s.DeleteUser(ctx, userID)
}

// ListUsers returns a page of users.
func (s *Service) ListUsers(ctx context.Context, f storage.UserFilter) ([]storage.User, error) {
	return s.store.ListUsers(ctx, f)
}

// GetUserByUsername returns a user or ErrUserNotFound.
func (s *Service) GetUserByUsername(ctx context.Context, username string) (storage.User, error) {
	u, err := s.store.GetUserByUsername(ctx, username)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, ErrUserNotFound
	}
	return u, err
}

// Bootstrap is the one-time security code that lets the first admin be
// created over the API (createUser with role admin and the code, so that a
// fresh server needs no shell access to get its first admin). It exists
// only while no active admin does, lives in memory (it dies at restart),
// dies when used, and is burned after too many wrong guesses.
type Bootstrap struct {
	mu       sync.Mutex
	code     string
	failures int
}

// maxCodeFailures burns the code: 20 guesses of a million.
const maxCodeFailures = 20

// NewBootstrap makes a code if no active admin exists, and returns it ("" if
// none is needed).
func NewBootstrap(ctx context.Context, store interface {
	CountActiveAdmins(ctx context.Context) (int64, error)
}) (*Bootstrap, string, error) {
	n, err := store.CountActiveAdmins(ctx)
	if err != nil {
		return nil, "", err
	}
	b := &Bootstrap{}
	if n == 0 {
		v, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
		if err != nil {
			return nil, "", err
		}
		b.code = fmt.Sprintf("%06d", v.Int64())
	}
	return b, b.code, nil
}

// CreateAdmin creates an admin if code is the live security code and no
// active admin exists yet; the code then dies. Concurrent callers are
// serialised, so a code creates at most one admin. Once an active admin
// exists every code, right or wrong, is ErrAdminExists (docs/accounts.md):
// the code is not the way in any more, whatever was guessed, and a guess
// made then is no guess at a live code (the caller gives it back).
func (s *Service) CreateAdmin(ctx context.Context, b *Bootstrap, code string, n NewUser) (storage.User, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if admins, err := s.store.CountActiveAdmins(ctx); err != nil {
		return storage.User{}, err
	} else if admins > 0 {
		b.code = ""
		return storage.User{}, ErrAdminExists
	}
	if b.code == "" {
		return storage.User{}, ErrBadSecurityCode // used or burned
	}
	if len(code) != len(b.code) || subtle.ConstantTimeCompare([]byte(code), []byte(b.code)) != 1 {
		// The code lives in this process only, so its count does too; the
		// guesses per address are also counted in the database (the
		// bootstrap-code limit), across replicas.
		b.failures++
		if b.failures >= maxCodeFailures {
			b.code = ""
			s.log.Warn("bootstrap security code burned after too many wrong guesses; restart to get a new one")
		}
		return storage.User{}, ErrBadSecurityCode
	}
	n.Role = storage.RoleAdmin
	u, err := s.Create(ctx, n)
	if err != nil {
		return storage.User{}, err
	}
	b.code = ""
	return u, nil
}

// changedFields names what a change touched (never the values: an event
// holds no secrets and little personal data).
func changedFields(a, b storage.User) []string {
	var out []string
	for _, f := range []struct {
		name    string
		changed bool
	}{
		{"email", a.Email != b.Email}, {"emailVerified", a.EmailVerified != b.EmailVerified}, {"name", a.Name != b.Name},
		{"bio", a.Bio != b.Bio}, {"pronouns", a.Pronouns != b.Pronouns}, {"website", a.Website != b.Website}, {"language", a.Language != b.Language},
		{"role", a.Role != b.Role}, {"disabled", a.Disabled != b.Disabled}, {"claims", string(a.Claims) != string(b.Claims)},
		// A guest holds no ListenBrainz token: becoming one drops it.
		{"listenbrainz", a.ListenBrainzName != b.ListenBrainzName || !bytes.Equal(a.ListenBrainzToken, b.ListenBrainzToken)},
	} {
		if f.changed {
			out = append(out, f.name)
		}
	}
	return out
}
