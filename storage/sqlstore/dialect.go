package sqlstore

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// dialect is every difference between PostgreSQL and SQLite that the
// store's code meets: how a connection is opened and pooled, placeholders,
// row and named locks, the spelling of a few expressions, and how a
// migration written once is translated. The rest of the package asks its
// Store's dialect and never tests which database it is on, so a new
// difference is a new method here, answered by both (issue 32 item 7).
// What both spell alike stays plain SQL: upserts (INSERT … ON CONFLICT …
// DO UPDATE, SQLite since 3.24) and RETURNING (SQLite since 3.35; the
// driver embeds 3.41+). Errors are told apart by their driver's type, which
// cannot be mistaken for the other's, so translate and unavailable.go
// classify both without asking the dialect.
type dialect interface {
	name() Dialect
	// open connects GORM to the database at loc.
	open(ctx context.Context, loc Location, config *gorm.Config) (*gorm.DB, error)
	// setUp sizes s's pool and starts what this database needs beside it
	// (SQLite: the group commit, the readers, the checkpointer;
	// PostgreSQL: the combined access-token lookups).
	setUp(s *Store, loc Location) error
	// bind writes a statement's ? placeholders the way the driver wants.
	bind(q string) string
	// lockRows makes a SELECT lock the rows it reads until the
	// transaction ends.
	lockRows(q *gorm.DB) *gorm.DB
	// forUpdate is the same for hand-written SQL: a suffix of the SELECT.
	forUpdate() string
	// namedLock is a statement taking a transaction-scoped lock named by
	// its one parameter (an int64), or "" where transactions already run
	// one at a time.
	namedLock() string
	// timeParam is a placeholder for a time in a SELECT list, where
	// PostgreSQL would otherwise take the parameter for text.
	timeParam() string
	// bytewise is column compared and ordered byte by byte, the order
	// that makes a prefix a range an index serves.
	bytewise(column string) string
	// migration translates a migration written in PostgreSQL's words.
	migration(sql string) string
	// seed is the expressions tonearm-load's Seed builds rows from.
	seed() seedSQL
}

// seedSQL spells the generated rows of Seed in one database's functions.
type seedSQL struct {
	// series is a FROM item t(g) with the integers lo…hi.
	series func(lo, hi int) string
	// id and name are the user ID and user name of number expr.
	id, name func(expr string) string
	// session is a session blob around the text expression %s.
	session string
	// key and requestID are a token's signature and request ID from g.
	key, requestID string
}

func dialectOf(d Dialect) dialect {
	if d == Postgres {
		return postgresDialect{}
	}
	return sqliteDialect{}
}

type postgresDialect struct{}

func (postgresDialect) name() Dialect { return Postgres }

func (postgresDialect) open(ctx context.Context, loc Location, config *gorm.Config) (*gorm.DB, error) {
	d, err := postgresDialector(loc.DSN, observerOf(ctx))
	if err != nil {
		return nil, err
	}
	return gorm.Open(classifying{d}, config)
}

func (postgresDialect) setUp(s *Store, _ Location) error {
	s.sqlDB.SetMaxOpenConns(32)
	s.sqlDB.SetMaxIdleConns(32)
	s.sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	s.accessLookups = newAccessTokenLookups(s.sqlDB, s.bind)
	return nil
}

// bind writes ? as PostgreSQL's $1, $2, … (statements given to it hold no
// ? in literals).
func (postgresDialect) bind(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (postgresDialect) lockRows(q *gorm.DB) *gorm.DB {
	return q.Clauses(clause.Locking{Strength: "UPDATE"})
}

func (postgresDialect) forUpdate() string { return " FOR UPDATE" }
func (postgresDialect) namedLock() string { return "SELECT pg_advisory_xact_lock(?)" }
func (postgresDialect) timeParam() string { return "CAST(? AS TIMESTAMPTZ)" }

// bytewise: under a linguistic collation a range is not a prefix and LIKE
// 'x%' cannot use the index; the users_*_key_c indexes are COLLATE "C".
func (postgresDialect) bytewise(column string) string { return column + ` COLLATE "C"` }

func (postgresDialect) migration(sql string) string { return sql }

func (postgresDialect) seed() seedSQL {
	return seedSQL{
		series: func(lo, hi int) string { return fmt.Sprintf("generate_series(%d, %d) AS t(g)", lo, hi) },
		id: func(expr string) string {
			return fmt.Sprintf("lpad(to_hex(%s),8,'0')||'-0000-4000-8000-'||lpad(to_hex(%s),12,'0')", expr, expr)
		},
		name:      func(expr string) string { return "'user'||lpad(" + expr + "::text,7,'0')" },
		session:   "convert_to('{\"v\":1,\"u\":\"'||%s||'\"}','UTF8')",
		key:       "substring(sha256(('seed-token-'||g)::bytea) from 1 for 16)",
		requestID: "decode(md5('seed-request-'||g),'hex')",
	}
}

type sqliteDialect struct{}

func (sqliteDialect) name() Dialect { return SQLite }

func (sqliteDialect) open(ctx context.Context, loc Location, config *gorm.Config) (*gorm.DB, error) {
	// The file holds password hashes and sealed secrets: create it
	// readable by its owner only, like the development secret file
	// (SQLite gives its -wal and -shm files the database file's mode).
	// An existing file keeps its mode; any other failure is SQLite's to
	// report when it opens the path.
	if f, err := os.OpenFile(loc.Path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	}
	open := func() (*gorm.DB, error) {
		d, err := sqliteDialector(loc.DSN, observerOf(ctx))
		if err != nil {
			return nil, err
		}
		return gorm.Open(classifying{d}, config)
	}
	db, err := open()
	// Switching a new file to WAL needs the file to itself: a second
	// process opening it at that moment gets SQLITE_BUSY at once, without
	// waiting on busy_timeout. Retry for a while.
	for i := 0; err != nil && isBusy(err) && i < 100; i++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		db, err = open()
	}
	return db, err
}

func (sqliteDialect) setUp(s *Store, loc Location) error {
	// One connection: SQLite has one writer anyway, and a single
	// connection turns every transaction into a serial one, which is what
	// row locks give on PostgreSQL.
	s.sqlDB.SetMaxOpenConns(1)
	s.committer = newCommitter()
	if err := s.openReaders(loc.ReadDSN); err != nil {
		return err
	}
	var err error
	s.checkpoint, err = startCheckpointer(loc.Path)
	return err
}

func (sqliteDialect) bind(q string) string { return q }

// lockRows: SQLite needs no clause: its transactions start with the
// write lock (_txlock=immediate) on the one connection.
func (sqliteDialect) lockRows(q *gorm.DB) *gorm.DB { return q }
func (sqliteDialect) forUpdate() string            { return "" }
func (sqliteDialect) namedLock() string            { return "" }
func (sqliteDialect) timeParam() string            { return "?" }

// bytewise: SQLite compares TEXT bytewise (BINARY) already.
func (sqliteDialect) bytewise(column string) string { return column }

// sqliteTypes are PostgreSQL's column types in the spelling the SQLite
// migrations always had (DATETIME is also what makes the driver read a
// column back as a time). The rest of what the migrations use, TEXT,
// INTEGER, BOOLEAN with TRUE and FALSE, CREATE INDEX, REFERENCES … ON
// DELETE CASCADE, SQLite reads as PostgreSQL does.
var sqliteTypes = strings.NewReplacer(
	"TIMESTAMPTZ", "DATETIME",
	"BYTEA", "BLOB",
	"BIGINT", "INTEGER",
)

func (sqliteDialect) migration(sql string) string { return sqliteTypes.Replace(sql) }

func (sqliteDialect) seed() seedSQL {
	return seedSQL{
		series: func(lo, hi int) string {
			return fmt.Sprintf("(WITH RECURSIVE t(g) AS (SELECT %d UNION ALL SELECT g+1 FROM t WHERE g < %d) SELECT g FROM t) AS t", lo, hi)
		},
		id: func(expr string) string {
			return fmt.Sprintf("printf('%%08x-0000-4000-8000-%%012x', %s, %s)", expr, expr)
		},
		name:      func(expr string) string { return "printf('user%07d', " + expr + ")" },
		session:   "CAST('{\"v\":1,\"u\":\"'||%s||'\"}' AS BLOB)",
		key:       "CAST(printf('%016d', g) AS BLOB)",
		requestID: "CAST(printf('%016d', g) AS BLOB)",
	}
}
