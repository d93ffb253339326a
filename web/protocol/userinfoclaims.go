package protocol

import (
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/tonearm-idp/tonearm/provider"
)

// The userinfo member of an authorization's claims request (OpenID
// Connect Core §5.5), which the access token's session carries from the
// authorization: never one a client sent to the token endpoint.

// asksClaim reports whether the access token's claims request asks
// userinfo for the claim name.
func asksClaim(ar fosite.Requester, name string) bool {
	_, ok := provider.UserinfoClaims(ar.GetSession())[name]
	return ok
}

// userinfoRequested are the claims the access token's claims request
// asks of userinfo, as the person has them; auth_time too, which the
// token keeps.
func userinfoRequested(ar fosite.Requester, id provider.Identity, confidential bool) map[string]any {
	want := provider.UserinfoClaims(ar.GetSession())
	out := provider.RequestedClaims(id, want, confidential)
	if _, ok := want["auth_time"]; ok {
		if s, ok := ar.GetSession().(*openid.DefaultSession); ok && s.Claims != nil && !s.Claims.AuthTime.IsZero() {
			out["auth_time"] = s.Claims.AuthTime.Unix()
		}
	}
	return out
}
