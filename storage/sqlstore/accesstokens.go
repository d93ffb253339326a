package sqlstore

import (
	"context"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

// Access tokens live in their own table (access_tokens): they are most of
// the protocol rows, and only what reading one back needs is kept — a
// 16-byte key, the request id in binary, what was granted as
// space-separated words, the lean session. The methods of oauth.go route
// kind storage.KindAccessToken here.

type accessTokenModel struct {
	Signature       []byte `gorm:"primaryKey"`
	RequestID       []byte
	RequestedAt     time.Time
	ExpiresAt       time.Time
	ClientID        string
	Subject         string
	SID             string `gorm:"column:sid"`
	GrantedScopes   string
	GrantedAudience string
	Session         []byte
}

func (accessTokenModel) TableName() string { return "access_tokens" }

// blob passes bytes to GORM as one value (a bare []byte argument is
// expanded like a list).
type blob []byte

// Value implements driver.Valuer.
func (b blob) Value() (driver.Value, error) { return []byte(b), nil }

// keyBytes stores a signature given as 64 hex digits (a SHA-256) as its 32
// bytes, anything else as it is (lookups convert the same way).
func keyBytes(sig string) blob {
	if len(sig) == 64 {
		if b, err := hex.DecodeString(sig); err == nil && hex.EncodeToString(b) == sig {
			return b
		}
	}
	return blob(sig)
}

// idBytes stores a request id given as a lowercase UUID as its 16 bytes,
// anything else as it is; idString undoes it.
func idBytes(id string) blob {
	if len(id) == 36 && id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-' {
		b, err := hex.DecodeString(id[0:8] + id[9:13] + id[14:18] + id[19:23] + id[24:36])
		if err == nil && idString(b) == id {
			return b
		}
	}
	return blob(id)
}

func idString(b []byte) string {
	if len(b) != 16 {
		return string(b)
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// accessKey is an access token's key: the first 128 bits of the SHA-256
// given as 64 hex digits (finding a token whose hash shares them with a
// live token's is a 2^128 search), anything else as it is.
func accessKey(sig string) blob {
	k := keyBytes(sig)
	if len(sig) == 64 && len(k) == 32 {
		return k[:16]
	}
	return k
}

// encodeWords stores a list of words (scopes, audiences: no spaces) as one
// space-separated string; decodeWords also reads the JSON arrays of older
// rows.
func encodeWords(l []string) string { return strings.Join(l, " ") }

func decodeWords(s string) []string {
	if strings.HasPrefix(s, "[") {
		return decodeList(s)
	}
	if s == "" {
		return []string{}
	}
	return strings.Split(s, " ")
}

const (
	insertAccessTokenSQL = `INSERT INTO access_tokens (signature, request_id, requested_at, expires_at, client_id, subject, sid,
		granted_scopes, granted_audience, session) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	selectAccessTokenSQL = `SELECT request_id, requested_at, expires_at, client_id, subject, sid, granted_scopes, granted_audience, session
		FROM access_tokens WHERE signature = ?`
	// selectAccessTokensSQL is completed with "(?, …)" (combine.go).
	selectAccessTokensSQL = `SELECT signature, request_id, requested_at, expires_at, client_id, subject, sid, granted_scopes,
		granted_audience, session FROM access_tokens WHERE signature IN `
	insertOAuthRequestSQL = `INSERT INTO oauth2_requests (kind, signature, request_id, requested_at, client_id, subject,
		scopes, granted_scopes, audience, granted_audience, form, session, active, expires_at, access_signature, sid)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	deactivateOAuthRequestSQL      = `UPDATE oauth2_requests SET active = ? WHERE kind = ? AND signature = ? AND active = ?`
	openOAuthRequestSQL            = `UPDATE oauth2_requests SET active = ?, expires_at = ? WHERE kind = ? AND signature = ? AND active = ?`
	rotateOAuthRequestSQL          = `UPDATE oauth2_requests SET active = ?, rotated_at = ? WHERE kind = ? AND signature = ? AND active = ?`
	deleteOAuthRequestSQL          = `DELETE FROM oauth2_requests WHERE kind = ? AND signature = ?`
	deleteAccessTokenSQL           = `DELETE FROM access_tokens WHERE signature = ?`
	deleteAccessTokensOfRequestSQL = `DELETE FROM access_tokens WHERE request_id = ?`
	selectOAuthRequestSQL          = `SELECT request_id, requested_at, client_id, subject, scopes, granted_scopes,
		audience, granted_audience, form, session, active, expires_at, access_signature, sid, rotated_at
		FROM oauth2_requests WHERE kind = ? AND signature = ?`
)

// accessTokenRow is an access token's values in insertAccessTokenSQL's
// column order, or why it cannot be stored.
func accessTokenRow(r storage.OAuthRequest) ([]any, error) {
	for _, l := range [][]string{r.GrantedScopes, r.GrantedAudience} {
		for _, w := range l {
			if w == "" || strings.ContainsAny(w, " \t\r\n") {
				return nil, fmt.Errorf("sqlstore: %q cannot be stored as a word", w)
			}
		}
	}
	session := r.Session
	if session == nil {
		session = []byte{}
	}
	return []any{accessKey(r.Signature), idBytes(r.RequestID), utc(r.RequestedAt), utc(r.ExpiresAt), r.ClientID, r.Subject, r.SID,
		encodeWords(r.GrantedScopes), encodeWords(r.GrantedAudience), blob(session)}, nil
}

// getAccessToken is the query of every introspection and bearer check: one
// plain SELECT by primary key, scanned field by field.
func (s *Store) getAccessToken(ctx context.Context, signature string) (storage.OAuthRequest, error) {
	var m accessTokenModel
	var err error
	if s.accessLookups != nil && ctx.Value(txKey{}) == nil {
		m, err = s.accessLookups.do(ctx, accessKey(signature))
	} else {
		err = s.readPool(ctx).QueryRowContext(stmtContext(ctx), s.selectAccessToken, accessKey(signature)).Scan(
			&m.RequestID, &m.RequestedAt, &m.ExpiresAt, &m.ClientID, &m.Subject, &m.SID, &m.GrantedScopes, &m.GrantedAudience, &m.Session)
	}
	if err != nil {
		return storage.OAuthRequest{}, translate(err)
	}
	return storage.OAuthRequest{
		Kind: storage.KindAccessToken, Signature: signature, RequestID: idString(m.RequestID), RequestedAt: utc(m.RequestedAt),
		ClientID: m.ClientID, Subject: m.Subject, Scopes: []string{}, GrantedScopes: decodeWords(m.GrantedScopes),
		Audience: []string{}, GrantedAudience: decodeWords(m.GrantedAudience), Session: m.Session, Active: true,
		ExpiresAt: utc(m.ExpiresAt), SID: m.SID,
	}, nil
}

func (s *Store) deleteAccessToken(ctx context.Context, signature string) (int64, error) {
	return s.exec(ctx, s.deleteAccessTokenStmt, accessKey(signature))
}

func (s *Store) deleteAccessTokensOfRequest(ctx context.Context, requestID string) (int64, error) {
	return s.exec(ctx, s.deleteAccessTokensOfRequestStmt, idBytes(requestID))
}
