// Package sqlstore implements storage.Storage with GORM on PostgreSQL and on
// the embedded, pure-Go SQLite. Every dialect difference lives in this
// package; callers see one behaviour, held by storage/storagetest.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/tonearm-idp/tonearm/storage"
)

// Dialect names the database behind a Store.
type Dialect string

// The supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// Location is a parsed TONEARM_DATABASE_URL.
type Location struct {
	Dialect Dialect
	// DSN is what the driver receives: the PostgreSQL URL as given, or the
	// SQLite file path with tonearm's connection options.
	DSN string
	// Path is the SQLite file path (empty for PostgreSQL).
	Path string
	// ReadDSN opens SQLite's read-only connections (empty for PostgreSQL).
	ReadDSN string
}

// ParseURL reads a database URL: postgres://… or postgresql://… selects
// PostgreSQL; sqlite://relative/path.db or sqlite:///absolute/path.db the
// embedded SQLite. The error never repeats the URL, which may hold a password.
func ParseURL(raw string) (Location, error) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return Location{}, errors.New("not a valid postgres:// URL")
		}
		return Location{Dialect: Postgres, DSN: raw}, nil
	case strings.HasPrefix(raw, "sqlite://"):
		path := strings.TrimPrefix(raw, "sqlite://")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			return Location{}, errors.New("sqlite:// URLs take no options")
		}
		if path == "" {
			return Location{}, errors.New("sqlite:// URL has no file path")
		}
		// _txlock=immediate takes the write lock at BEGIN, so transactions
		// from two processes queue on busy_timeout instead of failing
		// half-way with SQLITE_BUSY when a reader upgrades to a writer.
		dsn := "file:" + path + "?_txlock=immediate" +
			"&_pragma=busy_timeout(" + strconv.FormatInt(busyTimeout.Milliseconds(), 10) + ")&_pragma=journal_mode(WAL)" +
			"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)" +
			"&_pragma=wal_autocheckpoint(" + strconv.Itoa(writerCheckpointPages) + ")&_time_format=sqlite"
		// Readers: WAL lets them read the last committed state while the
		// one writer works; query_only makes a write sent there an error.
		readDSN := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=query_only(1)&_time_format=sqlite"
		return Location{Dialect: SQLite, DSN: dsn, Path: path, ReadDSN: readDSN}, nil
	default:
		return Location{}, errors.New("unsupported scheme: use postgres:// or sqlite://")
	}
}

// busyTimeout is how long a SQLite write waits for another process's
// write lock (busy_timeout) before it answers ErrUnavailable: the request
// is answered 503 past it (docs/production.md). The wait for the writer
// inside this process counts toward it too (join).
const busyTimeout = 10 * time.Second

// Store is a storage.Storage on a SQL database.
type Store struct {
	db    *gorm.DB
	sqlDB *sql.DB
	// readDB serves reads made outside a transaction: SQLite's read-only
	// connections, or the pool itself on PostgreSQL.
	readDB  *sql.DB
	dialect dialect
	// observe sees every statement (tests only; see Observer).
	observe Observer
	// committer batches SQLite's transactions (nil on PostgreSQL).
	committer *committer
	// writes remembers a SQLite file that could not be written (Ping).
	writes writeHealth
	// checkpoint copies SQLite's log into the database file off the
	// writer's path (nil on PostgreSQL; see checkpoint.go).
	checkpoint *checkpointer
	// accessRows and requestRows combine the token INSERTs concurrent
	// requests make outside a transaction; accessLookups combines
	// PostgreSQL's access-token lookups (nil on SQLite). See combine.go.
	accessRows, requestRows *combiner[[]any, struct{}]
	accessLookups           *combiner[[]byte, accessTokenModel]
	// Statements of the hot paths, in the dialect's placeholders (see
	// pool).
	insertAccessToken, selectAccessToken                                             string
	insertOAuthRequest, selectOAuthRequest                                           string
	deactivateOAuthRequest, rotateOAuthRequest, deleteOAuthRequest, openOAuthRequest string
	deleteAccessTokenStmt, deleteAccessTokensOfRequestStmt                           string
}

var _ storage.Storage = (*Store)(nil)

// Open connects to the database at rawURL and checks that it answers. It does
// not migrate: call Migrate (tonearm serve and tonearm migrate do).
func Open(ctx context.Context, rawURL string) (*Store, error) {
	loc, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	d := dialectOf(loc.Dialect)
	gormConfig := &gorm.Config{
		TranslateError: true,
		// SQL statements carry password hashes and sealed tokens as
		// parameters: GORM must never log them.
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
	db, err := d.open(ctx, loc, gormConfig)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", redactErr(err))
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	s := &Store{db: db, sqlDB: sqlDB, readDB: sqlDB, dialect: d, observe: observerOf(ctx)}
	if err := d.setUp(s, loc); err != nil {
		_ = s.Close()
		return nil, err
	}
	s.insertAccessToken, s.selectAccessToken = s.bind(insertAccessTokenSQL), s.bind(selectAccessTokenSQL)
	s.insertOAuthRequest, s.selectOAuthRequest = s.bind(insertOAuthRequestSQL), s.bind(selectOAuthRequestSQL)
	s.deactivateOAuthRequest, s.rotateOAuthRequest = s.bind(deactivateOAuthRequestSQL), s.bind(rotateOAuthRequestSQL)
	s.deleteOAuthRequest, s.openOAuthRequest = s.bind(deleteOAuthRequestSQL), s.bind(openOAuthRequestSQL)
	s.deleteAccessTokenStmt, s.deleteAccessTokensOfRequestStmt = s.bind(deleteAccessTokenSQL), s.bind(deleteAccessTokensOfRequestSQL)
	s.accessRows = newInsertCombiner(s.batchedExec, insertAccessTokenSQL, s.bind)
	s.requestRows = newInsertCombiner(s.batchedExec, insertOAuthRequestSQL, s.bind)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Ping(pingCtx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("connect to database: %w", redactErr(err))
	}
	return s, nil
}

// Dialect reports which database the store talks to.
func (s *Store) Dialect() Dialect { return s.dialect.name() }

// Ping implements storage.Storage.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return err
	}
	if s.committer != nil {
		return s.checkWritable(ctx)
	}
	return nil
}

// SQLDB returns the connection pool (for its statistics).
func (s *Store) SQLDB() (*sql.DB, error) { return s.db.DB() }

// Close implements storage.Storage.
func (s *Store) Close() error {
	var err error
	if s.checkpoint != nil {
		err = s.checkpoint.close()
	}
	err = errors.Join(err, s.sqlDB.Close())
	if s.readDB != s.sqlDB {
		err = errors.Join(err, s.readDB.Close())
	}
	return err
}

// readers is how many read-only SQLite connections serve reads.
const readers = 4

// openReaders opens SQLite's read-only connections and routes every read
// made outside a transaction to them. SQLite has one writer: on its one
// connection, a read had to wait for every transaction before it, while in
// WAL mode a reader sees the last committed state without waiting. Reads
// inside a transaction stay on it (they must see its own writes); a
// statement that is not a SELECT never goes to a reader.
func (s *Store) openReaders(dsn string) error {
	rdb, err := sqlitePool(dsn, s.observe)
	if err != nil {
		return fmt.Errorf("open database readers: %w", err)
	}
	rdb.SetMaxOpenConns(readers)
	rdb.SetMaxIdleConns(readers)
	s.readDB = rdb
	route := func(db *gorm.DB) {
		if db.Statement.ConnPool != gorm.ConnPool(s.sqlDB) {
			return // a transaction, or a pool chosen by the caller
		}
		if q := strings.TrimSpace(db.Statement.SQL.String()); q != "" && !isSelect(q) {
			return
		}
		db.Statement.ConnPool = rdb
	}
	if err := s.db.Callback().Query().Before("gorm:query").Register("tonearm:readers", route); err != nil {
		return err
	}
	return s.db.Callback().Row().Before("gorm:row").Register("tonearm:readers", route)
}

func isSelect(q string) bool {
	return len(q) > 6 && strings.EqualFold(q[:6], "SELECT") && strings.ContainsRune(" \t\n", rune(q[6]))
}

func isBusy(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}

// redactErr keeps a connection error's meaning but drops text that might echo
// credentials back.
func redactErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Errorf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	}
	return err
}

// translate maps driver errors to storage sentinels.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gorm.ErrRecordNotFound) || errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return storage.ErrAlreadyExists
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return storage.ErrAlreadyExists
	}
	// SQLite's, from statements run without GORM: SQLITE_CONSTRAINT_UNIQUE,
	// SQLITE_CONSTRAINT_PRIMARYKEY.
	var sqliteErr interface{ Code() int }
	if errors.As(err, &sqliteErr) && (sqliteErr.Code() == 2067 || sqliteErr.Code() == 1555) {
		return storage.ErrAlreadyExists
	}
	return unavailable(err)
}

// utc normalises a time the way both databases can round-trip it.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

type txKey struct{}

// conn returns the transaction carried by ctx (see BeginTx), or the pool.
// pool is the connection pool, or the transaction open on ctx, for a plain
// statement that needs none of GORM's machinery: the statements run on
// every token issued or checked, where GORM's per-call statement clone and
// SQL building cost more than the rest of the Go side of the query.
func (s *Store) pool(ctx context.Context) gorm.ConnPool {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return tx.Statement.ConnPool
	}
	return s.sqlDB
}

// batchedExec runs a plain write statement outside a transaction: on its
// own on PostgreSQL, in the open batch on SQLite (returning once the batch
// is committed).
func (s *Store) batchedExec(ctx context.Context, query string, args ...any) error {
	return s.batchedStatement(ctx, func(ctx context.Context) error {
		_, err := s.exec(ctx, query, args...)
		return err
	})
}

// exec runs a plain write statement (on the transaction carried by ctx, or
// the pool) and reports how many rows it changed.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.pool(ctx).ExecContext(stmtContext(ctx), query, args...)
	if err != nil {
		return 0, translate(err)
	}
	n, err := res.RowsAffected()
	return n, translate(err)
}

// readPool is pool for a SELECT: outside a transaction it is readDB.
func (s *Store) readPool(ctx context.Context) gorm.ConnPool {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return tx.Statement.ConnPool
	}
	return s.readDB
}

// bind writes a statement's ? placeholders in the dialect's spelling.
func (s *Store) bind(q string) string { return s.dialect.bind(q) }

func (s *Store) conn(ctx context.Context) *gorm.DB {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return tx.WithContext(stmtContext(ctx))
	}
	return s.db.WithContext(ctx)
}

// stmtContext is the context of a statement: a statement of a batched
// transaction is not interrupted when its request ends, since SQLite may
// answer an interrupt by rolling back the whole transaction, which holds
// the other requests of the batch.
func stmtContext(ctx context.Context) context.Context {
	if _, ok := ctx.Value(memberKey{}).(*member); ok {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// BeginTx implements storage.Storage: every store call made with the
// returned context runs in one transaction until CommitTx or RollbackTx.
func (s *Store) BeginTx(ctx context.Context) (context.Context, error) {
	if _, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return nil, storage.ErrInTransaction
	}
	if s.committer != nil {
		return s.beginMember(ctx)
	}
	tx := s.db.WithContext(ctx).Begin()
	if tx.Error != nil {
		return nil, translate(tx.Error)
	}
	return context.WithValue(ctx, txKey{}, tx), nil
}

// CommitTx implements storage.Storage.
func (s *Store) CommitTx(ctx context.Context) error {
	if m, ok := ctx.Value(memberKey{}).(*member); ok {
		return s.commitMember(m)
	}
	tx, ok := ctx.Value(txKey{}).(*gorm.DB)
	if !ok {
		return errors.New("sqlstore: no transaction on this context")
	}
	return translate(tx.Commit().Error)
}

// RollbackTx implements storage.Storage.
func (s *Store) RollbackTx(ctx context.Context) error {
	if m, ok := ctx.Value(memberKey{}).(*member); ok {
		return s.rollbackMember(m)
	}
	tx, ok := ctx.Value(txKey{}).(*gorm.DB)
	if !ok {
		return errors.New("sqlstore: no transaction on this context")
	}
	err := tx.Rollback().Error
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return translate(err)
}
