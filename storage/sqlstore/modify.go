package sqlstore

import (
	"context"

	"gorm.io/gorm"
)

// The store's atomic updates (UpdateUser, UpdateClient, PollDeviceCode…)
// are one shape, Dex's UpdateX(id, func(old) (new, error)): read the row,
// let the caller decide, write the answer back, with nobody else writing
// the row in between. They all go through modify so that the lock is taken
// the same way everywhere: a row read without it lets two concurrent
// updates both start from the old value, and the second silently undoes
// the first on PostgreSQL (SQLite's one writer hides the mistake).

// lockedRow reads the one row of M that where selects, locked until tx
// ends (FOR UPDATE on PostgreSQL; on SQLite the transaction already holds
// the write lock). No such row is storage.ErrNotFound.
func lockedRow[M any](s *Store, tx *gorm.DB, where string, args ...any) (M, error) {
	var m M
	err := s.dialect.lockRows(tx).Where(where, args...).Take(&m).Error
	return m, translate(err)
}

// row names the row modify changes: its key column and value, and a
// further condition the row must meet to be found (none when cond is "").
type row struct {
	key   string
	value any
	cond  string
	args  []any
}

// modify is the read-modify-write: in one transaction it reads the row
// (lockedRow), hands it to change, and writes every column of the model
// change returns, but the key, back to that row. change may write more on
// tx (rows that hang off this one, say); an error from it rolls everything
// back and is returned as it is. It returns the model written.
func modify[M any](ctx context.Context, s *Store, r row, change func(tx *gorm.DB, old M) (M, error)) (M, error) {
	var out M
	where, args := r.key+" = ?", []any{r.value}
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		cond, cargs := where, args
		if r.cond != "" {
			cond, cargs = where+" AND "+r.cond, append(append([]any{}, args...), r.args...)
		}
		old, err := lockedRow[M](s, tx, cond, cargs...)
		if err != nil {
			return err
		}
		next, err := change(tx, old)
		if err != nil {
			return err
		}
		// Select("*") writes zero values too (a cleared token, an empty
		// name); the key stays (Omit), it is how the row was found.
		if err := tx.Model(new(M)).Where(where, args...).Select("*").Omit(r.key).Updates(&next).Error; err != nil {
			return translate(err)
		}
		out = next
		return nil
	})
	return out, err
}

// namedLock takes a transaction-scoped lock named key, serialising the
// transactions that take it across replicas (PostgreSQL's advisory lock;
// SQLite's transactions run one at a time already).
func (s *Store) namedLock(tx *gorm.DB, key int64) error {
	if q := s.dialect.namedLock(); q != "" {
		return tx.Exec(q, key).Error
	}
	return nil
}
