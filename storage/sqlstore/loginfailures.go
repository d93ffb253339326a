package sqlstore

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

type loginFailureModel struct {
	CounterKey  string `gorm:"primaryKey"`
	Count       int
	WindowStart time.Time
	LastAt      time.Time
}

func (loginFailureModel) TableName() string { return "login_failures" }

// ClearLoginFailures implements storage.Storage.
func (s *Store) ClearLoginFailures(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	return translate(s.conn(ctx).Where("counter_key IN ?", keys).Delete(&loginFailureModel{}).Error)
}

// DeleteStaleLoginFailures implements storage.Storage.
func (s *Store) DeleteStaleLoginFailures(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	sub := s.db.Model(&loginFailureModel{}).Select("counter_key").Where("last_at < ?", utc(before)).Limit(limit)
	res := s.conn(ctx).Where("counter_key IN (?)", sub).Delete(&loginFailureModel{})
	return res.RowsAffected, translate(res.Error)
}

// CountAttempts implements storage.Storage: one INSERT … ON CONFLICT DO
// UPDATE … RETURNING (PostgreSQL; SQLite since 3.35, the driver embeds
// 3.41) to reserve, one UPDATE … RETURNING to give back. Each row is
// changed under its row lock (PostgreSQL) or on the one writer (SQLite),
// so concurrent callers read distinct counts.
func (s *Store) CountAttempts(ctx context.Context, keys []string, n int, now time.Time, window time.Duration) ([]storage.LoginFailure, error) {
	// Sorted and distinct: PostgreSQL refuses an upsert that touches a row
	// twice, and concurrent upserts taking the same rows in different
	// orders deadlock.
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	if len(keys) == 0 || n == 0 {
		return nil, nil
	}
	now = utc(now)
	stale := now.Add(-window)
	const returning = " RETURNING counter_key, count, window_start, last_at"
	var query string
	var args []any
	if n > 0 {
		values := make([]string, len(keys))
		args = make([]any, 0, 4*len(keys)+2)
		for i, k := range keys {
			values[i] = "(?, ?, ?, ?)"
			args = append(args, k, n, now, now)
		}
		args = append(args, stale, stale)
		query = "INSERT INTO login_failures (counter_key, count, window_start, last_at) VALUES " + strings.Join(values, ", ") +
			" ON CONFLICT (counter_key) DO UPDATE SET" +
			" count = CASE WHEN login_failures.window_start <= ? THEN excluded.count ELSE login_failures.count + excluded.count END," +
			" window_start = CASE WHEN login_failures.window_start <= ? THEN excluded.window_start ELSE login_failures.window_start END," +
			" last_at = excluded.last_at" + returning
	} else {
		// The rows are locked in key order, as the INSERT above takes
		// them (an UPDATE … WHERE IN may take them in the table's order
		// and deadlock with it on PostgreSQL; SQLite has one writer).
		args = []any{n, n, keys, stale}
		query = "UPDATE login_failures SET count = CASE WHEN count + ? < 0 THEN 0 ELSE count + ? END" +
			" WHERE counter_key IN (SELECT counter_key FROM login_failures WHERE counter_key IN ? AND window_start > ? ORDER BY counter_key"
		query += s.dialect.forUpdate() + ")" + returning
	}
	var rows []loginFailureModel
	if err := s.conn(ctx).Raw(query, args...).Scan(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]storage.LoginFailure, len(rows))
	for i, m := range rows {
		out[i] = storage.LoginFailure{Key: m.CounterKey, Count: m.Count, WindowStart: utc(m.WindowStart), Last: utc(m.LastAt)}
	}
	return out, nil
}
