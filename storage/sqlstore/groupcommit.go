package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// Group commit (SQLite). SQLite has one writer, so tonearm's transactions
// already run one after another on one connection; what each one paid on
// its own was the commit: writing its pages to the WAL, checksummed, with a
// system call per page. When transactions are waiting, the committer runs
// them inside one database transaction instead, each in its own savepoint,
// and commits them together:
//
//   - A transaction's own failure rolls back to its savepoint and fails
//     only it; the others in the batch are untouched.
//   - CommitTx returns only after the batch is committed: a token is
//     acknowledged only once it is stored.
//   - A batch that fails to commit (or whose transaction SQLite aborted)
//     fails every transaction in it.
//
// A batch is committed as soon as nobody waits to write, or when it holds
// maxBatch transactions, so a lone request pays no delay. PostgreSQL does
// not go through here: it runs transactions in parallel on many
// connections, and its WAL flush already covers every commit waiting for
// it (one fsync for all of them).

// maxBatch bounds a batch, and with it the wait of its first transaction.
const maxBatch = 32

type committer struct {
	// writer is held by the transaction running in the open batch (a
	// one-slot semaphore, so waiting for it can stop with the context).
	writer chan struct{}
	// waiting counts BeginTx calls waiting for writer.
	waiting atomic.Int32
	// Fields below are used only by the holder of writer.
	batch *batch
	// busyTimeout is the write connection's busy_timeout (setBusyTimeout).
	busyTimeout time.Duration
}

// batch is one database transaction shared by the transactions in it.
type batch struct {
	tx      *gorm.DB
	members int
	done    chan struct{} // closed when committed or failed; err is set
	err     error
}

// member is a transaction of a batch, carried by its context.
type member struct {
	b      *batch
	closed bool
}

type memberKey struct{}

func newCommitter() *committer {
	return &committer{writer: make(chan struct{}, 1), busyTimeout: busyTimeout}
}

var errTxClosed = errors.New("sqlstore: the transaction is already committed or rolled back")

// join waits for the writer and returns the open batch (a new one when
// there is none), and ctx carrying its transaction.
func (s *Store) join(ctx context.Context) (context.Context, *member, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err // a request already gone starts nothing
	}
	c := s.committer
	start := time.Now()
	select {
	case c.writer <- struct{}{}: // free: no timer on the hot path
	default:
		if err := s.waitForWriter(ctx); err != nil {
			return nil, nil, err
		}
	}
	// The wait for the writer counts toward the busy timeout: what is
	// left of it is all this caller's statements may wait for another
	// process's lock.
	if err := s.setBusyTimeout(busyTimeout - time.Since(start)); err != nil {
		if c.batch != nil {
			s.handOver()
		} else {
			<-c.writer
		}
		return nil, nil, err
	}
	if c.batch == nil {
		// The batch outlives the request that opens it: it must not be
		// rolled back when that request's context ends.
		tx := s.db.WithContext(context.WithoutCancel(ctx)).Begin()
		if tx.Error != nil {
			<-c.writer
			return nil, nil, translate(tx.Error)
		}
		c.batch = &batch{tx: tx, done: make(chan struct{})}
	}
	m := &member{b: c.batch}
	ctx = context.WithValue(ctx, txKey{}, m.b.tx)
	return context.WithValue(ctx, memberKey{}, m), m, nil
}

// waitForWriter waits for the writer until ctx ends or the busy timeout
// passes. The wait counts toward the busy timeout: a request queued behind
// a BEGIN that waits out a lock held by another process would otherwise
// wait its turn and then the busy timeout again (14 s for a lock held
// 14 s, where docs/production.md promises 503 past 10 s).
func (s *Store) waitForWriter(ctx context.Context) error {
	c := s.committer
	t := time.NewTimer(busyTimeout)
	defer t.Stop()
	c.waiting.Add(1)
	var err error
	select {
	case c.writer <- struct{}{}:
		c.waiting.Add(-1)
		return nil
	case <-t.C:
		err = errWriteLockTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.waiting.Add(-1)
	// A holder that saw this caller waiting left the open batch to it
	// without committing: if the writer is free, carry that on (let the
	// next one in, or commit), or the batch's transactions would wait for
	// the next write to come.
	select {
	case c.writer <- struct{}{}:
		if c.batch != nil {
			s.handOver()
		} else {
			<-c.writer
		}
	default:
	}
	return err
}

// errWriteLockTimeout: the write lock was not had within the busy timeout
// (another process holds it): unavailable, as SQLITE_BUSY is.
var errWriteLockTimeout = unavailableError(errors.New("sqlstore: the write lock was not free within the busy timeout"))

// setBusyTimeout sets the write connection's busy_timeout for the holder
// of the writer, who has left of busyTimeout after waiting for the writer:
// a member queued behind a statement that waited out another process's
// lock (the batch is handed to it, BEGIN long done) would otherwise wait
// the whole busy timeout again, 14 s for a lock held 14 s where
// docs/production.md promises 503 past 10 s. After a short wait (under a
// second) the full timeout stands, and nothing is run unless the value
// changes, so the uncontended path pays no statement.
func (s *Store) setBusyTimeout(left time.Duration) error {
	if left <= 0 {
		return errWriteLockTimeout
	}
	c := s.committer
	want := busyTimeout
	if left < busyTimeout-time.Second {
		want = left
	}
	if want == c.busyTimeout {
		return nil
	}
	conn := s.db // no batch: the pool's one write connection is free
	if c.batch != nil {
		conn = c.batch.tx // the batch's transaction holds it
	}
	if err := conn.Exec(fmt.Sprintf("PRAGMA busy_timeout = %d", max(want.Milliseconds(), 1))).Error; err != nil {
		return translate(err)
	}
	c.busyTimeout = want
	return nil
}

// beginMember joins the open batch with a savepoint of its own.
func (s *Store) beginMember(ctx context.Context) (context.Context, error) {
	ctx, m, err := s.join(ctx)
	if err != nil {
		return nil, err
	}
	if err := m.b.tx.Exec("SAVEPOINT member").Error; err != nil {
		s.failBatch(err)
		return nil, translate(err)
	}
	return ctx, nil
}

// commitMember keeps the member's writes in its batch and returns once the
// batch is committed, with the batch's outcome.
func (s *Store) commitMember(m *member) error {
	if m.closed {
		return errTxClosed
	}
	m.closed = true
	b := m.b
	if err := b.tx.Exec("RELEASE SAVEPOINT member").Error; err != nil {
		// The savepoint is gone only when SQLite aborted the whole
		// transaction: the batch is lost.
		s.failBatch(err)
		return translate(err)
	}
	b.members++
	s.handOver()
	<-b.done
	return b.err
}

// rollbackMember undoes the member's writes and leaves the batch to the
// others.
func (s *Store) rollbackMember(m *member) error {
	if m.closed {
		return nil
	}
	m.closed = true
	b := m.b
	err := b.tx.Exec("ROLLBACK TO SAVEPOINT member").Error
	if err == nil {
		err = b.tx.Exec("RELEASE SAVEPOINT member").Error
	}
	if err != nil {
		s.failBatch(err)
		return translate(err)
	}
	s.handOver()
	return nil
}

// handOver lets the next transaction into the open batch, or commits it
// when nobody waits or it is full. The caller holds writer; it is released.
func (s *Store) handOver() {
	c := s.committer
	b := c.batch
	for c.waiting.Load() > 0 && b.members < maxBatch {
		<-c.writer
		if c.waiting.Load() > 0 {
			return // a waiter takes the writer and carries the batch on
		}
		// The waiter seen above gave up in the meantime, and may have
		// found the writer still held and left: unless somebody else took
		// the writer, take it back and carry the batch on.
		select {
		case c.writer <- struct{}{}:
		default:
			return
		}
		if b = c.batch; b == nil {
			<-c.writer // somebody else committed it meanwhile
			return
		}
	}
	c.batch = nil
	if b.members == 0 {
		b.err = translate(b.tx.Rollback().Error)
	} else {
		err := commit(b.tx)
		s.writes.observe(err)
		b.err = translate(err)
	}
	close(b.done)
	<-c.writer
}

// failBatch rolls the open batch back and fails every transaction in it
// with err. The caller holds writer; it is released.
func (s *Store) failBatch(err error) {
	c := s.committer
	b := c.batch
	c.batch = nil
	_ = b.tx.Rollback()
	s.writes.observe(err)
	b.err = translate(err)
	close(b.done)
	<-c.writer
}

// batched runs a write made outside a transaction as a transaction of its
// own, so that on SQLite it joins the open batch instead of paying a
// commit of its own. Writes that are already in a transaction, and every
// write on PostgreSQL, run as they are.
func (s *Store) batched(ctx context.Context, write func(context.Context) error) error {
	if s.committer == nil || ctx.Value(txKey{}) != nil {
		return write(ctx)
	}
	mctx, err := s.beginMember(ctx)
	if err != nil {
		return err
	}
	m := mctx.Value(memberKey{}).(*member)
	if err := write(mctx); err != nil {
		_ = s.rollbackMember(m)
		return err
	}
	return s.commitMember(m)
}

// batchedStatement is batched for a write of one statement, which needs
// no savepoint: SQLite undoes a failed statement's changes by itself.
func (s *Store) batchedStatement(ctx context.Context, write func(context.Context) error) error {
	if s.committer == nil || ctx.Value(txKey{}) != nil {
		return write(ctx)
	}
	mctx, m, err := s.join(ctx)
	if err != nil {
		return err
	}
	m.closed = true
	if err := write(mctx); err != nil {
		// The statement's changes are undone and the batch goes on. (An
		// error after which SQLite abandons the whole transaction — I/O,
		// a full disk — makes the batch's COMMIT fail, failing everyone
		// in it.)
		s.writes.observe(err)
		s.handOver()
		return err
	}
	m.b.members++
	b := m.b
	s.handOver()
	<-b.done
	return b.err
}

// transaction runs fn in a transaction: a savepoint of the one on ctx, a
// member of the open batch (SQLite), or a transaction of its own.
func (s *Store) transaction(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.batched(ctx, func(ctx context.Context) error { return s.conn(ctx).Transaction(fn) })
}

// commit commits a batch as a statement of its transaction. When COMMIT
// fails (a deferred constraint, SQLITE_BUSY), SQLite keeps the
// transaction open, and database/sql would hand the connection, still in
// it, to the next caller, whose writes would then be lost with it: it is
// rolled back first. After a successful COMMIT the Rollback only returns
// the connection (SQLite answers that no transaction is active).
func commit(tx *gorm.DB) error {
	if err := tx.Exec("COMMIT").Error; err != nil {
		_ = tx.Rollback()
		return err
	}
	_ = tx.Rollback()
	return nil
}
