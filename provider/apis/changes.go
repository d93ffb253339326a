package apis

import (
	"context"
	"slices"

	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// apply makes a change to the API id and records it (event typ) in one
// transaction; the actor is the one ctx's transport named.
func (r *Registry) apply(ctx context.Context, typ, id string, write func(ctx context.Context) error) error {
	return audit.Apply(ctx, r.store, r.now(), audit.Change{Type: typ, Detail: map[string]any{"api": id}}, write)
}

// rewrite stores next as the API id and records api.changed with the
// fields that changed, by the admin API's names (never their values),
// compared with the stored API under its row lock. When none did, nothing
// is written or recorded and the stored API is returned.
func (r *Registry) rewrite(ctx context.Context, id string, next storage.API) (storage.API, error) {
	var out storage.API
	changed := audit.Change{Type: audit.APIChanged, Detail: map[string]any{"api": id}}
	err := audit.ApplyDiff(ctx, r.store, r.now(), changed, func(ctx context.Context) (map[string]any, error) {
		var fields []string
		stored, err := r.store.UpdateAPI(ctx, id, func(old storage.API) (storage.API, error) {
			out = old
			if fields = apiChanges(old, next); len(fields) == 0 {
				return old, audit.ErrUnchanged
			}
			return next, nil
		})
		if err != nil {
			return nil, err
		}
		out = stored
		return map[string]any{"fields": fields}, nil
	})
	return out, err
}

// apiChanges names the fields that differ between a and b.
func apiChanges(a, b storage.API) []string {
	var out []string
	for _, f := range []struct {
		name    string
		changed bool
	}{
		{"name", a.Name != b.Name}, {"scopes", !slices.Equal(a.Scopes, b.Scopes)}, {"claims", !slices.Equal(a.Claims, b.Claims)},
		{"introspectors", !slices.Equal(a.Introspectors, b.Introspectors)}, {"exchangeFrom", !slices.Equal(a.ExchangeFrom, b.ExchangeFrom)},
		{"openToApps", a.OpenToApps != b.OpenToApps},
	} {
		if f.changed {
			out = append(out, f.name)
		}
	}
	return out
}
