package fositestore

import (
	"context"

	"github.com/tonearm-idp/tonearm/storage"
)

// A code's rows (the code, its PKCE challenge, its OpenID session) are
// written by three fosite handlers one after the other. Written as they
// come they cost a transaction: BEGIN, three INSERTs, COMMIT, five round
// trips on PostgreSQL. Collected and written at the end as one multi-row
// INSERT they cost one, and are still stored all or none (issue 36).

type collectKey struct{}

type collected struct{ rows []storage.OAuthRequest }

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
// tokens (a hybrid flow's) are never held: they go to their own table.
func (a *Adapter) write(ctx context.Context, r storage.OAuthRequest) error {
	if c, ok := ctx.Value(collectKey{}).(*collected); ok && r.Kind != storage.KindAccessToken {
		c.rows = append(c.rows, r)
		return nil
	}
	return a.store.CreateOAuthRequest(ctx, r)
}
