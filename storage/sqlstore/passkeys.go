package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/tonearm-idp/tonearm/storage"
)

type passkeyModel struct {
	ID              []byte `gorm:"primaryKey"`
	UserID          string
	Name            string
	PublicKey       []byte
	SignCount       int64
	AAGUID          []byte `gorm:"column:aaguid"`
	Transports      string
	AttestationType string
	BackupEligible  bool
	BackupState     bool
	CreatedAt       time.Time `gorm:"autoCreateTime:false"`
	LastUsedAt      sql.NullTime
}

func (passkeyModel) TableName() string { return "passkeys" }

func (m passkeyModel) record() storage.Passkey {
	p := storage.Passkey{
		ID: m.ID, UserID: m.UserID, Name: m.Name, PublicKey: m.PublicKey, SignCount: uint32(m.SignCount), AAGUID: m.AAGUID,
		Transports: decodeList(m.Transports), AttestationType: m.AttestationType, BackupEligible: m.BackupEligible,
		BackupState: m.BackupState, CreatedAt: utc(m.CreatedAt),
	}
	if m.LastUsedAt.Valid {
		p.LastUsedAt = utc(m.LastUsedAt.Time)
	}
	return p
}

// CreatePasskey implements storage.Storage.
func (s *Store) CreatePasskey(ctx context.Context, p storage.Passkey) error {
	m := passkeyModel{
		ID: p.ID, UserID: p.UserID, Name: p.Name, PublicKey: p.PublicKey, SignCount: int64(p.SignCount), AAGUID: p.AAGUID,
		Transports: encodeList(p.Transports), AttestationType: p.AttestationType, BackupEligible: p.BackupEligible,
		BackupState: p.BackupState, CreatedAt: utc(p.CreatedAt),
	}
	if !p.LastUsedAt.IsZero() {
		m.LastUsedAt = sql.NullTime{Time: utc(p.LastUsedAt), Valid: true}
	}
	err := s.conn(ctx).Create(&m).Error
	if err != nil && isForeignKeyViolation(err) {
		return storage.ErrNotFound
	}
	return translate(err)
}

// GetPasskey implements storage.Storage.
func (s *Store) GetPasskey(ctx context.Context, id []byte) (storage.Passkey, error) {
	var m passkeyModel
	if err := s.conn(ctx).Where("id = ?", blob(id)).Take(&m).Error; err != nil {
		return storage.Passkey{}, translate(err)
	}
	return m.record(), nil
}

// ListPasskeys implements storage.Storage.
func (s *Store) ListPasskeys(ctx context.Context, userID string) ([]storage.Passkey, error) {
	var ms []passkeyModel
	if err := s.conn(ctx).Where("user_id = ?", userID).Order("created_at, id").Limit(1000).Find(&ms).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]storage.Passkey, len(ms))
	for i, m := range ms {
		out[i] = m.record()
	}
	return out, nil
}

// UsePasskey implements storage.Storage with one conditional UPDATE: the
// counter moves forward, or both the stored and the new one are 0.
func (s *Store) UsePasskey(ctx context.Context, id []byte, signCount uint32, backupState bool, at time.Time) error {
	n := int64(signCount)
	res := s.conn(ctx).Model(&passkeyModel{}).
		Where("id = ? AND (sign_count < ? OR (sign_count = 0 AND ? = 0))", blob(id), n, n).
		Updates(map[string]any{"sign_count": n, "backup_state": backupState, "last_used_at": utc(at)})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// RenamePasskey implements storage.Storage.
func (s *Store) RenamePasskey(ctx context.Context, userID string, id []byte, name string) error {
	res := s.conn(ctx).Model(&passkeyModel{}).Where("id = ? AND user_id = ?", blob(id), userID).UpdateColumn("name", name)
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// DeletePasskey implements storage.Storage.
func (s *Store) DeletePasskey(ctx context.Context, userID string, id []byte) error {
	res := s.conn(ctx).Where("id = ? AND user_id = ?", blob(id), userID).Delete(&passkeyModel{})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// DeleteUserPasskeys implements storage.Storage.
func (s *Store) DeleteUserPasskeys(ctx context.Context, userID string) (int64, error) {
	res := s.conn(ctx).Where("user_id = ?", userID).Delete(&passkeyModel{})
	return res.RowsAffected, translate(res.Error)
}

type passkeyChallengeModel struct {
	ChallengeHash []byte `gorm:"primaryKey"`
	UserID        string
	Data          []byte
	ExpiresAt     time.Time
}

func (passkeyChallengeModel) TableName() string { return "passkey_challenges" }

// CreatePasskeyChallenge implements storage.Storage.
func (s *Store) CreatePasskeyChallenge(ctx context.Context, c storage.PasskeyChallenge) error {
	m := passkeyChallengeModel{ChallengeHash: c.ChallengeHash, UserID: c.UserID, Data: c.Data, ExpiresAt: utc(c.ExpiresAt)}
	return translate(s.conn(ctx).Create(&m).Error)
}

var errExpiredChallenge = errors.New("sqlstore: expired challenge")

// ConsumePasskeyChallenge implements storage.Storage: read and delete in
// one transaction; the DELETE's row count decides between two consumers.
func (s *Store) ConsumePasskeyChallenge(ctx context.Context, challengeHash []byte, now time.Time) (storage.PasskeyChallenge, error) {
	var out storage.PasskeyChallenge
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		var m passkeyChallengeModel
		if err := tx.Where("challenge_hash = ?", blob(challengeHash)).Take(&m).Error; err != nil {
			return translate(err)
		}
		res := tx.Where("challenge_hash = ?", blob(challengeHash)).Delete(&passkeyChallengeModel{})
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return storage.ErrNotFound
		}
		if !utc(now).Before(utc(m.ExpiresAt)) {
			return errExpiredChallenge // rolled back: the cleaner removes it
		}
		out = storage.PasskeyChallenge{ChallengeHash: m.ChallengeHash, UserID: m.UserID, Data: m.Data, ExpiresAt: utc(m.ExpiresAt)}
		return nil
	})
	if errors.Is(err, errExpiredChallenge) {
		return storage.PasskeyChallenge{}, storage.ErrNotFound
	}
	return out, err
}

// DeleteExpiredPasskeyChallenges implements storage.Storage.
func (s *Store) DeleteExpiredPasskeyChallenges(ctx context.Context, now time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	sub := s.db.Model(&passkeyChallengeModel{}).Select("challenge_hash").Where("expires_at < ?", utc(now)).Limit(limit)
	res := s.conn(ctx).Where("challenge_hash IN (?)", sub).Delete(&passkeyChallengeModel{})
	return res.RowsAffected, translate(res.Error)
}
