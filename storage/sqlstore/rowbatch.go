package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"sync"
)

// rowBatcher combines the single-row INSERTs that concurrent requests make
// outside a transaction (on PostgreSQL: every client-credentials token, the
// rows an authorization writes) into multi-row INSERTs. Each statement on
// PostgreSQL is a round trip and a commit of its own — a tenth of a
// millisecond of the server's CPU for one token row; one INSERT of 16 rows
// costs little more than one of a single row.
//
// The guarantees are a lone INSERT's: insert returns only once its row is
// committed (a multi-row INSERT outside a transaction commits all its rows
// or none), and each row gets its own answer — when a combined INSERT
// fails (a duplicate key in one row, say), each of its rows is inserted
// again on its own. A request that arrives while fewer than
// rowInsertsInFlight INSERTs run sends its own at once, so a lone request
// waits for nobody; the others queue and go together in the next one.
// SQLite needs none of this: its group commit already shares one
// transaction among concurrent writes.
type rowBatcher struct {
	db *sql.DB
	// stmts[n] inserts n rows (stmts[1] is the single-row statement).
	stmts [maxRowsPerInsert + 1]string

	mu      sync.Mutex
	queue   []*pendingRow
	running int
	// combined and retried count multi-row INSERTs and those that failed
	// (for the tests).
	combined, retried int
}

const (
	// maxRowsPerInsert bounds one INSERT (and the wait of its last row).
	maxRowsPerInsert = 32
	// rowInsertsInFlight is how many INSERTs of one table run at once.
	rowInsertsInFlight = 4
)

type pendingRow struct {
	args []any
	err  error
	done chan struct{}
}

// newRowBatcher takes a single-row INSERT with ? placeholders ("INSERT …
// VALUES (?, …, ?)") and binds it, and its multi-row forms, with bind.
func newRowBatcher(db *sql.DB, insert string, bind func(string) string) *rowBatcher {
	i := strings.LastIndex(insert, "VALUES")
	head, row := insert[:i+len("VALUES")], strings.TrimSpace(insert[i+len("VALUES"):])
	b := &rowBatcher{db: db}
	for n := 1; n <= maxRowsPerInsert; n++ {
		b.stmts[n] = bind(head + " " + strings.TrimSuffix(strings.Repeat(row+", ", n), ", "))
	}
	return b
}

// insert inserts one row (args in the statement's column order) and
// returns once it is committed, or with its own error.
func (b *rowBatcher) insert(ctx context.Context, args ...any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := &pendingRow{args: args, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, p)
	if b.running < rowInsertsInFlight {
		b.running++
		rows := b.take()
		b.mu.Unlock()
		// The INSERT carries other requests' rows: it is not cut short when
		// this request ends.
		b.run(context.WithoutCancel(ctx), rows)
	} else {
		b.mu.Unlock()
	}
	<-p.done
	return p.err
}

// take removes the next INSERT's rows from the queue (b.mu held).
func (b *rowBatcher) take() []*pendingRow {
	n := min(len(b.queue), maxRowsPerInsert)
	rows := b.queue[:n:n]
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil
	}
	return rows
}

// run inserts rows, answers each, and then sends what queued meanwhile, in
// a goroutine of its own so that the request that ran this INSERT answers
// without waiting for the next.
func (b *rowBatcher) run(ctx context.Context, rows []*pendingRow) {
	b.insertRows(ctx, rows)
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.running--
		b.mu.Unlock()
		return
	}
	next := b.take()
	b.mu.Unlock()
	go b.run(ctx, next)
}

func (b *rowBatcher) insertRows(ctx context.Context, rows []*pendingRow) {
	defer func() {
		for _, r := range rows {
			close(r.done)
		}
	}()
	if len(rows) > 1 {
		args := make([]any, 0, len(rows)*len(rows[0].args))
		for _, r := range rows {
			args = append(args, r.args...)
		}
		_, err := b.db.ExecContext(ctx, b.stmts[len(rows)], args...)
		b.mu.Lock()
		b.combined++
		if err != nil {
			b.retried++
		}
		b.mu.Unlock()
		if err == nil {
			return
		}
	}
	for _, r := range rows {
		_, err := b.db.ExecContext(ctx, b.stmts[1], r.args...)
		r.err = translate(err)
	}
}

// counts reports how many multi-row INSERTs ran and how many failed.
func (b *rowBatcher) counts() (combined, retried int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.combined, b.retried
}
