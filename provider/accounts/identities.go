package accounts

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// Upstream is an identity met through a connector: the connector, its
// kind, and who the upstream says the person is.
type Upstream struct {
	ConnectorID, Kind string
	Issuer, Subject   string
	Username, Email   string
	Name              string
	EmailVerified     bool
}

// Errors of signing in through a connector.
var (
	// ErrNotLinked: no account is linked to this upstream identity.
	ErrNotLinked = fault.New(fault.NotFound, "no account is linked to this identity").Saying("That sign-in method is not linked to this account")
	// ErrLinkedElsewhere: the upstream identity belongs to another account.
	ErrLinkedElsewhere = fault.New(fault.Conflict, "this identity is linked to another account").Saying("This identity is linked to another account")
	// ErrAlreadyLinked: the account has a link through this connector.
	ErrAlreadyLinked = fault.New(fault.Conflict, "this account is already linked through this connector: unlink it first").Saying("This account is already linked through this connector: unlink it first")
	// ErrLastSignInMethod: unlinking would leave no way to sign in.
	ErrLastSignInMethod = fault.New(fault.Conflict, "this is the only way to sign in to this account: set a password or add a passkey first").Saying("This is the only way to sign in to this account: set a password or add a passkey first")
)

func (u Upstream) link(userID string, now time.Time) storage.LinkedIdentity {
	return storage.LinkedIdentity{ConnectorID: u.ConnectorID, Issuer: u.Issuer, Subject: u.Subject, UserID: userID,
		Username: u.Username, Email: u.Email, CreatedAt: now, LastUsedAt: now}
}

// musicBrainzName is what a link through kind sets as the user's
// MetaBrainz username ("" when kind is not musicbrainz: unchanged).
func musicBrainzName(u Upstream) string {
	if u.Kind == storage.ConnectorMusicBrainz {
		return u.Username
	}
	return ""
}

// SignInLinked returns the account linked to an upstream identity and
// records the sign-in (what the upstream said now). ErrNotLinked,
// ErrDisabled.
func (s *Service) SignInLinked(ctx context.Context, up Upstream) (storage.User, error) {
	l, err := s.store.GetLinkedIdentity(ctx, up.ConnectorID, up.Issuer, up.Subject)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, ErrNotLinked
	}
	if err != nil {
		return storage.User{}, err
	}
	u, err := s.GetUser(ctx, l.UserID)
	if err != nil {
		return storage.User{}, err
	}
	if u.Disabled {
		return storage.User{}, ErrDisabled
	}
	now := s.clock()
	err = s.atomically(ctx, func(ctx context.Context) error {
		if err := s.store.UseLinkedIdentity(ctx, up.link(u.ID, now)); err != nil {
			return err
		}
		if name := musicBrainzName(up); name != "" && name != u.MusicBrainzName {
			// A renamed MetaBrainz account: the claim follows.
			if u, err = s.store.UpdateUser(ctx, u.ID, func(x storage.User) (storage.User, error) {
				x.MusicBrainzName, x.UpdatedAt = name, now
				return x, nil
			}); err != nil {
				return mapUpdateErr(err)
			}
		}
		return s.event(ctx, audit.SignInSucceeded, u.ID, map[string]any{"connector": up.ConnectorID})
	})
	return u, err
}

// CreateLinked creates an account for an upstream identity, linked to it,
// with the username the person chose (or the upstream's). A verified
// upstream email becomes the account's verified email; an unverified one
// is not kept. The account has no password. ErrUsernameTaken,
// ErrEmailTaken, a ValidationError.
func (s *Service) CreateLinked(ctx context.Context, username string, up Upstream) (storage.User, error) {
	if err := ValidateUsername(username); err != nil {
		return storage.User{}, err
	}
	if _, err := s.store.GetUserByUsername(ctx, username); err == nil {
		return storage.User{}, ErrUsernameTaken
	} else if !errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, err
	}
	now := s.clock()
	u := storage.User{ID: NewUserID(), Username: username, Role: storage.RoleUser, Name: strings.TrimSpace(up.Name),
		MusicBrainzName: musicBrainzName(up), CreatedAt: now, UpdatedAt: now}
	if len(u.Name) > MaxNameLen {
		u.Name = ""
	}
	if up.Email != "" && up.EmailVerified && ValidateEmail(up.Email) == nil {
		u.Email, u.EmailVerified = up.Email, true
	}
	err := s.atomically(ctx, func(ctx context.Context) error {
		if err := s.store.CreateUser(ctx, u); err != nil {
			return err
		}
		if err := s.store.LinkIdentity(ctx, up.link(u.ID, now)); err != nil {
			return err
		}
		if err := s.event(ctx, audit.UserCreated, u.ID, map[string]any{"role": u.Role, "connector": up.ConnectorID}); err != nil {
			return err
		}
		return s.event(ctx, audit.IdentityLinked, u.ID, map[string]any{"connector": up.ConnectorID})
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		if _, e := s.store.GetUserByUsername(ctx, username); e == nil {
			return storage.User{}, ErrUsernameTaken
		}
		if _, e := s.store.GetLinkedIdentity(ctx, up.ConnectorID, up.Issuer, up.Subject); e == nil {
			return storage.User{}, ErrLinkedElsewhere
		}
		return storage.User{}, ErrEmailTaken
	}
	if err != nil {
		return storage.User{}, err
	}
	return u, nil
}

// EmailOwner returns the account holding email, if any (an upstream
// identity whose email matches one is never linked without its owner
// signing in to it first).
func (s *Service) EmailOwner(ctx context.Context, email string) (storage.User, bool, error) {
	if email == "" {
		return storage.User{}, false, nil
	}
	u, err := s.store.GetUserByEmail(ctx, email)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, false, nil
	}
	return u, err == nil, err
}

// Link links an upstream identity to a signed-in account.
// ErrLinkedElsewhere, ErrAlreadyLinked.
func (s *Service) Link(ctx context.Context, userID string, up Upstream) error {
	if l, err := s.store.GetLinkedIdentity(ctx, up.ConnectorID, up.Issuer, up.Subject); err == nil {
		if l.UserID == userID {
			return nil
		}
		return ErrLinkedElsewhere
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	now := s.clock()
	err := s.atomically(ctx, func(ctx context.Context) error {
		if err := s.store.LinkIdentity(ctx, up.link(userID, now)); err != nil {
			return err
		}
		if name := musicBrainzName(up); name != "" {
			if _, err := s.store.UpdateUser(ctx, userID, func(x storage.User) (storage.User, error) {
				x.MusicBrainzName, x.UpdatedAt = name, now
				return x, nil
			}); err != nil {
				return mapUpdateErr(err)
			}
		}
		return s.event(ctx, audit.IdentityLinked, userID, map[string]any{"connector": up.ConnectorID})
	})
	switch {
	case errors.Is(err, storage.ErrAlreadyExists):
		if _, e := s.store.GetLinkedIdentity(ctx, up.ConnectorID, up.Issuer, up.Subject); e == nil {
			return ErrLinkedElsewhere
		}
		return ErrAlreadyLinked
	case errors.Is(err, storage.ErrNotFound):
		return ErrUserNotFound
	}
	return err
}

// LinkedIdentities lists the account's links.
func (s *Service) LinkedIdentities(ctx context.Context, userID string) ([]storage.LinkedIdentity, error) {
	return s.store.ListLinkedIdentities(ctx, userID)
}

// Unlink removes the account's link through a connector, unless it is the
// last way to sign in (no password, no passkey, no other link).
// A musicbrainz link takes the user's MetaBrainz username with it.
// ErrLastSignInMethod, ErrNotLinked.
func (s *Service) Unlink(ctx context.Context, userID, connectorID, kind string) error {
	return s.atomically(ctx, func(ctx context.Context) error {
		u, err := s.store.GetUser(ctx, userID)
		if err != nil {
			return mapUpdateErr(err)
		}
		links, err := s.store.ListLinkedIdentities(ctx, userID)
		if err != nil {
			return err
		}
		var unlinking *storage.LinkedIdentity
		for i := range links {
			if links[i].ConnectorID == connectorID {
				unlinking = &links[i]
			}
		}
		if unlinking == nil {
			return ErrNotLinked
		}
		keys, err := s.store.ListPasskeys(ctx, userID)
		if err != nil {
			return err
		}
		if u.PasswordHash == "" && len(keys) == 0 && len(links) == 1 {
			return ErrLastSignInMethod
		}
		if err := s.store.UnlinkIdentity(ctx, userID, connectorID); err != nil {
			return err
		}
		if kind == storage.ConnectorMusicBrainz && u.MusicBrainzName != "" {
			if _, err := s.store.UpdateUser(ctx, userID, func(x storage.User) (storage.User, error) {
				x.MusicBrainzName, x.UpdatedAt = "", s.clock()
				return x, nil
			}); err != nil {
				return mapUpdateErr(err)
			}
		}
		return s.event(ctx, audit.IdentityUnlinked, userID, map[string]any{"connector": connectorID})
	})
}
