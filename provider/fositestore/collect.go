package fositestore

import (
	"context"
	"errors"

	"github.com/tonearm-idp/tonearm/storage"
)

// A code's rows (the code, its PKCE challenge, its OpenID session) are
// written by three fosite handlers one after the other. Written as they
// come they cost a transaction: BEGIN, three INSERTs, COMMIT, five round
// trips on PostgreSQL. Collected and written at the end as one multi-row
// INSERT they cost one, and are still stored all or none (issue 36).

type collectKey struct{}

type collected struct {
	rows []storage.OAuthRequest
	// access: access tokens are held too (in a transaction, see BeginTX).
	access bool
}

// Collect returns a context under which the requests the adapter creates,
// except access tokens, are held until Flush. Nothing may read them before
// (fosite's authorize handlers only create), and the response that hands
// out the code must wait for Flush: no code is acknowledged unstored.
func (a *Adapter) Collect(ctx context.Context) context.Context {
	return context.WithValue(ctx, collectKey{}, &collected{})
}

// Flush stores what was collected under ctx, all or none.
func (a *Adapter) Flush(ctx context.Context) error {
	c, _ := ctx.Value(collectKey{}).(*collected)
	if c == nil || len(c.rows) == 0 {
		return nil
	}
	rows := c.rows
	c.rows = nil
	return a.store.CreateOAuthRequests(ctx, rows)
}

// write stores r, or holds it when ctx collects (see Collect). Access
// tokens are held only in a transaction (BeginTX): outside one, a hybrid
// flow's would otherwise wait for the code's rows.
func (a *Adapter) write(ctx context.Context, r storage.OAuthRequest) error {
	if c, ok := ctx.Value(collectKey{}).(*collected); ok && (c.access || r.Kind != storage.KindAccessToken) {
		c.rows = append(c.rows, r)
		return nil
	}
	return a.store.CreateOAuthRequest(ctx, r)
}

// In fosite's transactions (a code exchange, a refresh) the last writes
// are the new access token and refresh token, and nothing reads them
// before the commit: they are held and written at Commit in one statement
// (PostgreSQL: one round trip less per exchange and per refresh). A
// failed write fails the commit, which fosite answers with an error and a
// rollback: no token is acknowledged unstored.

// BeginTX implements fosite's storage.Transactional: fosite runs each
// token exchange in a transaction (see Collect for what it holds).
func (a *Adapter) BeginTX(ctx context.Context) (context.Context, error) {
	tx, err := a.store.BeginTx(ctx)
	if err != nil {
		return nil, err
	}
	return context.WithValue(tx, collectKey{}, &collected{access: true}), nil
}

// Commit implements fosite's storage.Transactional: the held writes go
// first, then COMMIT. When the held writes fail the transaction is rolled
// back here, so it ends whether or not the caller rolls back after a
// failed commit (fosite does; a caller that does not would otherwise keep
// SQLite's write lock, or a PostgreSQL connection in an aborted
// transaction). Rolling back twice is harmless.
func (a *Adapter) Commit(ctx context.Context) error {
	if err := a.Flush(ctx); err != nil {
		return errors.Join(err, a.store.RollbackTx(ctx))
	}
	return a.store.CommitTx(ctx)
}
