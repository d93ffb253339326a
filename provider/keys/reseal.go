package keys

import (
	"context"

	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
)

// ResealStore is what Reseal needs from storage.
type ResealStore interface {
	ResealColumn(ctx context.Context, column storage.SealedColumn, reseal storage.Reseal) (int, error)
}

// Reseal seals every stored private key again under box's current key
// (after TONEARM_SECRET was rotated) and reports how many it changed.
func Reseal(ctx context.Context, store ResealStore, box *seal.Box) (int, error) {
	return store.ResealColumn(ctx, storage.SealedSigningKeys, box.ResealFunc("signing key", sealContext))
}
