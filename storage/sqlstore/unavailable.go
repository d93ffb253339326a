package sqlstore

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/tonearm-idp/tonearm/storage"
)

// unavailableError marks a driver error that means "the database cannot
// serve this now" (storage.ErrUnavailable, and so its fault kind) while
// keeping the driver's error for the log.
func unavailableError(err error) error { return fmt.Errorf("%w: %w", storage.ErrUnavailable, err) }

// unavailable wraps err as storage.ErrUnavailable when it says the
// database is unreachable, going away, read-only or out of room, and
// returns it unchanged otherwise. Every error of both databases passes
// here (translate, and the dialector's Translate for GORM's own calls), so
// callers test one sentinel instead of two drivers' error types.
func unavailable(err error) error {
	if err == nil || errors.Is(err, storage.ErrUnavailable) || !isUnavailable(err) {
		return err
	}
	return unavailableError(err)
}

func isUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return unavailableSQLState(pgErr.Code)
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true // no connection could be made at all
	}
	var sqliteErr interface{ Code() int }
	if errors.As(err, &sqliteErr) {
		return unavailableSQLiteCode(sqliteErr.Code())
	}
	// A connection lost mid-statement (PostgreSQL stopped or restarted, a
	// network cut): pgx reports the transport's error.
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.As(err, &netErr)
}

// unavailableSQLState: PostgreSQL's SQLSTATEs (Appendix A) that say the
// server, not the statement, is the problem: class 08 connection
// exception, class 53 insufficient resources (disk full, out of memory,
// too many connections), 57P01-57P03 admin/crash shutdown and "cannot
// connect now" (starting up, shutting down, in recovery), 25006 a write
// sent to a read-only server (a standby during a fail-over).
func unavailableSQLState(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"):
		return true
	case code == "57P01", code == "57P02", code == "57P03", code == "25006":
		return true
	}
	return false
}

// SQLite's primary result codes (https://sqlite.org/rescode.html; the low
// byte of an extended code) that say the file, not the statement, is the
// problem.
const (
	sqliteBusy     = 5  // still locked after busy_timeout
	sqliteLocked   = 6  // a table lock held by another connection
	sqliteReadonly = 8  // the file or its directory became read-only
	sqliteIOErr    = 10 // a read or write failed (disk gone, I/O error)
	sqliteFull     = 13 // disk full, or max_page_count reached
	sqliteCantOpen = 14 // the file or its journal cannot be opened
)

func unavailableSQLiteCode(code int) bool {
	switch code & 0xff {
	case sqliteBusy, sqliteLocked, sqliteReadonly, sqliteIOErr, sqliteFull, sqliteCantOpen:
		return true
	}
	return false
}

// classifying is the GORM dialector with one more step in its error
// translation: unavailable. GORM passes every error of a statement, BEGIN
// and COMMIT through Translate (gorm.Config.TranslateError), so errors
// that never meet translate (a db.Transaction's own) are marked too.
type classifying struct {
	gorm.Dialector
}

// Translate implements gorm.ErrorTranslator.
func (d classifying) Translate(err error) error {
	if t, ok := d.Dialector.(gorm.ErrorTranslator); ok {
		err = t.Translate(err)
	}
	return unavailable(err)
}

// Apply keeps the dialector's own configuration (PostgreSQL's 63-byte
// identifier limit), which embedding the interface would hide.
func (d classifying) Apply(c *gorm.Config) error {
	if a, ok := d.Dialector.(interface{ Apply(*gorm.Config) error }); ok {
		return a.Apply(c)
	}
	return nil
}

// SavePoint and RollbackTo keep the dialector's savepoints (nested
// transactions), for the same reason.
func (d classifying) SavePoint(tx *gorm.DB, name string) error {
	return d.Dialector.(gorm.SavePointerDialectorInterface).SavePoint(tx, name)
}

// RollbackTo implements gorm.SavePointerDialectorInterface.
func (d classifying) RollbackTo(tx *gorm.DB, name string) error {
	return d.Dialector.(gorm.SavePointerDialectorInterface).RollbackTo(tx, name)
}
