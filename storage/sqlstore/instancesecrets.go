package sqlstore

import (
	"context"
	"errors"
)

type instanceSecretModel struct {
	Name   string `gorm:"column:name;primaryKey"`
	Sealed []byte
}

func (instanceSecretModel) TableName() string { return "instance_secrets" }

// EnsureInstanceSecret implements storage.Storage: an INSERT that yields to
// a row already there, then a read of whichever value won.
func (s *Store) EnsureInstanceSecret(ctx context.Context, name string, sealed []byte) ([]byte, error) {
	if name == "" || len(sealed) == 0 {
		return nil, errors.New("sqlstore: an instance secret needs a name and a value")
	}
	if err := s.conn(ctx).Exec("INSERT INTO instance_secrets (name, sealed) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
		name, blob(sealed)).Error; err != nil {
		return nil, translate(err)
	}
	var m instanceSecretModel
	if err := s.conn(ctx).Where("name = ?", name).Take(&m).Error; err != nil {
		return nil, translate(err)
	}
	return m.Sealed, nil
}
