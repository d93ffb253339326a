package fositestore

import (
	"context"
	"sync"

	"github.com/tonearm-idp/tonearm/storage"
)

// fosite reads a code's row twice in one exchange (to check the request,
// then to issue the tokens) and its PKCE challenge, keyed by the same
// signature, in between: three SELECTs. Under Remember the first read
// fetches the code and its challenge in one statement and the others are
// answered from it. That is safe: those rows never change but for
// active, and what decides whether a code may be spent is the conditional
// UPDATE of InvalidateAuthorizeCodeSession, never a read (of two
// concurrent exchanges only one gets past it), which also forgets what
// was remembered.

type memoKey struct{}

type memo struct {
	mu sync.Mutex
	// rows are the rows read by kind and signature; nil: read, absent.
	rows map[[2]string]*storage.OAuthRequest
	// taken are the OpenID sessions read by deleting them (signatures).
	taken map[string]bool
}

// memoKinds are the kinds read together.
var memoKinds = []string{storage.KindAuthorizeCode, storage.KindPKCE}

// Remember returns a context under which a code's row and its PKCE
// challenge are read once, together (one token request).
func Remember(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &memo{})
}

// getRow is the store's GetOAuthRequest, answered from ctx's memo for a
// code and its challenge.
func (a *Adapter) getRow(ctx context.Context, kind, signature string) (storage.OAuthRequest, error) {
	m, _ := ctx.Value(memoKey{}).(*memo)
	if m != nil && kind == storage.KindOpenID {
		return m.take(ctx, a.store, signature)
	}
	if m == nil || (kind != storage.KindAuthorizeCode && kind != storage.KindPKCE) {
		return a.store.GetOAuthRequest(ctx, kind, signature)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := [2]string{kind, signature}
	if r, ok := m.rows[key]; ok {
		if r == nil {
			return storage.OAuthRequest{}, storage.ErrNotFound
		}
		return *r, nil
	}
	rows, err := a.store.GetOAuthRequestsBySignature(ctx, signature, memoKinds)
	if err != nil {
		return storage.OAuthRequest{}, err
	}
	if m.rows == nil {
		m.rows = map[[2]string]*storage.OAuthRequest{}
	}
	for _, k := range memoKinds {
		m.rows[[2]string{k, signature}] = nil
	}
	for i := range rows {
		m.rows[[2]string{rows[i].Kind, signature}] = &rows[i]
	}
	if r := m.rows[key]; r != nil {
		return *r, nil
	}
	return storage.OAuthRequest{}, storage.ErrNotFound
}

// forget drops what ctx's memo holds (a row was written).
func forget(ctx context.Context) {
	if m, _ := ctx.Value(memoKey{}).(*memo); m != nil {
		m.mu.Lock()
		m.rows = nil
		m.mu.Unlock()
	}
}

// take reads a code's OpenID session by deleting it: fosite reads it once
// per exchange, after the code was spent, and deletes it right after (a
// SELECT and a DELETE; now one statement). Nothing else reads it: fosite's
// OpenID handler is its only reader, and only on the code exchange.
func (m *memo) take(ctx context.Context, store Store, signature string) (storage.OAuthRequest, error) {
	r, err := store.TakeOAuthRequest(ctx, storage.KindOpenID, signature)
	if err != nil {
		return r, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.taken == nil {
		m.taken = map[string]bool{}
	}
	m.taken[signature] = true
	return r, nil
}

// wasTaken reports whether ctx's memo deleted the OpenID session under
// signature already (see take).
func wasTaken(ctx context.Context, signature string) bool {
	m, _ := ctx.Value(memoKey{}).(*memo)
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.taken[signature]
}
