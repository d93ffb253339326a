package accounts

import (
	"context"

	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
)

// ResealStore is what Reseal needs from storage.
type ResealStore interface {
	ResealColumn(ctx context.Context, column storage.SealedColumn, reseal storage.Reseal) (int, error)
}

// Reseal seals the users' TOTP secrets and ListenBrainz tokens again under
// box's current key (after TONEARM_SECRET was rotated) and reports how
// many of each it changed. (Recovery codes are keyed hashes, not sealed:
// they are checked under the previous keys too, see Config.)
func Reseal(ctx context.Context, store ResealStore, box *seal.Box) (totp, listenBrainz int, err error) {
	if totp, err = store.ResealColumn(ctx, storage.SealedTOTPSecrets, box.ResealFunc("TOTP secret of user", totpContext)); err != nil {
		return 0, 0, err
	}
	listenBrainz, err = store.ResealColumn(ctx, storage.SealedListenBrainzTokens, box.ResealFunc("ListenBrainz token of user", tokenContext))
	return totp, listenBrainz, err
}
