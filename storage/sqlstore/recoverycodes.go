package sqlstore

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/tonearm-idp/tonearm/storage"
)

type recoveryCodeModel struct {
	UserID    string    `gorm:"primaryKey"`
	CodeHash  []byte    `gorm:"primaryKey"`
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
}

func (recoveryCodeModel) TableName() string { return "recovery_codes" }

// ReplaceRecoveryCodes implements storage.Storage.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error {
	return s.transaction(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&userModel{}).Where("id = ?", userID).Count(&n).Error; err != nil {
			return translate(err)
		}
		if n == 0 {
			return storage.ErrNotFound
		}
		if err := tx.Where("user_id = ?", userID).Delete(&recoveryCodeModel{}).Error; err != nil {
			return translate(err)
		}
		if len(hashes) == 0 {
			return nil
		}
		ms := make([]recoveryCodeModel, len(hashes))
		for i, h := range hashes {
			ms[i] = recoveryCodeModel{UserID: userID, CodeHash: h, CreatedAt: utc(now)}
		}
		return translate(tx.Create(&ms).Error)
	})
}

// UseRecoveryCode implements storage.Storage: the DELETE's row count
// decides between two concurrent uses.
func (s *Store) UseRecoveryCode(ctx context.Context, userID string, hash []byte) error {
	res := s.conn(ctx).Where("user_id = ? AND code_hash = ?", userID, blob(hash)).Delete(&recoveryCodeModel{})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// CountRecoveryCodes implements storage.Storage.
func (s *Store) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	var n int64
	err := s.conn(ctx).Model(&recoveryCodeModel{}).Where("user_id = ?", userID).Count(&n).Error
	return int(n), translate(err)
}
