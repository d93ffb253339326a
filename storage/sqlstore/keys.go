package sqlstore

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/tonearm-idp/tonearm/storage"
)

type signingKeyModel struct {
	KID       string `gorm:"column:kid;primaryKey"`
	Alg       string
	SealedKey []byte
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
	RetiredAt *time.Time
}

func (signingKeyModel) TableName() string { return "signing_keys" }

// keyLockKey serialises key creation and rotation across replicas.
const keyLockKey = 0x746f6e6b657973

func (m signingKeyModel) record() storage.SigningKey {
	k := storage.SigningKey{KID: m.KID, Alg: m.Alg, Sealed: m.SealedKey, CreatedAt: utc(m.CreatedAt)}
	if m.RetiredAt != nil {
		k.RetiredAt = utc(*m.RetiredAt)
	}
	return k
}

// keyTx runs fn in a transaction that no other replica's key transaction
// interleaves with: an advisory lock on PostgreSQL, the write lock taken at
// BEGIN on SQLite.
func (s *Store) keyTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.transaction(ctx, func(tx *gorm.DB) error {
		if err := s.namedLock(tx, keyLockKey); err != nil {
			return err
		}
		return fn(tx)
	})
}

func newKeyModel(k storage.SigningKey) signingKeyModel {
	return signingKeyModel{KID: k.KID, Alg: k.Alg, SealedKey: k.Sealed, CreatedAt: utc(k.CreatedAt)}
}

// EnsureSigningKey implements storage.Storage.
func (s *Store) EnsureSigningKey(ctx context.Context, k storage.SigningKey) (bool, error) {
	created := false
	err := s.keyTx(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&signingKeyModel{}).Where("alg = ? AND retired_at IS NULL", k.Alg).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		m := newKeyModel(k)
		if err := tx.Create(&m).Error; err != nil {
			return translate(err)
		}
		created = true
		return nil
	})
	return created, err
}

// RotateSigningKey implements storage.Storage.
func (s *Store) RotateSigningKey(ctx context.Context, k storage.SigningKey, now time.Time) error {
	return s.keyTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Model(&signingKeyModel{}).Where("alg = ? AND retired_at IS NULL", k.Alg).
			Update("retired_at", utc(now)).Error; err != nil {
			return err
		}
		m := newKeyModel(k)
		return translate(tx.Create(&m).Error)
	})
}

// ListSigningKeys implements storage.Storage.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	var ms []signingKeyModel
	if err := s.conn(ctx).Order("created_at, kid").Find(&ms).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]storage.SigningKey, len(ms))
	for i, m := range ms {
		out[i] = m.record()
	}
	return out, nil
}

// DeleteSigningKeysRetiredBefore implements storage.Storage.
func (s *Store) DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int64, error) {
	res := s.conn(ctx).Where("retired_at IS NOT NULL AND retired_at < ?", utc(t)).Delete(&signingKeyModel{})
	return res.RowsAffected, translate(res.Error)
}
