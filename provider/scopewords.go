package provider

import "context"

var scopeDescriptions = map[string]string{
	"openid":         "Know who you are (your tonearm account ID)",
	"profile":        "See your username and display name",
	"email":          "See your email address",
	"listenbrainz":   "See your ListenBrainz name and use your ListenBrainz token",
	"offline_access": "Keep access while you are away (refresh tokens)",
	"roles":          "See your role",
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
const pairwiseOpenID = "Know who you are, by an ID of its own for you (not your tonearm account ID: other apps cannot match it)"

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
