package provider

import (
	"context"

	"github.com/tonearm-idp/tonearm/locale"
)

// scopeDescriptions are tonearm's own words for its scopes, marked for
// the catalogs: a page translates them (ScopeLines).
var scopeDescriptions = map[string]string{
	"openid":         locale.M("Know who you are (your tonearm account ID)"),
	"profile":        locale.M("See your username and display name"),
	"email":          locale.M("See your email address"),
	"listenbrainz":   locale.M("See your ListenBrainz name and use your ListenBrainz token"),
	"offline_access": locale.M("Keep access while you are away (refresh tokens)"),
	"roles":          locale.M("See your role"),
}

// DescribeScopes words scopes for the consent page: built-in ones as
// above, API scopes with the description their API registered.
func (p *Provider) DescribeScopes(ctx context.Context, scopes []string) []string {
	described := p.ScopeDescriptions(ctx)
	var out []string
	for _, s := range scopes {
		switch {
		case scopeDescriptions[s] != "":
			out = append(out, scopeDescriptions[s])
		case described[s] != "":
			out = append(out, described[s])
		default:
			out = append(out, s)
		}
	}
	return out
}

// pairwiseOpenID words the openid scope for a pairwise client, which is
// given an identifier of its own for the person (OpenID Connect Core §8),
// not their account ID.
var pairwiseOpenID = locale.M("Know who you are, by an ID of its own for you (not your tonearm account ID: other apps cannot match it)")

// PairwiseScopeWords rewords, in described (DescribeScopes of scopes), the
// openid scope for a pairwise client.
func PairwiseScopeWords(scopes, described []string) []string {
	out := append([]string(nil), described...)
	for i, s := range scopes {
		if s == "openid" && i < len(out) {
			out[i] = pairwiseOpenID
		}
	}
	return out
}

// ScopeLine is one line of a page's list of scopes: tonearm's own words
// (Ours), which the page translates, or what an API's admin typed (or the
// bare scope name), which it shows as typed.
type ScopeLine struct {
	Text string
	Ours bool
}

// ScopeLines are described (DescribeScopes, PairwiseScopeWords) as pages
// print them (the "words" template).
func ScopeLines(described []string) []ScopeLine {
	ours := map[string]bool{pairwiseOpenID: true}
	for _, d := range scopeDescriptions {
		ours[d] = true
	}
	for _, d := range builtinScopeDescriptions {
		ours[d] = true
	}
	out := make([]ScopeLine, len(described))
	for i, d := range described {
		out[i] = ScopeLine{Text: d, Ours: ours[d]}
	}
	return out
}
