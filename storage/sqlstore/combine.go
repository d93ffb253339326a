package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

// On PostgreSQL every statement is a round trip and, outside a
// transaction, a commit of its own: a tenth of a millisecond of the
// server's CPU for one token row, four hundredths for one token looked up,
// most of it the protocol's and not the work's. The statements concurrent
// requests make most — token INSERTs outside a transaction (every
// client-credentials token), access-token lookups (every introspection and
// bearer check) — are therefore combined: one INSERT of many rows, one
// SELECT of many keys. On SQLite, whose group commit already shares one
// transaction among concurrent writes and whose reads are in-process, only
// the INSERTs are combined (one statement for SQLite to parse instead of
// many; the INSERT goes into the open batch, see groupcommit.go).
//
// The guarantees are a lone statement's. An INSERT returns only once its
// row is committed (a multi-row INSERT commits all its rows or none), and
// each row gets its own answer: when a combined INSERT
// fails (a duplicate key in one row, say), each of its rows is inserted
// again on its own. A lookup's SELECT starts after the lookup was asked
// for, so it sees every change committed before. A request arriving while
// fewer than combinedInFlight statements of its kind run sends its own at
// once, so a lone request waits for nobody; the others queue and go
// together in the next one.

// combiner runs calls with In as their input, many at once, through run.
type combiner[In, Out any] struct {
	// run answers each call (sets out or err); it must not keep calls.
	run func(ctx context.Context, calls []*call[In, Out])

	mu      sync.Mutex
	queue   []*call[In, Out]
	running int
	// combined counts runs of more than one call, failed those of them
	// whose statement failed (for the tests).
	combined, failed int
}

type call[In, Out any] struct {
	in   In
	out  Out
	err  error
	done chan struct{}
}

const (
	// maxCombined bounds one statement (and the wait of its last call).
	maxCombined = 32
	// combinedInFlight is how many statements of one kind run at once.
	combinedInFlight = 4
	// combinedTimeout bounds a combined statement, which no single
	// request's end may cut short.
	combinedTimeout = 30 * time.Second
)

// do runs in with others' calls and returns its own answer.
func (c *combiner[In, Out]) do(ctx context.Context, in In) (Out, error) {
	if err := ctx.Err(); err != nil {
		var zero Out
		return zero, err
	}
	k := &call[In, Out]{in: in, done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, k)
	if c.running < combinedInFlight {
		c.running++
		calls := c.take()
		c.mu.Unlock()
		// The statement carries other requests' calls: it is not cut
		// short when this request ends.
		c.runFrom(context.WithoutCancel(ctx), calls)
	} else {
		c.mu.Unlock()
	}
	<-k.done
	return k.out, k.err
}

// take removes the next statement's calls from the queue (c.mu held).
func (c *combiner[In, Out]) take() []*call[In, Out] {
	n := min(len(c.queue), maxCombined)
	calls := c.queue[:n:n]
	c.queue = c.queue[n:]
	if len(c.queue) == 0 {
		c.queue = nil
	}
	return calls
}

// runFrom runs calls, answers them, and then runs what queued meanwhile, in
// a goroutine of its own so that the request that ran this statement
// answers without waiting for the next.
func (c *combiner[In, Out]) runFrom(ctx context.Context, calls []*call[In, Out]) {
	c.runCalls(ctx, calls)
	for _, k := range calls {
		close(k.done)
	}
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.running--
		c.mu.Unlock()
		return
	}
	next := c.take()
	c.mu.Unlock()
	go c.runFrom(ctx, next)
}

// runCalls runs one statement for calls, within combinedTimeout. A panic
// in it fails those calls (the requests answer 500) instead of leaving
// them, and every call queued after them, waiting forever.
func (c *combiner[In, Out]) runCalls(ctx context.Context, calls []*call[In, Out]) {
	ctx, cancel := context.WithTimeout(ctx, combinedTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			for _, k := range calls {
				var zero Out
				k.out, k.err = zero, fmt.Errorf("sqlstore: combined statement failed: %v", p)
			}
		}
	}()
	c.run(ctx, calls)
}

// note records a run of n calls whose statement failed or not.
func (c *combiner[In, Out]) note(n int, err error) {
	if n < 2 {
		return
	}
	c.mu.Lock()
	c.combined++
	if err != nil {
		c.failed++
	}
	c.mu.Unlock()
}

// counts reports how many statements combined calls and how many of them
// failed.
func (c *combiner[In, Out]) counts() (combined, failed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.combined, c.failed
}

// repeated returns a statement's "(?, …, ?)" part n times, comma-separated.
func repeated(part string, n int) string {
	return strings.TrimSuffix(strings.Repeat(part+", ", n), ", ")
}

// newInsertCombiner combines a single-row INSERT ("INSERT … VALUES (?, …,
// ?)", ? placeholders) into multi-row ones, bound with bind. A call's
// input is its row's values in the statement's column order.
func newInsertCombiner(exec func(ctx context.Context, query string, args ...any) error, insert string, bind func(string) string) *combiner[[]any, struct{}] {
	i := strings.LastIndex(insert, "VALUES")
	head, row := insert[:i+len("VALUES")], strings.TrimSpace(insert[i+len("VALUES"):])
	var stmts [maxCombined + 1]string
	for n := 1; n <= maxCombined; n++ {
		stmts[n] = bind(head + " " + repeated(row, n))
	}
	c := &combiner[[]any, struct{}]{}
	c.run = func(ctx context.Context, calls []*call[[]any, struct{}]) {
		if len(calls) > 1 {
			args := make([]any, 0, len(calls)*len(calls[0].in))
			for _, k := range calls {
				args = append(args, k.in...)
			}
			err := exec(ctx, stmts[len(calls)], args...)
			c.note(len(calls), err)
			if err == nil {
				return
			}
		}
		for _, k := range calls {
			k.err = exec(ctx, stmts[1], k.in...)
		}
	}
	return c
}

// newAccessTokenLookups combines access-token lookups by key into SELECTs
// of many keys. A call's input is the key; a key not found answers
// storage.ErrNotFound.
func newAccessTokenLookups(db *sql.DB, bind func(string) string) *combiner[[]byte, accessTokenModel] {
	var stmts [maxCombined + 1]string
	for n := 1; n <= maxCombined; n++ {
		stmts[n] = bind(selectAccessTokensSQL + "(" + repeated("?", n) + ")")
	}
	c := &combiner[[]byte, accessTokenModel]{}
	c.run = func(ctx context.Context, calls []*call[[]byte, accessTokenModel]) {
		args := make([]any, len(calls))
		for i, k := range calls {
			args[i] = blob(k.in)
			k.err = storage.ErrNotFound
		}
		err := func() error {
			rows, err := db.QueryContext(ctx, stmts[len(calls)], args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var m accessTokenModel
				if err := rows.Scan(&m.Signature, &m.RequestID, &m.RequestedAt, &m.ExpiresAt, &m.ClientID, &m.Subject, &m.SID,
					&m.GrantedScopes, &m.GrantedAudience, &m.Session); err != nil {
					return err
				}
				for _, k := range calls {
					if bytes.Equal(k.in, m.Signature) {
						k.out, k.err = m, nil
					}
				}
			}
			return rows.Err()
		}()
		c.note(len(calls), err)
		if err != nil {
			for _, k := range calls {
				k.out, k.err = accessTokenModel{}, translate(err)
			}
		}
	}
	return c
}
