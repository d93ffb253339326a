package sqlstore

import (
	"context"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

type usedJTIModel struct {
	JTIKey    string `gorm:"column:jti_key;primaryKey"`
	ExpiresAt time.Time
}

func (usedJTIModel) TableName() string { return "used_jtis" }

// UseOnce implements storage.Storage: one INSERT … ON CONFLICT that only
// takes over an expired row, so the row count says whether this use is
// the first (PostgreSQL locks the row; SQLite has one writer).
func (s *Store) UseOnce(ctx context.Context, key string, now, expiresAt time.Time) error {
	res := s.conn(ctx).Exec("INSERT INTO used_jtis (jti_key, expires_at) VALUES (?, ?)"+
		" ON CONFLICT (jti_key) DO UPDATE SET expires_at = excluded.expires_at WHERE used_jtis.expires_at <= ?",
		key, utc(expiresAt), utc(now))
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return storage.ErrAlreadyExists
	}
	return nil
}

// DeleteExpiredUses implements storage.Storage.
func (s *Store) DeleteExpiredUses(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	sub := s.db.Model(&usedJTIModel{}).Select("jti_key").Where("expires_at < ?", utc(before)).Limit(limit)
	res := s.conn(ctx).Where("jti_key IN (?)", sub).Delete(&usedJTIModel{})
	return res.RowsAffected, translate(res.Error)
}
