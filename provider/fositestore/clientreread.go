package fositestore

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

// RereadCachedClient re-reads a cached client from storage, bypassing the
// cache, after it failed to authenticate: its secret (or its keys, or how it
// authenticates) may have been changed moments ago by the command line or another replica, and the new secret
// must work at once rather than after ClientCacheTTL. It reports whether the
// client's credentials changed (then authentication is worth trying again,
// against the fresh copy, which the cache now holds). A client that is not
// cached was just read from storage, so it costs nothing; otherwise one read
// per failed authentication, and a second secret comparison only after a
// real change, so wrong secrets cannot turn into a storm of hash work.
func (a *Adapter) RereadCachedClient(ctx context.Context, id string) bool {
	a.clientMu.RLock()
	e, ok := a.clientCache[id]
	a.clientMu.RUnlock()
	if !ok {
		return false
	}
	c, err := a.store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && c.Disabled) {
		a.ForgetClient(id)
		return false // gone: the refusal stands
	}
	if err != nil {
		return false
	}
	fc := ToFositeClient(c)
	a.clientMu.Lock()
	a.clientCache[id] = cachedClient{client: fc, expires: a.now().Add(ClientCacheTTL)}
	a.clientMu.Unlock()
	old := e.client
	return !bytes.Equal(fc.Secret, old.Secret) || !bytes.Equal(fc.oldSecret, old.oldSecret) ||
		!fc.oldSecretExpires.Equal(old.oldSecretExpires) || fc.Public != old.Public ||
		fc.TokenEndpointAuthMethod != old.TokenEndpointAuthMethod || fc.JWKS != old.JWKS || fc.JWKSURI != old.JWKSURI
}

// ClientCacheTTL bounds how long a changed or deleted client may be seen as
// it was.
const ClientCacheTTL = 5 * time.Second

type cachedClient struct {
	client  *Client
	expires time.Time
}
