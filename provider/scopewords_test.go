package provider

import "testing"

// The consent and device pages translate tonearm's own words for a scope
// and show an API's description as its admin typed it (issue 35).
func TestScopeLinesTellOursFromTyped(t *testing.T) {
	scopes := []string{"openid", "email", "listens:read", "unknown"}
	described := []string{scopeDescriptions["openid"], scopeDescriptions["email"], "Read your listens", "unknown"}
	got := ScopeLines(PairwiseScopeWords(scopes, described))
	want := []ScopeLine{{pairwiseOpenID, true}, {"See your email address", true}, {"Read your listens", false}, {"unknown", false}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
