package sqlstore

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/tonearm-idp/tonearm/storage"
)

type apiModel struct {
	ID            string `gorm:"primaryKey"`
	Name          string
	Claims        string
	Introspectors string
	ExchangeFrom  string
	OpenToApps    bool
	CreatedAt     time.Time `gorm:"autoCreateTime:false"`
}

func (apiModel) TableName() string { return "apis" }

type apiScopeModel struct {
	Name        string `gorm:"primaryKey"`
	APIID       string `gorm:"column:api_id"`
	Description string
	Position    int
}

func (apiScopeModel) TableName() string { return "api_scopes" }

// CreateAPI implements storage.Storage: the API and its scopes in one
// transaction; the primary key of api_scopes keeps a scope to one API.
func (s *Store) CreateAPI(ctx context.Context, a storage.API) error {
	return s.transaction(ctx, func(tx *gorm.DB) error {
		m := toAPIModel(a)
		if err := tx.Create(&m).Error; err != nil {
			return translate(err)
		}
		return createAPIScopes(tx, a)
	})
}

func createAPIScopes(tx *gorm.DB, a storage.API) error {
	if len(a.Scopes) == 0 {
		return nil
	}
	rows := make([]apiScopeModel, len(a.Scopes))
	for i, sc := range a.Scopes {
		rows[i] = apiScopeModel{Name: sc.Name, APIID: a.ID, Description: sc.Description, Position: i}
	}
	return translate(tx.Create(&rows).Error)
}

// UpdateAPI implements storage.Storage: read, change and write back in one
// transaction (modify), the scopes replaced as a whole.
func (s *Store) UpdateAPI(ctx context.Context, id string, update func(storage.API) (storage.API, error)) (storage.API, error) {
	var out storage.API
	_, err := modify(ctx, s, row{key: "id", value: id}, func(tx *gorm.DB, m apiModel) (apiModel, error) {
		var scopes []apiScopeModel
		if err := tx.Where("api_id = ?", id).Order("position").Find(&scopes).Error; err != nil {
			return m, translate(err)
		}
		next, err := update(apiRecord(m, scopes))
		if err != nil {
			return m, err
		}
		next.ID, next.CreatedAt = m.ID, utc(m.CreatedAt)
		if err := tx.Where("api_id = ?", id).Delete(&apiScopeModel{}).Error; err != nil {
			return m, translate(err)
		}
		if err := createAPIScopes(tx, next); err != nil {
			return m, err
		}
		out = next
		return toAPIModel(next), nil
	})
	return out, err
}

func toAPIModel(a storage.API) apiModel {
	return apiModel{ID: a.ID, Name: a.Name, Claims: encodeList(a.Claims), Introspectors: encodeList(a.Introspectors), ExchangeFrom: encodeList(a.ExchangeFrom), OpenToApps: a.OpenToApps, CreatedAt: utc(a.CreatedAt)}
}

// GetAPI implements storage.Storage.
func (s *Store) GetAPI(ctx context.Context, id string) (storage.API, error) {
	var m apiModel
	if err := s.conn(ctx).Where("id = ?", id).Take(&m).Error; err != nil {
		return storage.API{}, translate(err)
	}
	var scopes []apiScopeModel
	if err := s.conn(ctx).Where("api_id = ?", id).Order("position").Find(&scopes).Error; err != nil {
		return storage.API{}, translate(err)
	}
	return apiRecord(m, scopes), nil
}

// ListAPIs implements storage.Storage (two queries, whatever the number).
func (s *Store) ListAPIs(ctx context.Context) ([]storage.API, error) {
	var ms []apiModel
	if err := s.conn(ctx).Order("id").Find(&ms).Error; err != nil {
		return nil, translate(err)
	}
	var scopes []apiScopeModel
	if err := s.conn(ctx).Order("api_id, position").Find(&scopes).Error; err != nil {
		return nil, translate(err)
	}
	byAPI := map[string][]apiScopeModel{}
	for _, sc := range scopes {
		byAPI[sc.APIID] = append(byAPI[sc.APIID], sc)
	}
	out := make([]storage.API, len(ms))
	for i, m := range ms {
		out[i] = apiRecord(m, byAPI[m.ID])
	}
	return out, nil
}

func apiRecord(m apiModel, scopes []apiScopeModel) storage.API {
	a := storage.API{ID: m.ID, Name: m.Name, Claims: decodeList(m.Claims), Introspectors: decodeList(m.Introspectors), ExchangeFrom: decodeList(m.ExchangeFrom), OpenToApps: m.OpenToApps, Scopes: []storage.APIScope{}, CreatedAt: utc(m.CreatedAt)}
	for _, sc := range scopes {
		a.Scopes = append(a.Scopes, storage.APIScope{Name: sc.Name, Description: sc.Description})
	}
	return a
}

// DeleteAPI implements storage.Storage.
func (s *Store) DeleteAPI(ctx context.Context, id string) error {
	return s.transaction(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("api_id = ?", id).Delete(&apiScopeModel{}).Error; err != nil {
			return translate(err)
		}
		res := tx.Where("id = ?", id).Delete(&apiModel{})
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
}
