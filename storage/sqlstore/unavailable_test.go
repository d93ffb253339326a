package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
)

// sqliteCode stands for the SQLite driver's error, which has a Code.
type sqliteCode int

func (c sqliteCode) Error() string { return fmt.Sprintf("sqlite %d", int(c)) }
func (c sqliteCode) Code() int     { return int(c) }

// The database's own errors that mean "not now" are ErrUnavailable; the
// statement's own errors are not.
func TestUnavailableClassifiesDriverErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "57P01"}, true}, // admin_shutdown
		{&pgconn.PgError{Code: "57P03"}, true}, // cannot_connect_now
		{&pgconn.PgError{Code: "08006"}, true}, // connection_failure
		{&pgconn.PgError{Code: "53100"}, true}, // disk_full
		{&pgconn.PgError{Code: "25006"}, true}, // read_only_sql_transaction
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "40001"}, false},
		{fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), true},
		{fmt.Errorf("failed to receive message: %w", syscall.ECONNRESET), true},
		{sqliteCode(13), true},    // SQLITE_FULL
		{sqliteCode(8), true},     // SQLITE_READONLY
		{sqliteCode(778), true},   // SQLITE_IOERR_WRITE
		{sqliteCode(5), true},     // SQLITE_BUSY after busy_timeout
		{sqliteCode(2067), false}, // SQLITE_CONSTRAINT_UNIQUE
		{errors.New("some other failure"), false},
	} {
		err := translate(c.err)
		if got := errors.Is(err, storage.ErrUnavailable); got != c.want {
			t.Errorf("%v: unavailable = %v, want %v", c.err, got, c.want)
		}
		if c.want && !errors.Is(err, c.err) {
			t.Errorf("%v: the driver's error is lost", c.err)
		}
	}
}

// A store whose PostgreSQL stops reports ErrUnavailable on reads, writes
// and transactions, and works again once it is back.
func TestUnavailableWhenPostgresStops(t *testing.T) {
	cluster := pgtest.Dedicated(t)
	ctx := context.Background()
	s, err := Open(ctx, cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(ctx, "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("before: %v", err)
	}
	cluster.Stop()
	if _, err := s.GetUser(ctx, "nobody"); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("read while stopped: %v, want ErrUnavailable", err)
	}
	if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "u1", Role: storage.RoleUser}); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("write while stopped: %v, want ErrUnavailable", err)
	}
	if _, err := s.BeginTx(ctx); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("BeginTx while stopped: %v, want ErrUnavailable", err)
	}
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(ctx, "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after: %v, want ErrNotFound", err)
	}
}
