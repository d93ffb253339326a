package interaction

import (
	"context"
	"encoding/base64"

	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
)

// ResealStore is what Reseal needs from storage.
type ResealStore interface {
	ResealColumn(ctx context.Context, column storage.SealedColumn, reseal storage.Reseal) (int, error)
}

// Reseal seals the sign-ins in progress again under box's current key
// (after TONEARM_SECRET was rotated) and reports how many it changed. They
// live TTL; the storage names each by the base64url of its ID's hash.
func Reseal(ctx context.Context, store ResealStore, box *seal.Box) (int, error) {
	return store.ResealColumn(ctx, storage.SealedInteractions, box.ResealFunc("sign-in in progress", func(id string) string {
		idHash, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil {
			return "" // a context no value was sealed with: the value does not open
		}
		return sealContext(idHash)
	}))
}
