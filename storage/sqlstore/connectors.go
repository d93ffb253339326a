package sqlstore

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/tonearm-idp/tonearm/storage"
)

type interactionModel struct {
	IDHash    []byte `gorm:"primaryKey"`
	Binding   []byte
	Data      []byte
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
	ExpiresAt time.Time
}

func (interactionModel) TableName() string { return "interactions" }

func (m interactionModel) record() storage.Interaction {
	return storage.Interaction{IDHash: m.IDHash, Binding: m.Binding, Data: m.Data, CreatedAt: utc(m.CreatedAt), ExpiresAt: utc(m.ExpiresAt)}
}

// CreateInteraction implements storage.Storage.
func (s *Store) CreateInteraction(ctx context.Context, i storage.Interaction) error {
	m := interactionModel{IDHash: i.IDHash, Binding: i.Binding, Data: i.Data, CreatedAt: utc(i.CreatedAt), ExpiresAt: utc(i.ExpiresAt)}
	return translate(s.conn(ctx).Create(&m).Error)
}

// GetInteraction implements storage.Storage.
func (s *Store) GetInteraction(ctx context.Context, idHash []byte, now time.Time) (storage.Interaction, error) {
	var m interactionModel
	if err := s.conn(ctx).Where("id_hash = ? AND expires_at > ?", blob(idHash), utc(now)).Take(&m).Error; err != nil {
		return storage.Interaction{}, translate(err)
	}
	return m.record(), nil
}

// UpdateInteraction implements storage.Storage.
func (s *Store) UpdateInteraction(ctx context.Context, idHash []byte, now time.Time, update func(storage.Interaction) (storage.Interaction, error)) (storage.Interaction, error) {
	m, err := modify(ctx, s, row{key: "id_hash", value: blob(idHash), cond: "expires_at > ?", args: []any{utc(now)}},
		func(_ *gorm.DB, m interactionModel) (interactionModel, error) {
			next, err := update(m.record())
			if err != nil {
				return m, err
			}
			m.Data = next.Data // the rest is fixed at creation
			return m, nil
		})
	if err != nil {
		return storage.Interaction{}, err
	}
	return m.record(), nil
}

// DeleteInteraction implements storage.Storage.
func (s *Store) DeleteInteraction(ctx context.Context, idHash []byte) error {
	return translate(s.conn(ctx).Where("id_hash = ?", blob(idHash)).Delete(&interactionModel{}).Error)
}

// DeleteExpiredInteractions implements storage.Storage.
func (s *Store) DeleteExpiredInteractions(ctx context.Context, now time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	sub := s.db.Model(&interactionModel{}).Select("id_hash").Where("expires_at < ?", utc(now)).Limit(limit)
	res := s.conn(ctx).Where("id_hash IN (?)", sub).Delete(&interactionModel{})
	return res.RowsAffected, translate(res.Error)
}

type connectorModel struct {
	ID           string `gorm:"primaryKey"`
	Kind         string
	Name         string
	ClientID     string
	ClientSecret []byte
	Issuer       string
	BaseURL      string `gorm:"column:base_url"`
	Scopes       string
	CreatedAt    time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt    time.Time `gorm:"autoUpdateTime:false"`
}

func (connectorModel) TableName() string { return "connectors" }

func toConnectorModel(c storage.Connector) connectorModel {
	secret := c.ClientSecret
	if secret == nil {
		secret = []byte{}
	}
	return connectorModel{
		ID: c.ID, Kind: c.Kind, Name: c.Name, ClientID: c.ClientID, ClientSecret: secret, Issuer: c.Issuer, BaseURL: c.BaseURL,
		Scopes: encodeList(c.Scopes), CreatedAt: utc(c.CreatedAt), UpdatedAt: utc(c.UpdatedAt),
	}
}

func (m connectorModel) record() storage.Connector {
	return storage.Connector{
		ID: m.ID, Kind: m.Kind, Name: m.Name, ClientID: m.ClientID, ClientSecret: m.ClientSecret, Issuer: m.Issuer, BaseURL: m.BaseURL,
		Scopes: decodeList(m.Scopes), CreatedAt: utc(m.CreatedAt), UpdatedAt: utc(m.UpdatedAt),
	}
}

// CreateConnector implements storage.Storage.
func (s *Store) CreateConnector(ctx context.Context, c storage.Connector) error {
	m := toConnectorModel(c)
	return translate(s.conn(ctx).Create(&m).Error)
}

// GetConnector implements storage.Storage.
func (s *Store) GetConnector(ctx context.Context, id string) (storage.Connector, error) {
	var m connectorModel
	if err := s.conn(ctx).Where("id = ?", id).Take(&m).Error; err != nil {
		return storage.Connector{}, translate(err)
	}
	return m.record(), nil
}

// ListConnectors implements storage.Storage.
func (s *Store) ListConnectors(ctx context.Context) ([]storage.Connector, error) {
	var ms []connectorModel
	if err := s.conn(ctx).Order("id").Limit(1000).Find(&ms).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]storage.Connector, len(ms))
	for i, m := range ms {
		out[i] = m.record()
	}
	return out, nil
}

// UpdateConnector implements storage.Storage.
func (s *Store) UpdateConnector(ctx context.Context, id string, update func(storage.Connector) (storage.Connector, error)) (storage.Connector, error) {
	nm, err := modify(ctx, s, row{key: "id", value: id}, func(_ *gorm.DB, m connectorModel) (connectorModel, error) {
		old := m.record()
		next, err := update(old)
		if err != nil {
			return m, err
		}
		next.ID, next.Kind, next.CreatedAt = old.ID, old.Kind, old.CreatedAt
		return toConnectorModel(next), nil
	})
	if err != nil {
		return storage.Connector{}, err
	}
	return nm.record(), nil
}

// DeleteConnector implements storage.Storage.
func (s *Store) DeleteConnector(ctx context.Context, id string) error {
	return s.transaction(ctx, func(tx *gorm.DB) error {
		// The links go too (ON DELETE CASCADE, done here as well so it
		// holds without SQLite's foreign_keys pragma).
		if err := tx.Where("connector_id = ?", id).Delete(&linkedIdentityModel{}).Error; err != nil {
			return translate(err)
		}
		res := tx.Where("id = ?", id).Delete(&connectorModel{})
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
}

type linkedIdentityModel struct {
	ConnectorID string `gorm:"primaryKey"`
	Issuer      string `gorm:"primaryKey"`
	Subject     string `gorm:"primaryKey"`
	UserID      string
	Username    string
	Email       string
	CreatedAt   time.Time `gorm:"autoCreateTime:false"`
	LastUsedAt  time.Time
}

func (linkedIdentityModel) TableName() string { return "linked_identities" }

func (m linkedIdentityModel) record() storage.LinkedIdentity {
	return storage.LinkedIdentity{
		ConnectorID: m.ConnectorID, Issuer: m.Issuer, Subject: m.Subject, UserID: m.UserID, Username: m.Username, Email: m.Email,
		CreatedAt: utc(m.CreatedAt), LastUsedAt: utc(m.LastUsedAt),
	}
}

// LinkIdentity implements storage.Storage.
func (s *Store) LinkIdentity(ctx context.Context, l storage.LinkedIdentity) error {
	m := linkedIdentityModel{
		ConnectorID: l.ConnectorID, Issuer: l.Issuer, Subject: l.Subject, UserID: l.UserID, Username: l.Username, Email: l.Email,
		CreatedAt: utc(l.CreatedAt), LastUsedAt: utc(l.LastUsedAt),
	}
	return s.transaction(ctx, func(tx *gorm.DB) error {
		// Checked here too: SQLite enforces foreign keys only with its
		// pragma.
		for _, q := range []struct {
			model any
			id    string
		}{{&userModel{}, l.UserID}, {&connectorModel{}, l.ConnectorID}} {
			var n int64
			if err := tx.Model(q.model).Where("id = ?", q.id).Count(&n).Error; err != nil {
				return translate(err)
			}
			if n == 0 {
				return storage.ErrNotFound
			}
		}
		err := tx.Create(&m).Error
		if err != nil && isForeignKeyViolation(err) {
			return storage.ErrNotFound
		}
		return translate(err)
	})
}

// GetLinkedIdentity implements storage.Storage.
func (s *Store) GetLinkedIdentity(ctx context.Context, connectorID, issuer, subject string) (storage.LinkedIdentity, error) {
	var m linkedIdentityModel
	if err := s.conn(ctx).Where("connector_id = ? AND issuer = ? AND subject = ?", connectorID, issuer, subject).Take(&m).Error; err != nil {
		return storage.LinkedIdentity{}, translate(err)
	}
	return m.record(), nil
}

// UseLinkedIdentity implements storage.Storage.
func (s *Store) UseLinkedIdentity(ctx context.Context, l storage.LinkedIdentity) error {
	res := s.conn(ctx).Model(&linkedIdentityModel{}).
		Where("connector_id = ? AND issuer = ? AND subject = ?", l.ConnectorID, l.Issuer, l.Subject).
		Updates(map[string]any{"username": l.Username, "email": l.Email, "last_used_at": utc(l.LastUsedAt)})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// ListLinkedIdentities implements storage.Storage.
func (s *Store) ListLinkedIdentities(ctx context.Context, userID string) ([]storage.LinkedIdentity, error) {
	var ms []linkedIdentityModel
	if err := s.conn(ctx).Where("user_id = ?", userID).Order("connector_id").Limit(1000).Find(&ms).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]storage.LinkedIdentity, len(ms))
	for i, m := range ms {
		out[i] = m.record()
	}
	return out, nil
}

// UnlinkIdentity implements storage.Storage.
func (s *Store) UnlinkIdentity(ctx context.Context, userID, connectorID string) error {
	res := s.conn(ctx).Where("user_id = ? AND connector_id = ?", userID, connectorID).Delete(&linkedIdentityModel{})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return storage.ErrNotFound
	}
	return nil
}
