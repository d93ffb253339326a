package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

// Spending a code and rotating a refresh token are each a conditional
// UPDATE followed by a DELETE that only makes sense when the UPDATE won
// (the code's PKCE challenge; the family's access tokens). On PostgreSQL a
// data-modifying CTE sends both in one round trip, the DELETE conditioned
// on the UPDATE's RETURNING; SQLite, which has no such CTE (and whose
// statements are in-process calls, not round trips), runs the two.
const (
	spendOAuthRequestSQL = `WITH u AS (UPDATE oauth2_requests SET active = ? WHERE kind = ? AND signature = ? AND active = ? RETURNING 1),
		d AS (DELETE FROM oauth2_requests WHERE kind = ? AND signature = ? AND EXISTS (SELECT 1 FROM u))
		SELECT count(*) FROM u`
	rotateOAuthRequestFamilySQL = `WITH u AS (UPDATE oauth2_requests SET active = ?, rotated_at = ? WHERE kind = ? AND signature = ? AND active = ? RETURNING 1),
		d AS (DELETE FROM access_tokens WHERE request_id = ? AND EXISTS (SELECT 1 FROM u))
		SELECT count(*) FROM u`
)

// SpendOAuthRequest implements storage.Storage.
func (s *Store) SpendOAuthRequest(ctx context.Context, kind, signature, alsoDelete string) error {
	if s.dialect.name() != Postgres || kind == storage.KindAccessToken || alsoDelete == storage.KindAccessToken {
		if err := s.DeactivateOAuthRequest(ctx, kind, signature); err != nil {
			return err
		}
		return s.DeleteOAuthRequest(ctx, alsoDelete, signature)
	}
	var n int64
	err := s.pool(ctx).QueryRowContext(stmtContext(ctx), s.bind(spendOAuthRequestSQL),
		false, kind, signature, true, alsoDelete, signature).Scan(&n)
	if err != nil {
		return translate(err)
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// RotateOAuthRequestFamily implements storage.Storage.
func (s *Store) RotateOAuthRequestFamily(ctx context.Context, kind, signature, requestID string, now, rotatedAfter time.Time) error {
	if s.dialect.name() == Postgres {
		var n int64
		err := s.pool(ctx).QueryRowContext(stmtContext(ctx), s.bind(rotateOAuthRequestFamilySQL),
			false, utc(now), kind, signature, true, idBytes(requestID)).Scan(&n)
		if err != nil {
			return translate(err)
		}
		if n == 1 {
			return nil
		}
		// Not rotated now: maybe a retry within the grace period (rare),
		// which RotateOAuthRequest decides.
	}
	if err := s.RotateOAuthRequest(ctx, kind, signature, now, rotatedAfter); err != nil {
		return err
	}
	_, err := s.deleteAccessTokensOfRequest(ctx, requestID)
	return err
}

// TakeOAuthRequest implements storage.Storage as one DELETE … RETURNING
// (both databases have it).
func (s *Store) TakeOAuthRequest(ctx context.Context, kind, signature string) (storage.OAuthRequest, error) {
	if kind == storage.KindAccessToken {
		return storage.OAuthRequest{}, errors.New("sqlstore: TakeOAuthRequest takes no access tokens")
	}
	m := oauthRequestModel{Kind: kind, Signature: signature}
	err := s.batchedStatement(ctx, func(ctx context.Context) error {
		return translate(s.pool(ctx).QueryRowContext(stmtContext(ctx), s.bind(takeOAuthRequestSQL), kind, signature).Scan(
			&m.RequestID, &m.RequestedAt, &m.ClientID, &m.Subject, &m.Scopes, &m.GrantedScopes,
			&m.Audience, &m.GrantedAudience, &m.Form, &m.Session, &m.Active, &m.ExpiresAt, &m.AccessSignature, &m.SID, &m.RotatedAt))
	})
	if err != nil {
		return storage.OAuthRequest{}, err
	}
	return m.record(), nil
}

const takeOAuthRequestSQL = `DELETE FROM oauth2_requests WHERE kind = ? AND signature = ?
	RETURNING request_id, requested_at, client_id, subject, scopes, granted_scopes,
	audience, granted_audience, form, session, active, expires_at, access_signature, sid, rotated_at`
