package connectors

import (
	"context"

	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
)

// ResealStore is what Reseal needs from storage.
type ResealStore interface {
	ResealColumn(ctx context.Context, column storage.SealedColumn, reseal storage.Reseal) (int, error)
}

// Reseal seals every connector's client secret again under box's current
// key (after TONEARM_SECRET was rotated) and reports how many it changed.
func Reseal(ctx context.Context, store ResealStore, box *seal.Box) (int, error) {
	return store.ResealColumn(ctx, storage.SealedConnectorSecrets, box.ResealFunc("client secret of connector", secretContext))
}
