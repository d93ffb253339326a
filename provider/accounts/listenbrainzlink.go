package accounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/storage"
)

// The ListenBrainz link of an account: the token, checked live, sealed at
// rest.

// AssociateToken checks token with ListenBrainz and, only when it is valid,
// stores it sealed on the user together with the ListenBrainz name.
func (s *Service) AssociateToken(ctx context.Context, userID, token string) (string, error) {
	if token == "" {
		return "", invalidText(locale.M("scrobbleToken cannot be empty"))
	}
	if len(token) > MaxTokenLen {
		return "", invalidFill(locale.M("scrobbleToken cannot be over {{.Max}} characters"), "Max", MaxTokenLen)
	}
	for _, r := range token {
		if r <= ' ' || r > '~' {
			return "", invalidText(locale.M("scrobbleToken must be printable ASCII without spaces"))
		}
	}
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return "", err
	}
	if u.Role == storage.RoleGuest {
		return "", ErrGuestNoToken
	}
	name, valid, err := s.validator.ValidateToken(ctx, token)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrTokenCheckFailed, err)
	}
	if !valid {
		return "", ErrInvalidToken
	}
	sealed, err := s.box.Seal([]byte(token), tokenContext(userID))
	if err != nil {
		return "", err
	}
	_, err = s.store.UpdateUser(ctx, userID, func(u storage.User) (storage.User, error) {
		u.ListenBrainzName = name
		u.ListenBrainzToken = sealed
		u.UpdatedAt = s.clock()
		return u, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return "", ErrUserNotFound
	}
	if err != nil {
		return "", err
	}
	return name, nil
}

// UnlinkListenBrainz forgets the user's ListenBrainz name and token.
func (s *Service) UnlinkListenBrainz(ctx context.Context, userID string) error {
	_, err := s.store.UpdateUser(ctx, userID, func(u storage.User) (storage.User, error) {
		u.ListenBrainzName = ""
		u.ListenBrainzToken = nil
		u.UpdatedAt = s.clock()
		return u, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return ErrUserNotFound
	}
	return err
}

// ListenBrainzToken returns the user's ListenBrainz token in clear, or "" if
// none is associated.
func (s *Service) ListenBrainzToken(u storage.User) (string, error) {
	if len(u.ListenBrainzToken) == 0 {
		return "", nil
	}
	plain, err := s.box.Open(u.ListenBrainzToken, tokenContext(u.ID))
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// tokenContext binds a sealed token to its user: copied to another row it
// does not open.
func tokenContext(userID string) string { return "listenbrainz-token:" + userID }
