package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tonearm-idp/tonearm/storage"
)

// writeHealth remembers whether SQLite's last commit failed because the
// file cannot be written (disk full, read-only, an I/O error) with no
// commit succeeding since. A ping only reads, and SQLite reads a full disk
// happily: without this, /readyz stayed 200 while every write answered 503
// (docs/production.md, "When the database goes away").
type writeHealth struct {
	mu     sync.Mutex
	reason string // why the last write failed; "" while writes work
}

// observe records the outcome of a commit (err nil: it succeeded) or of a
// failed write statement. Errors that do not say the file cannot be
// written (a constraint, a cancelled request, the busy timeout) change
// nothing.
func (h *writeHealth) observe(err error) {
	reason := ""
	if err != nil {
		if reason = notWritableReason(err); reason == "" {
			return
		}
	}
	h.mu.Lock()
	h.reason = reason
	h.mu.Unlock()
}

func (h *writeHealth) failing() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reason
}

// notWritableReason words a SQLite error that says the file cannot be
// written, or returns "" for any other error.
func notWritableReason(err error) string {
	var sqliteErr interface{ Code() int }
	if !errors.As(err, &sqliteErr) {
		return ""
	}
	switch sqliteErr.Code() & 0xff {
	case sqliteFull:
		return "disk full"
	case sqliteReadonly:
		return "read-only"
	case sqliteIOErr:
		return "I/O error"
	case sqliteCantOpen:
		return "cannot open the file"
	}
	return ""
}

// checkWritable is Ping's second half on SQLite: while the last write
// failed for want of room or permission, it tries one cheap write (the
// database header's user_version rewritten with its own value: one page to
// the log, nothing else touched) through the group commit, whose success
// clears the mark. Only a replica whose writes failed pays it.
func (s *Store) checkWritable(ctx context.Context) error {
	reason := s.writes.failing()
	if reason == "" {
		return nil
	}
	var v int64
	err := s.readDB.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	if err == nil {
		err = s.batchedExec(ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
	}
	if err != nil {
		if r := notWritableReason(err); r != "" {
			reason = r
		}
		return &storage.NotWritableError{Reason: reason}
	}
	return nil
}
