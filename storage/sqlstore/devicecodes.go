package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/tonearm-idp/tonearm/storage"
)

type deviceCodeModel struct {
	DeviceCodeHash  []byte `gorm:"primaryKey"`
	UserCodeHash    []byte
	ClientID        string
	Scopes          string
	Resources       string
	RequestedAt     time.Time
	ExpiresAt       time.Time
	IntervalSeconds int
	LastPolledAt    sql.NullTime
	Status          string
	UserID          string
	GrantedScopes   string
	AuthTime        sql.NullTime
	AMR             string `gorm:"column:amr"` // space-separated
}

func (deviceCodeModel) TableName() string { return "device_codes" }

func (m deviceCodeModel) record() storage.DeviceCode {
	d := storage.DeviceCode{
		DeviceCodeHash: m.DeviceCodeHash, UserCodeHash: m.UserCodeHash, ClientID: m.ClientID,
		Scopes: decodeList(m.Scopes), Resources: decodeList(m.Resources), RequestedAt: utc(m.RequestedAt),
		ExpiresAt: utc(m.ExpiresAt), Interval: time.Duration(m.IntervalSeconds) * time.Second, Status: m.Status,
		UserID: m.UserID, GrantedScopes: decodeList(m.GrantedScopes), AMR: strings.Fields(m.AMR),
	}
	if m.LastPolledAt.Valid {
		d.LastPolledAt = utc(m.LastPolledAt.Time)
	}
	if m.AuthTime.Valid {
		d.AuthTime = utc(m.AuthTime.Time)
	}
	return d
}

// CreateDeviceCode implements storage.Storage.
func (s *Store) CreateDeviceCode(ctx context.Context, d storage.DeviceCode) error {
	m := deviceCodeModel{
		DeviceCodeHash: d.DeviceCodeHash, UserCodeHash: d.UserCodeHash, ClientID: d.ClientID,
		Scopes: encodeList(d.Scopes), Resources: encodeList(d.Resources), RequestedAt: utc(d.RequestedAt),
		ExpiresAt: utc(d.ExpiresAt), IntervalSeconds: int(d.Interval / time.Second), Status: storage.DevicePending,
		GrantedScopes: "[]",
	}
	err := s.conn(ctx).Create(&m).Error
	if err != nil && isForeignKeyViolation(err) {
		return storage.ErrNotFound
	}
	return translate(err)
}

// GetDeviceCodeByUserCode implements storage.Storage.
func (s *Store) GetDeviceCodeByUserCode(ctx context.Context, userCodeHash []byte) (storage.DeviceCode, error) {
	var m deviceCodeModel
	if err := s.conn(ctx).Where("user_code_hash = ?", blob(userCodeHash)).Take(&m).Error; err != nil {
		return storage.DeviceCode{}, translate(err)
	}
	return m.record(), nil
}

// DecideDeviceCode implements storage.Storage with one conditional UPDATE.
func (s *Store) DecideDeviceCode(ctx context.Context, userCodeHash []byte, userID string, granted []string, authTime time.Time, amr []string, now time.Time) error {
	status := storage.DeviceDenied
	updates := map[string]any{"status": status}
	if userID != "" {
		updates = map[string]any{"status": storage.DeviceApproved, "user_id": userID, "granted_scopes": encodeList(granted), "auth_time": utc(authTime),
			"amr": strings.Join(amr, " ")}
	}
	res := s.conn(ctx).Model(&deviceCodeModel{}).
		Where("user_code_hash = ? AND status = ? AND expires_at > ?", blob(userCodeHash), storage.DevicePending, utc(now)).
		Updates(updates)
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// slowDownStep is what a too-fast poll adds to the interval (RFC 8628
// §3.5).
const slowDownStep = 5

// PollDeviceCode implements storage.Storage: the poll is recorded in the
// same transaction that reads the row (modify), so two polls at once
// cannot both be on time.
func (s *Store) PollDeviceCode(ctx context.Context, deviceCodeHash []byte, now time.Time) (storage.DeviceCode, bool, error) {
	tooFast := false
	now = utc(now)
	m, err := modify(ctx, s, row{key: "device_code_hash", value: blob(deviceCodeHash)}, func(_ *gorm.DB, m deviceCodeModel) (deviceCodeModel, error) {
		if m.LastPolledAt.Valid && now.Sub(utc(m.LastPolledAt.Time)) < time.Duration(m.IntervalSeconds)*time.Second {
			tooFast = true
			m.IntervalSeconds += slowDownStep
		}
		m.LastPolledAt = sql.NullTime{Time: now, Valid: true}
		return m, nil
	})
	if err != nil {
		return storage.DeviceCode{}, false, err
	}
	return m.record(), tooFast, nil
}

// ConsumeDeviceCode implements storage.Storage.
func (s *Store) ConsumeDeviceCode(ctx context.Context, deviceCodeHash []byte) error {
	res := s.conn(ctx).Model(&deviceCodeModel{}).
		Where("device_code_hash = ? AND status = ?", blob(deviceCodeHash), storage.DeviceApproved).
		Update("status", storage.DeviceUsed)
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// DeleteExpiredDeviceCodes implements storage.Storage.
func (s *Store) DeleteExpiredDeviceCodes(ctx context.Context, now time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	sub := s.db.Model(&deviceCodeModel{}).Select("device_code_hash").Where("expires_at < ?", utc(now)).Limit(limit)
	res := s.conn(ctx).Where("device_code_hash IN (?)", sub).Delete(&deviceCodeModel{})
	return res.RowsAffected, translate(res.Error)
}
