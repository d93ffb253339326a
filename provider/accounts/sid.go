package accounts

import "context"

// SessionUserBySID is the user of the browser session an ID token's sid
// names (storage.ErrNotFound when it has ended): an id_token_hint of a
// pairwise client carries no user ID, only a sub that is checked against
// this user (RP-Initiated Logout from the relying party's server, without
// the browser's cookie).
func (s *Service) SessionUserBySID(ctx context.Context, sid string) (string, error) {
	sess, err := s.store.GetSessionBySID(ctx, sid)
	if err != nil {
		return "", err
	}
	return sess.UserID, nil
}
