package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The migrations are one list, migrations/NNNN_name.sql, written once in
// PostgreSQL's words and translated for SQLite by the dialect (its column
// types: dialect.migration), as Dex's storage/sql does. Statements that
// cannot be shared (an index only PostgreSQL needs, an ALTER COLUMN SQLite
// lacks) go in NNNN_name.postgres.sql and NNNN_name.sqlite.sql, run as
// written before the shared file's, if the version has one. Either way the
// version is recorded in schema_migrations as NNNN_name.sql: the name the
// two trees of earlier releases (migrations/postgres, migrations/sqlite)
// recorded, so a database they migrated is up to date here.
//
//go:embed migrations
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrationLockKey is the PostgreSQL advisory-lock key that serialises
// replicas migrating at once ("tonearm" in ASCII).
const migrationLockKey = 0x746f6e6561726d

// loadMigrations reads the list for d, in version order.
func loadMigrations(d dialect) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	// d's own part and the shared part of each version.
	type parts struct{ name, shared, own string }
	byVersion := map[int]*parts{}
	for _, e := range entries {
		file := e.Name()
		name, variant := migrationName(file)
		if variant != "" && variant != string(d.name()) {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql with a positive version number", file)
		}
		body, err := fs.ReadFile(migrationFiles, path.Join("migrations", file))
		if err != nil {
			return nil, err
		}
		p := byVersion[v]
		if p == nil {
			p = &parts{name: name}
			byVersion[v] = p
		} else if p.name != name {
			return nil, fmt.Errorf("migrations %s and %s share version %d", p.name, name, v)
		}
		if variant == "" {
			p.shared = d.migration(string(body))
		} else {
			p.own = string(body)
		}
	}
	out := make([]migration, 0, len(byVersion))
	for v, p := range byVersion {
		out = append(out, migration{version: v, name: p.name, sql: p.own + "\n" + p.shared})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrationName is the name a migration file is recorded under and the
// database it is only for ("" for both): 0010_x.postgres.sql is
// 0010_x.sql, for PostgreSQL.
func migrationName(file string) (name, variant string) {
	for _, d := range []Dialect{Postgres, SQLite} {
		if base, ok := strings.CutSuffix(file, "."+string(d)+".sql"); ok {
			return base + ".sql", string(d)
		}
	}
	return file, ""
}

// Migrate brings the schema up to date and reports the versions it applied.
// All pending migrations run in one transaction, so a failure leaves the
// schema as it was. It is safe to run twice and from two processes at once:
// PostgreSQL takes a transaction-scoped advisory lock, SQLite begins with the
// write lock, and the second process then finds nothing left to do.
func (s *Store) Migrate(ctx context.Context) ([]int, error) {
	migrations, err := loadMigrations(s.dialect)
	if err != nil {
		return nil, err
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return nil, err
	}
	tx, err := sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("migrate: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	if q := s.dialect.namedLock(); q != "" {
		if _, err := tx.ExecContext(ctx, s.bind(q), int64(migrationLockKey)); err != nil {
			return nil, fmt.Errorf("migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at TEXT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied, err := appliedVersions(ctx, tx)
	if err != nil {
		return nil, err
	}
	latest := 0
	if len(migrations) > 0 {
		latest = migrations[len(migrations)-1].version
	}
	for v := range applied {
		if v > latest {
			return nil, fmt.Errorf("migrate: database is at schema version %d, newer than this binary knows (%d): upgrade tonearm", v, latest)
		}
	}
	var done []int
	for _, m := range migrations {
		if applied[m.version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return nil, fmt.Errorf("migrate: %s: %w", m.name, redactErr(err))
		}
		insert := s.bind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
		if _, err := tx.ExecContext(ctx, insert, m.version, m.name, time.Now().UTC().Format(time.RFC3339)); err != nil {
			return nil, fmt.Errorf("migrate: record %s: %w", m.name, err)
		}
		done = append(done, m.version)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("migrate: commit: %w", err)
	}
	return done, nil
}

func appliedVersions(ctx context.Context, tx *sql.Tx) (map[int]bool, error) {
	rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	return applied, rows.Err()
}
