package accounts

import (
	"context"
	"errors"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// Passkeys of an account, and accounts that sign in with passkeys only.
// The ceremonies themselves are provider/passkeys'; this is what the
// owner and the admins manage.

// Ways of proving who one is (RFC 8176), recorded on sessions and put in
// ID tokens' amr.
const (
	AMRPassword = "pwd"
	AMRPasskey  = "hwk"
	// AMRFederated: the person signed in through a connector (another
	// provider vouched for them). RFC 8176 registers no such value; "fed"
	// is the one Microsoft's identity platform uses for federated sign-in.
	AMRFederated = "fed"
)

var (
	// ErrPasskeyOnly: the account signs in with passkeys only, so a
	// password cannot be checked or changed (set one instead).
	ErrPasskeyOnly = fault.New(fault.Conflict, "this account signs in with passkeys only").Saying("This account signs in with passkeys only")
	// ErrLastPasskey: removing it would lock a passkey-only account out.
	ErrLastPasskey = fault.New(fault.Conflict, "this is the last passkey of an account that signs in with passkeys only").Saying("This is your last passkey and your account signs in with passkeys only: set a password first")
	// ErrPasskeyNotUsed: turning passwords off needs a sign-in with one of
	// the account's passkeys first, so the owner knows it works.
	ErrPasskeyNotUsed = fault.New(fault.Forbidden, "sign in with one of your passkeys first").Saying("Sign in with one of your passkeys first, so you know it works")
	// ErrRecentSignIn: the change needs a sign-in within RecentAuth.
	ErrRecentSignIn = fault.New(fault.Forbidden, "sign in again to make this change").Saying("Sign in again (within the last 5 minutes) to make this change")
	// ErrNoPasskey: no such passkey on this account.
	ErrNoPasskey = fault.New(fault.NotFound, "no such passkey").Saying("No such passkey")
)

// MaxPasskeyName bounds a passkey's name (in characters).
const MaxPasskeyName = 64

// PasskeyName checks and tidies a passkey's name ("" becomes "Passkey").
func PasskeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "Passkey", nil
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxPasskeyName || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "", invalidFill(locale.M("a passkey's name is at most {{.Max}} characters, without control characters"), "Max", MaxPasskeyName)
	}
	return name, nil
}

// Passkeys lists the user's passkeys, oldest first.
func (s *Service) Passkeys(ctx context.Context, userID string) ([]storage.Passkey, error) {
	return s.store.ListPasskeys(ctx, userID)
}

// RenamePasskey renames one of the user's passkeys.
func (s *Service) RenamePasskey(ctx context.Context, userID string, id []byte, name string) error {
	name, err := PasskeyName(name)
	if err != nil {
		return err
	}
	err = s.store.RenamePasskey(ctx, userID, id, name)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNoPasskey
	}
	return err
}

// RemovePasskey removes one of the user's passkeys; the last one of a
// passkey-only account stays (ErrLastPasskey).
func (s *Service) RemovePasskey(ctx context.Context, userID string, id []byte) error {
	err := s.atomically(ctx, func(ctx context.Context) error {
		// Locks the user: two removals cannot both pass the check.
		u, err := s.store.UpdateUser(ctx, userID, func(u storage.User) (storage.User, error) { return u, nil })
		if err != nil {
			return mapUpdateErr(err)
		}
		keys, err := s.store.ListPasskeys(ctx, userID)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(keys, func(p storage.Passkey) bool { return string(p.ID) == string(id) }) {
			return ErrNoPasskey
		}
		if u.PasskeyOnly && len(keys) == 1 {
			return ErrLastPasskey
		}
		if err := s.store.DeletePasskey(ctx, userID, id); err != nil {
			return err
		}
		return s.event(ctx, audit.PasskeyRemoved, userID, nil)
	})
	return err
}

// SetPasskeyOnly turns passwords off for the account: its password is
// forgotten (every password check fails from now on) and every other
// session ends. It needs a passkey, and the session asking must have been
// opened with one (ErrPasskeyNotUsed).
func (s *Service) SetPasskeyOnly(ctx context.Context, userID string, current storage.Session) error {
	if !slices.Contains(strings.Fields(current.AMR), AMRPasskey) || current.UserID != userID {
		return ErrPasskeyNotUsed
	}
	err := s.atomically(ctx, func(ctx context.Context) error {
		keys, err := s.store.ListPasskeys(ctx, userID)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return ErrPasskeyNotUsed
		}
		if _, err := s.store.UpdateUser(ctx, userID, func(u storage.User) (storage.User, error) {
			u.PasskeyOnly, u.PasswordHash, u.UpdatedAt = true, "", s.clock()
			return u, nil
		}); err != nil {
			return mapUpdateErr(err)
		}
		return s.event(ctx, audit.PasswordChanged, userID, map[string]any{"passkey_only": true})
	})
	if err != nil {
		return err
	}
	_, err = s.EndOtherSessions(ctx, userID, current.SID)
	return err
}

// SetPassword gives a passkey-only account a password again (turning
// passkey-only off), or a password to an account created through a
// connector. The owner must have signed in within RecentAuth.
func (s *Service) SetPassword(ctx context.Context, userID, password string, proof Reauth) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	if !u.PasskeyOnly && u.PasswordHash != "" {
		return invalidText(locale.M("this account has a password: change it with the current one"))
	}
	if s.clock().Sub(proof.AuthTime) > RecentAuth {
		return ErrRecentSignIn
	}
	return s.replacePassword(ctx, userID, password, map[string]any{"passkey_only": false}, nil)
}

// AdminRemovePasskeys removes every passkey of a user (a lost or stolen
// device), turns passkey-only off and signs the user out everywhere, in
// one transaction. The user then recovers with a password reset, or an
// admin sets a password.
func (s *Service) AdminRemovePasskeys(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := s.atomically(ctx, func(ctx context.Context) error {
		if _, err := s.store.UpdateUser(ctx, userID, func(u storage.User) (storage.User, error) {
			u.PasskeyOnly, u.UpdatedAt = false, s.clock()
			return u, nil
		}); err != nil {
			return mapUpdateErr(err)
		}
		var err error
		if n, err = s.store.DeleteUserPasskeys(ctx, userID); err != nil {
			return err
		}
		if err := s.event(ctx, audit.PasskeyRemoved, userID, map[string]any{"by": "admin", "count": n}); err != nil {
			return err
		}
		return s.revokeEverything(ctx, userID)
	})
	return n, err
}
