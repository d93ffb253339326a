package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// Observer sees every statement a Store sends to its database, as sent
// (placeholders, never the values: these carry password hashes and sealed
// tokens), and BEGIN, COMMIT and ROLLBACK for transactions: one call per
// round trip the statement costs. Tests count statements per operation
// with it (issue 36); production never sets one.
type Observer func(statement string)

type observerKey struct{}

// WithObserver returns a context under which Open gives the store's
// connections to observe. Only Open reads it.
func WithObserver(ctx context.Context, observe Observer) context.Context {
	return context.WithValue(ctx, observerKey{}, observe)
}

func observerOf(ctx context.Context) Observer {
	o, _ := ctx.Value(observerKey{}).(Observer)
	return o
}

// postgresDialector is the GORM dialector of dsn, its connections observed
// when observe is set.
func postgresDialector(dsn string, observe Observer) (gorm.Dialector, error) {
	if observe == nil {
		return postgres.Open(dsn), nil
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	pool := sql.OpenDB(observed{stdlib.GetConnector(*cfg), observe})
	return postgres.New(postgres.Config{DSN: dsn, Conn: pool}), nil
}

// sqlitePool opens SQLite's pool on dsn, observed when observe is set.
func sqlitePool(dsn string, observe Observer) (*sql.DB, error) {
	db, err := sql.Open(sqlite.DriverName, dsn)
	if err != nil || observe == nil {
		return db, err
	}
	drv := db.Driver()
	if err := db.Close(); err != nil {
		return nil, err
	}
	return sql.OpenDB(observed{dsnConnector{dsn, drv}, observe}), nil
}

// sqliteDialector is the GORM dialector of dsn, observed when observe is set.
func sqliteDialector(dsn string, observe Observer) (gorm.Dialector, error) {
	if observe == nil {
		return sqlite.Open(dsn), nil
	}
	pool, err := sqlitePool(dsn, observe)
	if err != nil {
		return nil, err
	}
	return sqlite.Dialector{DSN: dsn, Conn: pool}, nil
}

type dsnConnector struct {
	dsn string
	drv driver.Driver
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

// observed wraps a driver's connector: each statement is reported before
// it is sent. Everything else passes through.
type observed struct {
	driver.Connector
	observe Observer
}

func (o observed) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := o.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &observedConn{c, o.observe}, nil
}

type observedConn struct {
	driver.Conn
	observe Observer
}

func (c *observedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.observe("BEGIN")
	var tx driver.Tx
	var err error
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		tx, err = b.BeginTx(ctx, opts)
	} else {
		//lint:ignore SA1019 the driver has no BeginTx
		tx, err = c.Conn.Begin()
	}
	if err != nil {
		return nil, err
	}
	return observedTx{tx, c.observe}, nil
}

func (c *observedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.observe(query)
	return e.ExecContext(ctx, query, args)
}

func (c *observedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.observe(query)
	return q.QueryContext(ctx, query, args)
}

func (c *observedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var st driver.Stmt
	var err error
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, query)
	} else {
		st, err = c.Conn.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return observedStmt{st, query, c.observe}, nil
}

func (c *observedConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *observedConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *observedConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *observedConn) CheckNamedValue(nv *driver.NamedValue) error {
	if n, ok := c.Conn.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type observedTx struct {
	driver.Tx
	observe Observer
}

func (t observedTx) Commit() error {
	t.observe("COMMIT")
	return t.Tx.Commit()
}

func (t observedTx) Rollback() error {
	t.observe("ROLLBACK")
	return t.Tx.Rollback()
}

// observedStmt reports a prepared statement each time it runs (a round
// trip each).
type observedStmt struct {
	driver.Stmt
	query   string
	observe Observer
}

func (s observedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.observe(s.query)
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	return nil, driver.ErrSkip
}

func (s observedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.observe(s.query)
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	return nil, driver.ErrSkip
}

func (s observedStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if n, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}
