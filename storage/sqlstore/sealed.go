package sqlstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/tonearm-idp/tonearm/storage"
)

// sealedColumn is where a storage.SealedColumn lives.
type sealedColumn struct {
	table, id, value string
	// bytesID: the ID column is binary and is handed out as unpadded
	// base64url (interactions are stored under a hash of their ID).
	bytesID bool
}

var sealedColumns = map[storage.SealedColumn]sealedColumn{
	storage.SealedSigningKeys:        {table: "signing_keys", id: "kid", value: "sealed_key"},
	storage.SealedConnectorSecrets:   {table: "connectors", id: "id", value: "client_secret"},
	storage.SealedTOTPSecrets:        {table: "users", id: "id", value: "totp_secret"},
	storage.SealedListenBrainzTokens: {table: "users", id: "id", value: "listenbrainz_token"},
	storage.SealedInteractions:       {table: "interactions", id: "id_hash", value: "data", bytesID: true},
	storage.SealedInstanceSecrets:    {table: "instance_secrets", id: "name", value: "sealed"},
}

// ResealColumn implements storage.Storage. The rows are read FOR UPDATE
// (PostgreSQL), so a replica writing one of them meanwhile waits and then
// writes its own value, sealed under the current secret; SQLite has one
// writer at a time anyway.
func (s *Store) ResealColumn(ctx context.Context, column storage.SealedColumn, reseal storage.Reseal) (int, error) {
	c, ok := sealedColumns[column]
	if !ok {
		return 0, fmt.Errorf("sqlstore: %q is not a sealed column", column)
	}
	changed := 0
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		changed = 0
		type row struct {
			ID    []byte
			Value []byte
		}
		var rows []row
		q := tx.Table(c.table).Select(c.id + " AS id, " + c.value + " AS value").Where(c.value + " IS NOT NULL").Order(c.id)
		if err := s.dialect.lockRows(q).Find(&rows).Error; err != nil {
			return translate(err)
		}
		for _, r := range rows {
			if len(r.Value) == 0 {
				continue
			}
			id := string(r.ID)
			if c.bytesID {
				id = base64.RawURLEncoding.EncodeToString(r.ID)
			}
			out, ok, err := reseal(id, r.Value)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			var key any = id
			if c.bytesID {
				key = blob(r.ID)
			}
			if err := tx.Table(c.table).Where(c.id+" = ?", key).Update(c.value, out).Error; err != nil {
				return translate(err)
			}
			changed++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return changed, nil
}

// RekeyClientHash implements storage.Storage.
func (s *Store) RekeyClientHash(ctx context.Context, old, new []byte) (int64, error) {
	if len(old) == 0 || len(new) == 0 {
		return 0, errors.New("sqlstore: RekeyClientHash needs both hashes")
	}
	var n int64
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		n = 0
		for _, c := range []struct{ table, column string }{
			{"clients", "secret_hash"}, {"clients", "old_secret_hash"}, {"clients", "registration_token_hash"},
			{"registration_tokens", "token_hash"},
		} {
			res := tx.Table(c.table).Where(c.column+" = ?", blob(old)).Update(c.column, blob(new))
			if res.Error != nil {
				return translate(res.Error)
			}
			n += res.RowsAffected
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
