package locale

import "context"

type tagKey struct{}

// WithTag is ctx carrying the language of what is done in it (a BCP 47
// tag): a mail sent in ctx is written in it. The page that asks for a mail
// puts its language here; the accounts service puts the account's saved
// language over it.
func WithTag(ctx context.Context, tag string) context.Context {
	if tag == "" {
		return ctx
	}
	return context.WithValue(ctx, tagKey{}, tag)
}

// TagOf is the language WithTag put in ctx ("" when none).
func TagOf(ctx context.Context) string {
	t, _ := ctx.Value(tagKey{}).(string)
	return t
}
