package sqlstore

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/tonearm-idp/tonearm/storage"
)

type sessionModel struct {
	IDHash     []byte `gorm:"primaryKey"`
	SID        string `gorm:"column:sid"`
	UserID     string
	AuthTime   time.Time
	CreatedAt  time.Time `gorm:"autoCreateTime:false"`
	ExpiresAt  time.Time
	LastUsedAt time.Time
	UserAgent  string
	IP         string `gorm:"column:ip"`
	AMR        string `gorm:"column:amr"`
}

func (sessionModel) TableName() string { return "sessions" }

func (m sessionModel) record() storage.Session {
	return storage.Session{
		IDHash:     m.IDHash,
		SID:        m.SID,
		UserID:     m.UserID,
		AuthTime:   utc(m.AuthTime),
		CreatedAt:  utc(m.CreatedAt),
		ExpiresAt:  utc(m.ExpiresAt),
		LastUsedAt: utc(m.LastUsedAt),
		UserAgent:  m.UserAgent,
		IP:         m.IP,
		AMR:        m.AMR,
	}
}

// CreateSession implements storage.Storage.
func (s *Store) CreateSession(ctx context.Context, sess storage.Session) error {
	m := sessionModel{
		IDHash:     sess.IDHash,
		SID:        sess.SID,
		UserID:     sess.UserID,
		AuthTime:   utc(sess.AuthTime),
		CreatedAt:  utc(sess.CreatedAt),
		ExpiresAt:  utc(sess.ExpiresAt),
		LastUsedAt: utc(sess.LastUsedAt),
		UserAgent:  sess.UserAgent,
		IP:         sess.IP,
		AMR:        sess.AMR,
	}
	if m.LastUsedAt.IsZero() {
		m.LastUsedAt = m.CreatedAt
	}
	err := s.conn(ctx).Create(&m).Error
	if err != nil && isForeignKeyViolation(err) {
		return storage.ErrNotFound
	}
	return translate(err)
}

// GetSession implements storage.Storage.
func (s *Store) GetSession(ctx context.Context, idHash []byte) (storage.Session, error) {
	var m sessionModel
	if err := s.conn(ctx).Where("id_hash = ?", idHash).Take(&m).Error; err != nil {
		return storage.Session{}, translate(err)
	}
	return m.record(), nil
}

// GetSessionBySID implements storage.Storage.
func (s *Store) GetSessionBySID(ctx context.Context, sid string) (storage.Session, error) {
	if sid == "" {
		return storage.Session{}, storage.ErrNotFound
	}
	var m sessionModel
	if err := s.conn(ctx).Where("sid = ?", sid).Take(&m).Error; err != nil {
		return storage.Session{}, translate(err)
	}
	return m.record(), nil
}

// ListUserSessions implements storage.Storage.
func (s *Store) ListUserSessions(ctx context.Context, userID string, now time.Time) ([]storage.Session, error) {
	var ms []sessionModel
	err := s.conn(ctx).Where("user_id = ? AND expires_at > ?", userID, utc(now)).
		Order("last_used_at DESC, created_at DESC").Limit(1000).Find(&ms).Error
	if err != nil {
		return nil, translate(err)
	}
	out := make([]storage.Session, len(ms))
	for i, m := range ms {
		out[i] = m.record()
	}
	return out, nil
}

// TouchSession implements storage.Storage.
func (s *Store) TouchSession(ctx context.Context, idHash []byte, at time.Time) error {
	return translate(s.conn(ctx).Model(&sessionModel{}).Where("id_hash = ?", idHash).
		UpdateColumn("last_used_at", utc(at)).Error)
}

// DeleteSessionBySID implements storage.Storage.
func (s *Store) DeleteSessionBySID(ctx context.Context, userID, sid string) (int64, error) {
	if sid == "" {
		return 0, nil
	}
	res := s.conn(ctx).Where("sid = ? AND user_id = ?", sid, userID).Delete(&sessionModel{})
	return res.RowsAffected, translate(res.Error)
}

// DeleteSession implements storage.Storage.
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	return translate(s.conn(ctx).Where("id_hash = ?", idHash).Delete(&sessionModel{}).Error)
}

// DeleteUserSessions implements storage.Storage.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		res := tx.Where("user_id = ?", userID).Delete(&sessionModel{})
		if res.Error != nil {
			return translate(res.Error)
		}
		n = res.RowsAffected
		return translate(tx.Model(&userModel{}).Where("id = ?", userID).
			UpdateColumn("device_epoch", gorm.Expr("device_epoch + 1")).Error)
	})
	return n, err
}

// DeleteExpiredSessions implements storage.Storage. It deletes by primary key
// from a bounded sub-select so that one call holds its locks only briefly.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	sub := s.db.Model(&sessionModel{}).Select("id_hash").Where("expires_at < ?", utc(now)).Limit(limit)
	res := s.conn(ctx).Where("id_hash IN (?)", sub).Delete(&sessionModel{})
	return res.RowsAffected, translate(res.Error)
}

func isForeignKeyViolation(err error) bool {
	return errors.Is(err, gorm.ErrForeignKeyViolated)
}
