package sqlstore

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/tonearm-idp/tonearm/storage"
)

type userModel struct {
	ID                string `gorm:"primaryKey"`
	Username          string
	UsernameKey       string
	PasswordHash      string
	Role              string
	ListenbrainzName  string
	ListenbrainzToken []byte
	MusicbrainzName   string
	TotpSecret        []byte
	TotpLastStep      int64
	Email             *string
	EmailKey          *string
	EmailVerified     bool
	Name              string
	Bio               string
	Pronouns          string
	Website           string
	Language          string
	Disabled          bool
	PasskeyOnly       bool
	DeviceEpoch       int64
	Claims            *string
	CreatedAt         time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt         time.Time `gorm:"autoUpdateTime:false"`
}

func (userModel) TableName() string { return "users" }

// foldKey folds a username or email for the case-insensitive unique indexes.
func foldKey(s string) string { return strings.ToLower(s) }

func toUserModel(u storage.User) userModel {
	m := userModel{
		ID:                u.ID,
		Username:          u.Username,
		UsernameKey:       foldKey(u.Username),
		PasswordHash:      u.PasswordHash,
		Role:              u.Role,
		ListenbrainzName:  u.ListenBrainzName,
		ListenbrainzToken: u.ListenBrainzToken,
		MusicbrainzName:   u.MusicBrainzName,
		TotpSecret:        u.TOTPSecret,
		TotpLastStep:      u.TOTPLastStep,
		EmailVerified:     u.EmailVerified,
		Name:              u.Name,
		Bio:               u.Bio,
		Pronouns:          u.Pronouns,
		Website:           u.Website,
		Language:          u.Language,
		Disabled:          u.Disabled,
		PasskeyOnly:       u.PasskeyOnly,
		DeviceEpoch:       u.DeviceEpoch,
		CreatedAt:         utc(u.CreatedAt),
		UpdatedAt:         utc(u.UpdatedAt),
	}
	if u.Email != "" {
		email, key := u.Email, foldKey(u.Email)
		m.Email, m.EmailKey = &email, &key
	}
	if len(u.Claims) > 0 {
		c := string(u.Claims)
		m.Claims = &c
	}
	return m
}

func (m userModel) record() storage.User {
	u := storage.User{
		ID:                m.ID,
		Username:          m.Username,
		PasswordHash:      m.PasswordHash,
		Role:              m.Role,
		ListenBrainzName:  m.ListenbrainzName,
		MusicBrainzName:   m.MusicbrainzName,
		TOTPSecret:        m.TotpSecret,
		TOTPLastStep:      m.TotpLastStep,
		ListenBrainzToken: m.ListenbrainzToken,
		EmailVerified:     m.EmailVerified,
		Name:              m.Name,
		Bio:               m.Bio,
		Pronouns:          m.Pronouns,
		Website:           m.Website,
		Language:          m.Language,
		Disabled:          m.Disabled,
		PasskeyOnly:       m.PasskeyOnly,
		DeviceEpoch:       m.DeviceEpoch,
		CreatedAt:         utc(m.CreatedAt),
		UpdatedAt:         utc(m.UpdatedAt),
	}
	if m.Email != nil {
		u.Email = *m.Email
	}
	if m.Claims != nil && *m.Claims != "" {
		u.Claims = []byte(*m.Claims)
	}
	return u
}

// CreateUser implements storage.Storage.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	m := toUserModel(u)
	return translate(s.conn(ctx).Create(&m).Error)
}

// GetUser implements storage.Storage.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	return s.getUserWhere(ctx, "id = ?", id)
}

// GetUserByUsername implements storage.Storage.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (storage.User, error) {
	return s.getUserWhere(ctx, "username_key = ?", foldKey(username))
}

// GetUserByEmail implements storage.Storage.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (storage.User, error) {
	if email == "" {
		return storage.User{}, storage.ErrNotFound
	}
	return s.getUserWhere(ctx, "email_key = ?", foldKey(email))
}

func (s *Store) getUserWhere(ctx context.Context, cond string, arg any) (storage.User, error) {
	var m userModel
	if err := s.conn(ctx).Where(cond, arg).Take(&m).Error; err != nil {
		return storage.User{}, translate(err)
	}
	return m.record(), nil
}

// adminLockKey serialises every change that removes an active admin.
const adminLockKey = 0x746f6e61646d696e

// guardLastAdmin refuses to remove the active admin id unless another
// remains. Changes that remove an admin take one lock first (PostgreSQL:
// an advisory transaction lock; SQLite: the single writer), so two
// concurrent demotions cannot each count the other.
func (s *Store) guardLastAdmin(tx *gorm.DB, id string) error {
	if err := s.namedLock(tx, adminLockKey); err != nil {
		return translate(err)
	}
	var others int64
	if err := tx.Model(&userModel{}).Where("role = ? AND disabled = ? AND id <> ?", storage.RoleAdmin, false, id).
		Count(&others).Error; err != nil {
		return translate(err)
	}
	if others == 0 {
		return storage.ErrLastAdmin
	}
	return nil
}

// UpdateUser implements storage.Storage.
func (s *Store) UpdateUser(ctx context.Context, id string, update func(storage.User) (storage.User, error)) (storage.User, error) {
	nm, err := modify(ctx, s, row{key: "id", value: id}, func(tx *gorm.DB, m userModel) (userModel, error) {
		old := m.record()
		next, err := update(old)
		if err != nil {
			return m, err
		}
		if next.ID != id {
			return m, errors.New("sqlstore: UpdateUser must not change the user ID")
		}
		if old.IsActiveAdmin() && !next.IsActiveAdmin() {
			if err := s.guardLastAdmin(tx, id); err != nil {
				return m, err
			}
		}
		nm := toUserModel(next)
		nm.DeviceEpoch = m.DeviceEpoch // only DeleteUserSessions moves it
		return nm, nil
	})
	if err != nil {
		return storage.User{}, err
	}
	return nm.record(), nil
}

// DeleteUser implements storage.Storage.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.transaction(ctx, func(tx *gorm.DB) error {
		m, err := lockedRow[userModel](s, tx, "id = ?", id)
		if err != nil {
			return err
		}
		if m.record().IsActiveAdmin() {
			if err := s.guardLastAdmin(tx, id); err != nil {
				return err
			}
		}
		if err := tx.Where("subject = ?", id).Delete(&oauthRequestModel{}).Error; err != nil {
			return translate(err)
		}
		if err := tx.Where("subject = ?", id).Delete(&accessTokenModel{}).Error; err != nil {
			return translate(err)
		}
		// Sessions, consents, passkeys, password resets and email verifications go
		// by ON DELETE CASCADE;
		// deleting them here too keeps that true without relying on
		// SQLite's foreign_keys pragma alone.
		for _, model := range []any{&sessionModel{}, &consentModel{}, &passkeyModel{}, &linkedIdentityModel{}, &recoveryCodeModel{}, &passwordResetModel{}, &emailVerificationModel{}} {
			if err := tx.Where("user_id = ?", id).Delete(model).Error; err != nil {
				return translate(err)
			}
		}
		// A developer's initial access tokens go with them, and so do
		// their apps' registration access tokens (RFC 7592): nobody may
		// register or manage apps in the name of someone who is gone. The
		// apps stay, ownerless, for admins to decide.
		if err := tx.Where("owner = ?", id).Delete(&registrationTokenModel{}).Error; err != nil {
			return translate(err)
		}
		if err := tx.Model(&clientModel{}).Where("owner = ? AND registration_token_hash IS NOT NULL", id).Update("registration_token_hash", nil).Error; err != nil {
			return translate(err)
		}
		return translate(tx.Where("id = ?", id).Delete(&userModel{}).Error)
	})
}

// ListUsers implements storage.Storage with keyset pagination on the
// folded username.
func (s *Store) ListUsers(ctx context.Context, f storage.UserFilter) ([]storage.User, error) {
	// Keys are compared bytewise on both databases (PostgreSQL: COLLATE
	// "C", with indexes to match), so a prefix is a range the index serves,
	// and pages come in the same order everywhere.
	col := s.dialect.bytewise
	q := s.conn(ctx).Model(&userModel{})
	for _, p := range []struct{ column, prefix string }{{"username_key", f.UsernamePrefix}, {"email_key", f.EmailPrefix}} {
		if p.prefix == "" {
			continue
		}
		lo := foldKey(p.prefix)
		q = q.Where(col(p.column)+" >= ? AND "+col(p.column)+" < ?", lo, prefixEnd(lo))
	}
	if f.Role != "" {
		q = q.Where("role = ?", f.Role)
	}
	if f.After != "" {
		q = q.Where(col("username_key")+" > ?", f.After)
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var ms []userModel
	if err := q.Order(col("username_key")).Limit(limit).Find(&ms).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]storage.User, len(ms))
	for i, m := range ms {
		out[i] = m.record()
	}
	return out, nil
}

// prefixEnd is the least string greater than every string that starts with
// p (bytewise): p with its last character incremented.
func prefixEnd(p string) string {
	r := []rune(p)
	for i := len(r) - 1; i >= 0; i-- {
		switch {
		case r[i] == 0xD7FF:
			r[i] = 0xE000 // skip the surrogates
		case r[i] < utf8.MaxRune:
			r[i]++
		default:
			continue // drop a maximal character and carry
		}
		return string(r[:i+1])
	}
	return p + string(rune(utf8.MaxRune)) // unreachable for real keys
}

// CountActiveAdmins implements storage.Storage.
func (s *Store) CountActiveAdmins(ctx context.Context) (int64, error) {
	var n int64
	err := s.conn(ctx).Model(&userModel{}).Where("role = ? AND disabled = ?", storage.RoleAdmin, false).Count(&n).Error
	return n, translate(err)
}

// DeleteOAuthRequestsBySubject implements storage.Storage.
func (s *Store) DeleteOAuthRequestsBySubject(ctx context.Context, subject string) (int64, error) {
	res := s.conn(ctx).Where("subject = ?", subject).Delete(&oauthRequestModel{})
	if res.Error != nil {
		return 0, translate(res.Error)
	}
	at := s.conn(ctx).Where("subject = ?", subject).Delete(&accessTokenModel{})
	return res.RowsAffected + at.RowsAffected, translate(at.Error)
}

type passwordResetModel struct {
	TokenHash []byte `gorm:"primaryKey"`
	UserID    string
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
	ExpiresAt time.Time
}

func (passwordResetModel) TableName() string { return "password_resets" }

// CreatePasswordReset implements storage.Storage.
func (s *Store) CreatePasswordReset(ctx context.Context, r storage.PasswordReset) error {
	m := passwordResetModel{TokenHash: r.TokenHash, UserID: r.UserID, CreatedAt: utc(r.CreatedAt), ExpiresAt: utc(r.ExpiresAt)}
	err := s.conn(ctx).Create(&m).Error
	if err != nil && isForeignKeyViolation(err) {
		return storage.ErrNotFound
	}
	return translate(err)
}

// ConsumePasswordReset implements storage.Storage: the DELETE of the one row
// decides between concurrent consumers.
func (s *Store) ConsumePasswordReset(ctx context.Context, tokenHash []byte, now time.Time) (storage.PasswordReset, error) {
	var out storage.PasswordReset
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		var m passwordResetModel
		if err := tx.Where("token_hash = ?", tokenHash).Take(&m).Error; err != nil {
			return translate(err)
		}
		res := tx.Where("token_hash = ?", tokenHash).Delete(&passwordResetModel{})
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return storage.ErrNotFound
		}
		if !utc(now).Before(utc(m.ExpiresAt)) {
			// Expired: it is gone now, and it was never valid.
			return errExpiredReset
		}
		if err := tx.Where("user_id = ?", m.UserID).Delete(&passwordResetModel{}).Error; err != nil {
			return translate(err)
		}
		out = storage.PasswordReset{TokenHash: m.TokenHash, UserID: m.UserID, CreatedAt: utc(m.CreatedAt), ExpiresAt: utc(m.ExpiresAt)}
		return nil
	})
	if errors.Is(err, errExpiredReset) {
		// The expired row's deletion was rolled back with the transaction;
		// the cleaner removes it.
		return storage.PasswordReset{}, storage.ErrNotFound
	}
	return out, err
}

var errExpiredReset = errors.New("sqlstore: password reset expired")

// DeleteExpiredPasswordResets implements storage.Storage.
func (s *Store) DeleteExpiredPasswordResets(ctx context.Context, now time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	sub := s.db.Model(&passwordResetModel{}).Select("token_hash").Where("expires_at < ?", utc(now)).Limit(limit)
	res := s.conn(ctx).Where("token_hash IN (?)", sub).Delete(&passwordResetModel{})
	return res.RowsAffected, translate(res.Error)
}

type emailVerificationModel struct {
	TokenHash []byte `gorm:"primaryKey"`
	UserID    string
	Email     string
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
	ExpiresAt time.Time
}

func (emailVerificationModel) TableName() string { return "email_verifications" }

// CreateEmailVerification implements storage.Storage.
func (s *Store) CreateEmailVerification(ctx context.Context, v storage.EmailVerification) error {
	m := emailVerificationModel{TokenHash: v.TokenHash, UserID: v.UserID, Email: v.Email, CreatedAt: utc(v.CreatedAt), ExpiresAt: utc(v.ExpiresAt)}
	err := s.conn(ctx).Create(&m).Error
	if err != nil && isForeignKeyViolation(err) {
		return storage.ErrNotFound
	}
	return translate(err)
}

// ConsumeEmailVerification implements storage.Storage: the DELETE of the
// one row decides between concurrent consumers.
func (s *Store) ConsumeEmailVerification(ctx context.Context, tokenHash []byte, now time.Time) (storage.EmailVerification, error) {
	var out storage.EmailVerification
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		var m emailVerificationModel
		if err := tx.Where("token_hash = ?", tokenHash).Take(&m).Error; err != nil {
			return translate(err)
		}
		if !utc(now).Before(utc(m.ExpiresAt)) {
			return storage.ErrNotFound // the cleaner removes it
		}
		res := tx.Where("token_hash = ?", tokenHash).Delete(&emailVerificationModel{})
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return storage.ErrNotFound
		}
		if err := tx.Where("user_id = ?", m.UserID).Delete(&emailVerificationModel{}).Error; err != nil {
			return translate(err)
		}
		out = storage.EmailVerification{TokenHash: m.TokenHash, UserID: m.UserID, Email: m.Email, CreatedAt: utc(m.CreatedAt), ExpiresAt: utc(m.ExpiresAt)}
		return nil
	})
	return out, err
}

// DeleteUserEmailVerifications implements storage.Storage.
func (s *Store) DeleteUserEmailVerifications(ctx context.Context, userID string) (int64, error) {
	res := s.conn(ctx).Where("user_id = ?", userID).Delete(&emailVerificationModel{})
	return res.RowsAffected, translate(res.Error)
}

// DeleteExpiredEmailVerifications implements storage.Storage.
func (s *Store) DeleteExpiredEmailVerifications(ctx context.Context, now time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	sub := s.db.Model(&emailVerificationModel{}).Select("token_hash").Where("expires_at < ?", utc(now)).Limit(limit)
	res := s.conn(ctx).Where("token_hash IN (?)", sub).Delete(&emailVerificationModel{})
	return res.RowsAffected, translate(res.Error)
}
