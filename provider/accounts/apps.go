package accounts

import (
	"context"
	"errors"
	"sort"

	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// Connected apps: what a person granted which client, and ending it.

// ConnectedApps lists the apps the user granted or that hold the user's
// tokens (first-party and device apps included), newest first.
func (s *Service) ConnectedApps(ctx context.Context, userID string) ([]storage.Consent, error) {
	return s.store.ListConnectedApps(ctx, userID, s.clock())
}

// GrantApp adds scopes to what the user granted a client and records that
// they did; scopes already granted change nothing.
func (s *Service) GrantApp(ctx context.Context, userID, clientID string, scopes []string) error {
	set := map[string]bool{}
	old, err := s.store.GetConsent(ctx, userID, clientID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	for _, sc := range old.Scopes {
		set[sc] = true
	}
	added := false
	for _, sc := range scopes {
		added = added || !set[sc]
		set[sc] = true
	}
	if err == nil && !added {
		return nil
	}
	all := make([]string, 0, len(set))
	for sc := range set {
		all = append(all, sc)
	}
	sort.Strings(all)
	return s.atomically(ctx, func(ctx context.Context) error {
		if err := s.store.SaveConsent(ctx, storage.Consent{UserID: userID, ClientID: clientID, Scopes: all, GrantedAt: s.clock().UTC()}); err != nil {
			return err
		}
		return audit.Record(ctx, s.store, s.clock(), audit.ConsentGranted, userID, clientID, map[string]any{"scopes": scopes})
	})
}

// RevokeApp withdraws the user's consent for a client and deletes every
// token, refresh token and code that client holds for the user, in one
// transaction. ErrNotFound-wrapping storage.ErrNotFound when there was none.
func (s *Service) RevokeApp(ctx context.Context, userID, clientID string) error {
	return s.atomically(ctx, func(ctx context.Context) error {
		if err := s.store.RevokeConsent(ctx, userID, clientID); err != nil {
			return err
		}
		return audit.Record(ctx, s.store, s.clock(), audit.ConsentRevoked, userID, clientID, nil)
	})
}

// SignOutOfEveryApp ends every code and token every app holds for the
// user, refresh tokens included, in one transaction, and tells the apps
// that take logout tokens that the sessions they hold tokens from are over
// for them. A sign-out keeps offline_access refresh tokens (Back-Channel
// Logout 1.0 §2.7); this is the person saying that no app may go on in
// their absence. Their sign-in here and their consents stay: an app signs
// them in again, without asking anew.
func (s *Service) SignOutOfEveryApp(ctx context.Context, userID string) error {
	return s.atomically(ctx, func(ctx context.Context) error {
		if err := s.event(ctx, audit.SignOut, userID, map[string]any{"apps": "all"}); err != nil {
			return err
		}
		if err := s.logoutRelyingParties(ctx, userID, nil); err != nil {
			return err
		}
		_, err := s.store.RevokeUserTokens(ctx, userID, "")
		return err
	})
}
