package fositestore

import (
	"context"

	"github.com/tonearm-idp/tonearm/storage"
)

// AddEvent writes an audit event through the adapter's store (in the
// transaction ctx carries, if any): the token endpoint's own handlers (token
// exchange) record what they issue in the transaction that issues it.
func (a *Adapter) AddEvent(ctx context.Context, e storage.Event) error {
	return a.store.AddEvent(ctx, e)
}
