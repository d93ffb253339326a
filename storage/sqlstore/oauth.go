package sqlstore

import (
	"context"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tonearm-idp/tonearm/storage"
)

type oauthRequestModel struct {
	Kind            string `gorm:"primaryKey"`
	Signature       string `gorm:"primaryKey"`
	RequestID       string
	RequestedAt     time.Time
	ClientID        string
	Subject         string
	Scopes          string
	GrantedScopes   string
	Audience        string
	GrantedAudience string
	Form            string
	Session         []byte
	Active          bool
	ExpiresAt       time.Time
	AccessSignature string
	SID             string `gorm:"column:sid"`
	RotatedAt       *time.Time
}

func (oauthRequestModel) TableName() string { return "oauth2_requests" }

func (m oauthRequestModel) record() storage.OAuthRequest {
	return storage.OAuthRequest{
		Kind: m.Kind, Signature: m.Signature, RequestID: m.RequestID, RequestedAt: utc(m.RequestedAt),
		ClientID: m.ClientID, Subject: m.Subject,
		Scopes: decodeList(m.Scopes), GrantedScopes: decodeList(m.GrantedScopes),
		Audience: decodeList(m.Audience), GrantedAudience: decodeList(m.GrantedAudience),
		Form: m.Form, Session: m.Session, Active: m.Active, ExpiresAt: utc(m.ExpiresAt),
		AccessSignature: m.AccessSignature, SID: m.SID, RotatedAt: utcPtr(m.RotatedAt),
	}
}

func utcPtr(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return utc(*t)
}

// CreateOAuthRequest implements storage.Storage.
func (s *Store) CreateOAuthRequest(ctx context.Context, r storage.OAuthRequest) error {
	// Every issued token is one of these INSERTs: a plain statement, not
	// GORM's reflective Create (a tenth of a client-credentials request's
	// CPU) nor its statement building. Outside a transaction, concurrent
	// ones are combined into multi-row INSERTs (combine.go).
	insert, rows := s.insertOAuthRequest, s.requestRows
	var row []any
	if r.Kind == storage.KindAccessToken {
		var err error
		if row, err = accessTokenRow(r); err != nil {
			return err
		}
		insert, rows = s.insertAccessToken, s.accessRows
	} else {
		row = oauthRequestRow(r)
	}
	if ctx.Value(txKey{}) == nil {
		_, err := rows.do(ctx, row)
		return err
	}
	_, err := s.pool(ctx).ExecContext(stmtContext(ctx), insert, row...)
	return translate(err)
}

// CreateOAuthRequests implements storage.Storage: one multi-row INSERT,
// which stores all its rows or none without a transaction around it (a
// code's three rows were BEGIN, three INSERTs and COMMIT: five round trips
// on PostgreSQL, now one). Access tokens, which have a table of their own,
// go in the same statement on PostgreSQL (a data-modifying CTE) and in a
// transaction of the two INSERTs on SQLite.
func (s *Store) CreateOAuthRequests(ctx context.Context, rs []storage.OAuthRequest) error {
	var access, others []any
	na, no := 0, 0
	for _, r := range rs {
		if r.Kind != storage.KindAccessToken {
			others = append(others, oauthRequestRow(r)...)
			no++
			continue
		}
		row, err := accessTokenRow(r)
		if err != nil {
			return err
		}
		access = append(access, row...)
		na++
	}
	switch {
	case na == 0 && no == 0:
		return nil
	case na == 0:
		return s.batchedExec(ctx, s.bind(multiRow(insertOAuthRequestSQL, no)), others...)
	case no == 0:
		return s.batchedExec(ctx, s.bind(multiRow(insertAccessTokenSQL, na)), access...)
	case s.dialect.name() == Postgres:
		q := "WITH a AS (" + multiRow(insertAccessTokenSQL, na) + ") " + multiRow(insertOAuthRequestSQL, no)
		return s.batchedExec(ctx, s.bind(q), append(access, others...)...)
	}
	return s.batched(ctx, func(ctx context.Context) error {
		if _, err := s.exec(ctx, s.bind(multiRow(insertAccessTokenSQL, na)), access...); err != nil {
			return err
		}
		_, err := s.exec(ctx, s.bind(multiRow(insertOAuthRequestSQL, no)), others...)
		return err
	})
}

// multiRow is a single-row INSERT … VALUES (?, …) for n rows.
func multiRow(insert string, n int) string {
	i := strings.LastIndex(insert, "VALUES")
	return insert[:i+len("VALUES")] + " " + repeated(strings.TrimSpace(insert[i+len("VALUES"):]), n)
}

// oauthRequestRow is a row's values in insertOAuthRequestSQL's column order.
func oauthRequestRow(r storage.OAuthRequest) []any {
	session := r.Session
	if session == nil {
		session = []byte{}
	}
	return []any{r.Kind, r.Signature, r.RequestID, utc(r.RequestedAt), r.ClientID, r.Subject,
		encodeList(r.Scopes), encodeList(r.GrantedScopes), encodeList(r.Audience), encodeList(r.GrantedAudience),
		r.Form, session, r.Active, utc(r.ExpiresAt), r.AccessSignature, r.SID}
}

// GetOAuthRequest implements storage.Storage.
// It is the query of every token introspection and every bearer-token
// check, so it skips GORM's statement building and reflective scanning:
// one plain SELECT by primary key, scanned field by field (it was a tenth
// of an introspection's CPU).
func (s *Store) GetOAuthRequest(ctx context.Context, kind, signature string) (storage.OAuthRequest, error) {
	if kind == storage.KindAccessToken {
		return s.getAccessToken(ctx, signature)
	}
	m := oauthRequestModel{Kind: kind, Signature: signature}
	err := s.readPool(ctx).QueryRowContext(stmtContext(ctx), s.selectOAuthRequest, kind, signature).Scan(
		&m.RequestID, &m.RequestedAt, &m.ClientID, &m.Subject, &m.Scopes, &m.GrantedScopes,
		&m.Audience, &m.GrantedAudience, &m.Form, &m.Session, &m.Active, &m.ExpiresAt, &m.AccessSignature, &m.SID, &m.RotatedAt)
	if err != nil {
		return storage.OAuthRequest{}, translate(err)
	}
	return m.record(), nil
}

// GetOAuthRequestsBySignature implements storage.Storage: a code's row and
// its PKCE challenge share the signature, and the token endpoint needs
// both; one SELECT on the primary key (kind, signature) reads them.
func (s *Store) GetOAuthRequestsBySignature(ctx context.Context, signature string, kinds []string) ([]storage.OAuthRequest, error) {
	if len(kinds) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(kinds)+1)
	args = append(args, signature)
	for _, k := range kinds {
		args = append(args, k)
	}
	q := s.bind(`SELECT kind, request_id, requested_at, client_id, subject, scopes, granted_scopes,
		audience, granted_audience, form, session, active, expires_at, access_signature, sid, rotated_at
		FROM oauth2_requests WHERE signature = ? AND kind IN (` + repeated("?", len(kinds)) + `)`)
	rows, err := s.readPool(ctx).QueryContext(stmtContext(ctx), q, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []storage.OAuthRequest
	for rows.Next() {
		m := oauthRequestModel{Signature: signature}
		if err := rows.Scan(&m.Kind, &m.RequestID, &m.RequestedAt, &m.ClientID, &m.Subject, &m.Scopes, &m.GrantedScopes,
			&m.Audience, &m.GrantedAudience, &m.Form, &m.Session, &m.Active, &m.ExpiresAt, &m.AccessSignature, &m.SID, &m.RotatedAt); err != nil {
			return nil, translate(err)
		}
		out = append(out, m.record())
	}
	return out, translate(rows.Err())
}

// DeleteOAuthRequest implements storage.Storage.
func (s *Store) DeleteOAuthRequest(ctx context.Context, kind, signature string) error {
	return s.batchedStatement(ctx, func(ctx context.Context) error {
		if kind == storage.KindAccessToken {
			_, err := s.deleteAccessToken(ctx, signature)
			return err
		}
		_, err := s.exec(ctx, s.deleteOAuthRequest, kind, signature)
		return err
	})
}

// DeactivateOAuthRequest implements storage.Storage as one conditional
// UPDATE: the database decides which of two concurrent callers wins.
func (s *Store) DeactivateOAuthRequest(ctx context.Context, kind, signature string) error {
	if kind == storage.KindAccessToken {
		// An inactive access token is no token: it goes.
		n, err := s.deleteAccessToken(ctx, signature)
		if err == nil && n == 0 {
			err = storage.ErrNotFound
		}
		return err
	}
	n, err := s.exec(ctx, s.deactivateOAuthRequest, false, kind, signature, true)
	if err != nil {
		return err
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// OpenOAuthRequest implements storage.Storage, one conditional UPDATE
// like DeactivateOAuthRequest.
func (s *Store) OpenOAuthRequest(ctx context.Context, kind, signature string, expiresAt time.Time) error {
	n, err := s.exec(ctx, s.openOAuthRequest, false, utc(expiresAt), kind, signature, true)
	if err != nil {
		return err
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// RotateOAuthRequest implements storage.Storage: the conditional UPDATE
// lets exactly one of concurrent first uses rotate; the others, and a later
// retry, pass only within the grace period.
func (s *Store) RotateOAuthRequest(ctx context.Context, kind, signature string, now, rotatedAfter time.Time) error {
	now = utc(now)
	n, err := s.exec(ctx, s.rotateOAuthRequest, false, now, kind, signature, true)
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	if rotatedAfter.IsZero() {
		return storage.ErrNotFound
	}
	err = s.conn(ctx).Model(&oauthRequestModel{}).
		Where("kind = ? AND signature = ? AND active = ? AND rotated_at > ?", kind, signature, false, utc(rotatedAfter)).
		Count(&n).Error
	if err != nil {
		return translate(err)
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// DeactivateOAuthRequestsByRequestID implements storage.Storage.
func (s *Store) DeactivateOAuthRequestsByRequestID(ctx context.Context, kind, requestID string) (int64, error) {
	if kind == storage.KindAccessToken {
		return s.deleteAccessTokensOfRequest(ctx, requestID)
	}
	res := s.conn(ctx).Model(&oauthRequestModel{}).
		Where("request_id = ? AND kind = ? AND active = ?", requestID, kind, true).
		Update("active", false)
	return res.RowsAffected, translate(res.Error)
}

// DeleteOAuthRequestsByRequestID implements storage.Storage.
func (s *Store) DeleteOAuthRequestsByRequestID(ctx context.Context, kind, requestID string) (int64, error) {
	if kind == storage.KindAccessToken {
		return s.deleteAccessTokensOfRequest(ctx, requestID)
	}
	res := s.conn(ctx).Where("request_id = ? AND kind = ?", requestID, kind).Delete(&oauthRequestModel{})
	return res.RowsAffected, translate(res.Error)
}

// DeleteExpiredOAuthRequests implements storage.Storage as one bounded
// DELETE by primary key, so a cleaner holds the locks of at most limit rows
// for one short statement (500 rows: a few milliseconds).
func (s *Store) DeleteExpiredOAuthRequests(ctx context.Context, now time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	res := s.conn(ctx).Exec(`DELETE FROM oauth2_requests WHERE (kind, signature) IN
		(SELECT kind, signature FROM oauth2_requests WHERE expires_at < ? LIMIT ?)`, utc(now), limit)
	if res.Error != nil || res.RowsAffected >= int64(limit) {
		return res.RowsAffected, translate(res.Error)
	}
	n := res.RowsAffected
	res = s.conn(ctx).Exec(`DELETE FROM access_tokens WHERE signature IN
		(SELECT signature FROM access_tokens WHERE expires_at < ? LIMIT ?)`, utc(now), int64(limit)-n)
	return n + res.RowsAffected, translate(res.Error)
}

type consentModel struct {
	UserID    string `gorm:"primaryKey"`
	ClientID  string `gorm:"primaryKey"`
	Scopes    string
	GrantedAt time.Time
}

func (consentModel) TableName() string { return "consents" }

// SaveConsent implements storage.Storage as an upsert.
func (s *Store) SaveConsent(ctx context.Context, c storage.Consent) error {
	m := consentModel{UserID: c.UserID, ClientID: c.ClientID, Scopes: encodeList(c.Scopes), GrantedAt: utc(c.GrantedAt)}
	err := s.conn(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "user_id"}, {Name: "client_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"scopes", "granted_at"}),
	}).Create(&m).Error
	if err != nil && isForeignKeyViolation(err) {
		return storage.ErrNotFound
	}
	return translate(err)
}

// GetConsent implements storage.Storage.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (storage.Consent, error) {
	var m consentModel
	if err := s.conn(ctx).Where("user_id = ? AND client_id = ?", userID, clientID).Take(&m).Error; err != nil {
		return storage.Consent{}, translate(err)
	}
	return storage.Consent{UserID: m.UserID, ClientID: m.ClientID, Scopes: decodeList(m.Scopes), GrantedAt: utc(m.GrantedAt)}, nil
}

// ListConnectedApps implements storage.Storage: the consents, and the
// clients holding live refresh or access tokens of the user, merged in Go
// (the latest token per client is found by comparing times here, which
// keeps the SQL the same on both databases).
func (s *Store) ListConnectedApps(ctx context.Context, userID string, now time.Time) ([]storage.Consent, error) {
	var ms []consentModel
	if err := s.conn(ctx).Where("user_id = ?", userID).Order("granted_at DESC, client_id").Find(&ms).Error; err != nil {
		return nil, translate(err)
	}
	type tokenRow struct {
		ClientID      string
		RequestedAt   time.Time
		GrantedScopes string
		Words         bool
	}
	var live []tokenRow
	now = utc(now)
	if err := s.conn(ctx).Raw(`SELECT client_id, requested_at, granted_scopes, false AS words FROM oauth2_requests
		WHERE subject = ? AND kind = ? AND active = ? AND expires_at > ?
		UNION ALL SELECT client_id, requested_at, granted_scopes, true AS words FROM access_tokens WHERE subject = ? AND expires_at > ?`,
		userID, storage.KindRefreshToken, true, now, userID, now).Scan(&live).Error; err != nil {
		return nil, translate(err)
	}
	type held struct {
		first, last time.Time
		scopes      []string
	}
	byClient := map[string]*held{}
	for _, t := range live {
		at := utc(t.RequestedAt)
		scopes := decodeList(t.GrantedScopes)
		if t.Words {
			scopes = decodeWords(t.GrantedScopes)
		}
		h := byClient[t.ClientID]
		if h == nil {
			byClient[t.ClientID] = &held{first: at, last: at, scopes: scopes}
			continue
		}
		if at.After(h.last) {
			h.last, h.scopes = at, scopes
		}
		if at.Before(h.first) {
			h.first = at
		}
	}
	out := make([]storage.Consent, 0, len(ms)+len(byClient))
	for _, m := range ms {
		c := storage.Consent{UserID: m.UserID, ClientID: m.ClientID, Scopes: decodeList(m.Scopes), GrantedAt: utc(m.GrantedAt)}
		if h := byClient[m.ClientID]; h != nil {
			c.LastUsed = h.last
			delete(byClient, m.ClientID)
		}
		out = append(out, c)
	}
	for id, h := range byClient {
		out = append(out, storage.Consent{UserID: userID, ClientID: id, Scopes: h.scopes, GrantedAt: h.first, LastUsed: h.last})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].GrantedAt.Equal(out[j].GrantedAt) {
			return out[i].GrantedAt.After(out[j].GrantedAt)
		}
		return out[i].ClientID < out[j].ClientID
	})
	return out, nil
}

// RevokeConsent implements storage.Storage.
func (s *Store) RevokeConsent(ctx context.Context, userID, clientID string) error {
	return s.transaction(ctx, func(tx *gorm.DB) error {
		res := tx.Where("user_id = ? AND client_id = ?", userID, clientID).Delete(&consentModel{})
		if res.Error != nil {
			return translate(res.Error)
		}
		n := res.RowsAffected
		if res = tx.Where("subject = ? AND client_id = ? AND kind <> ?", userID, clientID, storage.KindPAR).Delete(&oauthRequestModel{}); res.Error != nil {
			return translate(res.Error)
		}
		n += res.RowsAffected
		if res = tx.Where("subject = ? AND client_id = ?", userID, clientID).Delete(&accessTokenModel{}); res.Error != nil {
			return translate(res.Error)
		}
		if n+res.RowsAffected == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
}

// RevokeUserSessionTokens implements storage.Storage.
func (s *Store) RevokeUserSessionTokens(ctx context.Context, userID string) (int64, error) {
	if userID == "" {
		return 0, nil
	}
	var n int64
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		res := tx.Where("subject = ? AND kind NOT IN ?", userID, []string{storage.KindPAR, storage.KindRefreshToken}).Delete(&oauthRequestModel{})
		if res.Error != nil {
			return translate(res.Error)
		}
		n = res.RowsAffected
		res = tx.Where("subject = ?", userID).Delete(&accessTokenModel{})
		n += res.RowsAffected
		return translate(res.Error)
	})
	return n, err
}

// RevokeUserTokens implements storage.Storage.
func (s *Store) RevokeUserTokens(ctx context.Context, userID, keepSID string) (int64, error) {
	if userID == "" {
		return 0, nil
	}
	var n int64
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		where, args := "subject = ? AND kind <> ?", []any{userID, storage.KindPAR}
		if keepSID != "" {
			where += " AND sid <> ?"
			args = append(args, keepSID)
		}
		res := tx.Where(where, args...).Delete(&oauthRequestModel{})
		if res.Error != nil {
			return translate(res.Error)
		}
		n = res.RowsAffected
		where, args = "subject = ?", []any{userID}
		if keepSID != "" {
			where += " AND sid <> ?"
			args = append(args, keepSID)
		}
		res = tx.Where(where, args...).Delete(&accessTokenModel{})
		n += res.RowsAffected
		return translate(res.Error)
	})
	return n, err
}
