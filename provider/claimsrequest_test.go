package provider

import (
	"slices"
	"testing"
)

// The claims parameter's reading: what an essential acr asks, a sub
// value, hints, and listenbrainz_token only where a token may go.
func TestClaimsRequest(t *testing.T) {
	c, err := ParseClaimsRequest(`{"id_token":{"acr":{"essential":true},"sub":{"value":"u1"},"email":{"values":["a@example.org","b@example.org"]},"name":null,"nope":null},
		"userinfo":{"listenbrainz_token":null},"other_member":1}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.EssentialACR(); !slices.Equal(got, []string{ACRMultiFactor}) {
		t.Errorf("essential acr without values = %v, want the multi-factor class", got)
	}
	if sub, ok := c.Subject(); !ok || sub != "u1" {
		t.Errorf("Subject = %q %v", sub, ok)
	}
	if got := c.Claims(); !slices.Equal(got, []string{"email", "listenbrainz_token", "name"}) {
		t.Errorf("Claims = %v", got)
	}
	if got := ClaimScopes(c.Claims()); !slices.Equal(got, []string{"email", "listenbrainz", "profile"}) {
		t.Errorf("ClaimScopes = %v", got)
	}
	id := Identity{ID: "u1", Username: "ann", Email: "b@example.org", ListenBrainzName: "ann_lb", ListenBrainzToken: "secret-token"}
	got := RequestedClaims(id, c.IDToken, false)
	if got["email"] != "b@example.org" || got["name"] != "ann" || len(got) != 2 {
		t.Errorf("ID token claims = %v", got)
	}
	id.Email = "c@example.org"
	if got := RequestedClaims(id, c.IDToken, false); got["email"] != nil {
		t.Errorf("an email the hint does not name was released: %v", got)
	}
	idtoken := map[string]ClaimRequest{"listenbrainz_token": {Essential: true}}
	if got := RequestedClaims(id, idtoken, false); len(got) != 0 {
		t.Errorf("listenbrainz_token without withToken: %v", got)
	}
	if got := RequestedClaims(id, c.UserInfo, true); got["listenbrainz_token"] != "secret-token" {
		t.Errorf("userinfo to a confidential client: %v", got)
	}
	// The userinfo member round-trips through the session with its
	// values, false included.
	s := NewSession()
	AddRequestedClaims(s, id, ClaimsRequest{UserInfo: map[string]ClaimRequest{"email_verified": {Value: false}}})
	if got := RequestedClaims(id, UserinfoClaims(s), false); got["email_verified"] != false {
		t.Errorf("email_verified false asked, the person's unverified: %v", got)
	}
	id.EmailVerified = true
	if got := RequestedClaims(id, UserinfoClaims(s), false); len(got) != 0 {
		t.Errorf("email_verified false asked, the person's verified: %v", got)
	}
	if c, _ := ParseClaimsRequest(`{"id_token":{"acr":{"values":["x"]}}}`); c.EssentialACR() != nil {
		t.Error("a voluntary acr is essential")
	}
}
