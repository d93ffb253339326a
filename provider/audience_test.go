package provider

import (
	"slices"
	"testing"

	"github.com/tonearm-idp/tonearm/storage"
)

// A scope no known API owns and that is not built in is never granted, and
// the index says it needs a fresh read of the APIs.
func TestAudienceForUnknownScopes(t *testing.T) {
	listens := storage.API{ID: "https://api.example.org/listens", Scopes: []storage.APIScope{{Name: "listens:read"}}}
	ix := buildIndex([]storage.API{BuiltinAPI("https://id.example.org"), listens})
	for _, c := range []struct {
		scopes, resources []string
		wantAud, wantKept []string
		miss              bool
	}{
		{[]string{"openid", "listens:read"}, nil, []string{listens.ID}, []string{"openid", "listens:read"}, false},
		{[]string{"openid", "nobody:s"}, nil, nil, []string{"openid"}, true},
		{[]string{"admin", "nobody:s"}, nil, []string{APIIdentifier("https://id.example.org")}, []string{"admin"}, true},
		{[]string{"listens:read", "nobody:s"}, []string{listens.ID}, []string{listens.ID}, []string{"listens:read"}, true},
		{[]string{"openid"}, []string{"https://new.example.org"}, nil, nil, true},
	} {
		if got := ix.misses(c.scopes, c.resources); got != c.miss {
			t.Errorf("misses(%v, %v) = %v", c.scopes, c.resources, got)
		}
		aud, kept, err := ix.audienceFor(c.scopes, c.resources)
		if c.wantKept == nil {
			if err == nil {
				t.Errorf("audienceFor(%v, %v): no error for an unknown resource", c.scopes, c.resources)
			}
			continue
		}
		if err != nil || !slices.Equal(aud, c.wantAud) || !slices.Equal(kept, c.wantKept) {
			t.Errorf("audienceFor(%v, %v) = %v, %v, %v; want %v, %v", c.scopes, c.resources, aud, kept, err, c.wantAud, c.wantKept)
		}
	}
}
