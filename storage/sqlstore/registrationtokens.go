package sqlstore

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/tonearm-idp/tonearm/storage"
)

type registrationTokenModel struct {
	ID          string `gorm:"primaryKey"`
	TokenHash   []byte
	Owner       string
	Description string
	CreatedAt   time.Time `gorm:"autoCreateTime:false"`
	ExpiresAt   *time.Time
}

func (registrationTokenModel) TableName() string { return "registration_tokens" }

func (m registrationTokenModel) record() storage.RegistrationToken {
	t := storage.RegistrationToken{ID: m.ID, TokenHash: m.TokenHash, Owner: m.Owner, Description: m.Description, CreatedAt: utc(m.CreatedAt)}
	if m.ExpiresAt != nil {
		t.ExpiresAt = utc(*m.ExpiresAt)
	}
	return t
}

// CreateRegistrationToken implements storage.Storage.
func (s *Store) CreateRegistrationToken(ctx context.Context, t storage.RegistrationToken) error {
	m := registrationTokenModel{ID: t.ID, TokenHash: t.TokenHash, Owner: t.Owner, Description: t.Description, CreatedAt: utc(t.CreatedAt)}
	if !t.ExpiresAt.IsZero() {
		at := utc(t.ExpiresAt)
		m.ExpiresAt = &at
	}
	return translate(s.conn(ctx).Create(&m).Error)
}

// GetRegistrationTokenByHash implements storage.Storage.
func (s *Store) GetRegistrationTokenByHash(ctx context.Context, hash []byte, now time.Time) (storage.RegistrationToken, error) {
	var m registrationTokenModel
	if err := s.conn(ctx).Where("token_hash = ? AND (expires_at IS NULL OR expires_at > ?)", blob(hash), utc(now)).Take(&m).Error; err != nil {
		return storage.RegistrationToken{}, translate(err)
	}
	return m.record(), nil
}

// ListRegistrationTokens implements storage.Storage.
func (s *Store) ListRegistrationTokens(ctx context.Context, owner string, all bool) ([]storage.RegistrationToken, error) {
	q := s.conn(ctx).Order("created_at DESC, id").Limit(1000)
	if !all {
		q = q.Where("owner = ?", owner)
	}
	var ms []registrationTokenModel
	if err := q.Find(&ms).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]storage.RegistrationToken, len(ms))
	for i, m := range ms {
		out[i] = m.record()
	}
	return out, nil
}

// DeleteRegistrationToken implements storage.Storage.
func (s *Store) DeleteRegistrationToken(ctx context.Context, id, owner string, all bool) error {
	q := s.conn(ctx).Where("id = ?", id)
	if !all {
		q = q.Where("owner = ?", owner)
	}
	res := q.Delete(&registrationTokenModel{})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// RevokeDeveloperCredentials implements storage.Storage.
func (s *Store) RevokeDeveloperCredentials(ctx context.Context, owner string) (int64, error) {
	if owner == "" {
		// "" owns the operator's tokens and openly registered apps.
		return 0, nil
	}
	var n int64
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		res := tx.Where("owner = ?", owner).Delete(&registrationTokenModel{})
		if res.Error != nil {
			return translate(res.Error)
		}
		n = res.RowsAffected
		res = tx.Model(&clientModel{}).Where("owner = ? AND registration_token_hash IS NOT NULL", owner).
			Update("registration_token_hash", nil)
		n += res.RowsAffected
		return translate(res.Error)
	})
	return n, err
}
