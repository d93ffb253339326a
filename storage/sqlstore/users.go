package sqlstore

import (
	"context"
	"errors"
	"strings"
	"time"

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
	CreatedAt         time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt         time.Time `gorm:"autoUpdateTime:false"`
}

func (userModel) TableName() string { return "users" }

// usernameKey folds a username for the case-insensitive unique index.
func usernameKey(username string) string { return strings.ToLower(username) }

func toUserModel(u storage.User) userModel {
	return userModel{
		ID:                u.ID,
		Username:          u.Username,
		UsernameKey:       usernameKey(u.Username),
		PasswordHash:      u.PasswordHash,
		Role:              u.Role,
		ListenbrainzName:  u.ListenBrainzName,
		ListenbrainzToken: u.ListenBrainzToken,
		CreatedAt:         utc(u.CreatedAt),
		UpdatedAt:         utc(u.UpdatedAt),
	}
}

func (m userModel) record() storage.User {
	return storage.User{
		ID:                m.ID,
		Username:          m.Username,
		PasswordHash:      m.PasswordHash,
		Role:              m.Role,
		ListenBrainzName:  m.ListenbrainzName,
		ListenBrainzToken: m.ListenbrainzToken,
		CreatedAt:         utc(m.CreatedAt),
		UpdatedAt:         utc(m.UpdatedAt),
	}
}

// CreateUser implements storage.Storage.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	m := toUserModel(u)
	return translate(s.conn(ctx).Create(&m).Error)
}

// GetUser implements storage.Storage.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	var m userModel
	if err := s.conn(ctx).Where("id = ?", id).Take(&m).Error; err != nil {
		return storage.User{}, translate(err)
	}
	return m.record(), nil
}

// GetUserByUsername implements storage.Storage.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (storage.User, error) {
	var m userModel
	if err := s.conn(ctx).Where("username_key = ?", usernameKey(username)).Take(&m).Error; err != nil {
		return storage.User{}, translate(err)
	}
	return m.record(), nil
}

// UpdateUser implements storage.Storage.
func (s *Store) UpdateUser(ctx context.Context, id string, update func(storage.User) (storage.User, error)) (storage.User, error) {
	var out storage.User
	err := s.conn(ctx).Transaction(func(tx *gorm.DB) error {
		var m userModel
		if err := s.forUpdate(tx).Where("id = ?", id).Take(&m).Error; err != nil {
			return translate(err)
		}
		next, err := update(m.record())
		if err != nil {
			return err
		}
		if next.ID != id {
			return errors.New("sqlstore: UpdateUser must not change the user ID")
		}
		nm := toUserModel(next)
		// Select("*") writes zero values too (a cleared token, an empty name).
		if err := tx.Model(&userModel{}).Where("id = ?", id).Select("*").Omit("id").Updates(&nm).Error; err != nil {
			return translate(err)
		}
		out = nm.record()
		return nil
	})
	if err != nil {
		return storage.User{}, err
	}
	return out, nil
}
