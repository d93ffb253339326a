package provider

import (
	"bytes"
	"encoding/json"
	"slices"
	"sort"
	"strings"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
)

// The claims request parameter (OpenID Connect Core §5.5): an app asks
// for individual claims in the ID token and at userinfo, beside (or
// instead of) the scopes that normally carry them.

// MaxClaimsRequest bounds the claims parameter: the few claims tonearm
// has fit in far less, and the request is stored with every token.
const MaxClaimsRequest = 4096

// ClaimRequest is what an app asks of one claim (§5.5.1): null, or an
// object with essential, value or values.
type ClaimRequest struct {
	Essential bool `json:"essential,omitempty"`
	// Value has no omitempty: a false or empty value is a value (the
	// request is stored as JSON for userinfo).
	Value  any   `json:"value"`
	Values []any `json:"values,omitempty"`
}

// ClaimsRequest is a parsed claims parameter: the claims asked for the ID
// token and for userinfo, by name.
type ClaimsRequest struct {
	UserInfo map[string]ClaimRequest `json:"userinfo,omitempty"`
	IDToken  map[string]ClaimRequest `json:"id_token,omitempty"`
}

// requestableClaims are the claims about the person an app may ask for
// individually, each with the scope that normally carries it: consent to
// the claim is recorded as consent to that scope, and a client may ask
// only for claims of scopes it is registered for. auth_time, acr and amr
// say how this sign-in was made; the ID token carries them whenever
// tonearm knows them.
var requestableClaims = map[string]claimInfo{
	"preferred_username": {"profile", locale.M("your username")},
	"name":               {"profile", locale.M("your display name")},
	"website":            {"profile", locale.M("your website")},
	"locale":             {"profile", locale.M("your language")},
	"email":              {"email", locale.M("your email address")},
	"email_verified":     {"email", locale.M("whether your email address is verified")},
	"listenbrainz_name":  {"listenbrainz", locale.M("your ListenBrainz username")},
	"listenbrainz_token": {"listenbrainz", locale.M("your ListenBrainz token, to act on ListenBrainz as you")},
	"musicbrainz_name":   {"listenbrainz", locale.M("your MusicBrainz username")},
}

// claimInfo is the scope that carries a claim, and what the consent page
// says of it.
type claimInfo struct{ scope, about string }

// ClaimWords is what the consent page says of a claim asked by name: its
// name, and what it is (a marked message the page translates).
type ClaimWords struct{ Name, About string }

// DescribeClaims is what the consent page says of claims asked by name.
func DescribeClaims(names []string) []ClaimWords {
	var out []ClaimWords
	for _, n := range names {
		if c, ok := requestableClaims[n]; ok {
			out = append(out, ClaimWords{Name: n, About: c.about})
		}
	}
	return out
}

// errClaims is the one answer to an unreadable claims parameter.
func errClaims(hint string) error {
	return fosite.ErrInvalidRequest.WithHint("The 'claims' parameter is invalid: " + hint)
}

// ParseClaimsRequest reads a claims parameter ("" when absent: an empty
// request). Members other than userinfo and id_token, and claims tonearm
// does not know, are ignored as §5.5 asks; a parameter that is not a JSON
// object of objects is invalid_request.
func ParseClaimsRequest(raw string) (ClaimsRequest, error) {
	if raw == "" {
		return ClaimsRequest{}, nil
	}
	if len(raw) > MaxClaimsRequest {
		return ClaimsRequest{}, errClaims("it is longer than 4096 bytes.")
	}
	if !bytes.HasPrefix(bytes.TrimSpace([]byte(raw)), []byte("{")) {
		return ClaimsRequest{}, errClaims("it must be a JSON object.")
	}
	var parsed struct {
		UserInfo map[string]*ClaimRequest `json:"userinfo"`
		IDToken  map[string]*ClaimRequest `json:"id_token"`
	}
	if !json.Valid([]byte(raw)) {
		return ClaimsRequest{}, errClaims("it is not valid JSON.")
	}
	if err := json.Unmarshal([]byte(raw), &parsed); err != nil {
		return ClaimsRequest{}, errClaims("userinfo and id_token must be objects mapping claim names to null or {essential, value, values}.")
	}
	idToken := known(parsed.IDToken)
	// An ID token never carries listenbrainz_token (it travels through
	// browsers and logs, see AddRequestedClaims): asked there, it is
	// dropped now, so the consent page does not name it nor record
	// consent to its scope for it.
	delete(idToken, "listenbrainz_token")
	return ClaimsRequest{UserInfo: known(parsed.UserInfo), IDToken: idToken}, nil
}

// known keeps the claims of a member tonearm may release (a null claim is
// asked voluntarily, without a value).
func known(in map[string]*ClaimRequest) map[string]ClaimRequest {
	var out map[string]ClaimRequest
	for name, c := range in {
		if _, ok := requestableClaims[name]; !ok && name != "sub" && name != "acr" && name != "auth_time" {
			continue
		}
		if out == nil {
			out = map[string]ClaimRequest{}
		}
		if c == nil {
			c = &ClaimRequest{}
		}
		out[name] = *c
	}
	return out
}

// ForClient drops the claims of scopes the client is not registered for:
// a claims request asks for no more than its scopes could.
func (c ClaimsRequest) ForClient(client fosite.Client) ClaimsRequest {
	keep := func(in map[string]ClaimRequest) map[string]ClaimRequest {
		out := map[string]ClaimRequest{}
		for name, r := range in {
			if c, ok := requestableClaims[name]; !ok || client.GetScopes().Has(c.scope) {
				out[name] = r
			}
		}
		return out
	}
	return ClaimsRequest{UserInfo: keep(c.UserInfo), IDToken: keep(c.IDToken)}
}

// Claims are the claims about the person asked individually, by name:
// what the consent page names.
func (c ClaimsRequest) Claims() []string {
	var out []string
	for _, m := range []map[string]ClaimRequest{c.IDToken, c.UserInfo} {
		for name := range m {
			if _, ok := requestableClaims[name]; ok && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ClaimScopes are the scopes that carry claims: consenting to a claim is
// consenting to its scope, so an earlier consent covers a claims request
// only when it covered the scopes of its claims.
func ClaimScopes(claims []string) []string {
	var out []string
	for _, name := range claims {
		if c, ok := requestableClaims[name]; ok && !slices.Contains(out, c.scope) {
			out = append(out, c.scope)
		}
	}
	return out
}

// EssentialACR is the acr values the sign-in must meet when acr is asked
// as an essential claim (§5.5.1.1), nil otherwise. Essential without a
// value asks for an acr at all: tonearm states one only for a sign-in with
// two factors.
func (c ClaimsRequest) EssentialACR() []string {
	for _, m := range []map[string]ClaimRequest{c.IDToken, c.UserInfo} {
		r, ok := m["acr"]
		if !ok || !r.Essential {
			continue
		}
		var out []string
		for _, v := range append([]any{r.Value}, r.Values...) {
			if s, ok := v.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			out = []string{ACRMultiFactor}
		}
		return out
	}
	return nil
}

// Subject is the sub the app asked with a value (§3.1.2.2): the sign-in
// must be of that subject, as this client sees it.
func (c ClaimsRequest) Subject() (string, bool) {
	for _, m := range []map[string]ClaimRequest{c.IDToken, c.UserInfo} {
		if s, ok := m["sub"].Value.(string); ok {
			return s, true
		}
	}
	return "", false
}

// matches reports whether the person's value v is one the request names
// (always, when it names none). A value or values on a claim other than
// sub and acr is a hint; tonearm releases the claim only when the
// person's value is one of them, so an app learns nothing it did not
// already know but that it was right.
func (r ClaimRequest) matches(v any) bool {
	if r.Value == nil && len(r.Values) == 0 {
		return true
	}
	// v is a string or a bool (ScopedClaims): comparing it with any
	// decoded JSON value is safe.
	return r.Value == v || slices.Contains(r.Values, v)
}

// RequestedClaims are the claims of want that id has and whose values
// match. listenbrainz_token only with withToken (userinfo to a
// confidential client), as for scopes.
func RequestedClaims(id Identity, want map[string]ClaimRequest, withToken bool) map[string]any {
	// Every claim the person has: the scopes' own selection, written once.
	have := ScopedClaims(id, []string{"profile", "email", "listenbrainz"}, withToken)
	out := map[string]any{}
	for name, r := range want {
		v, ok := have[name]
		if _, known := requestableClaims[name]; known && ok && r.matches(v) {
			out[name] = v
		}
	}
	return out
}

// UserinfoClaimsHeader carries, in a session's ID-token headers, the
// userinfo member of the authorization's claims request, from the code to
// every access token of the grant (their lean sessions keep it), where
// userinfo reads it; never written into a token.
const UserinfoClaimsHeader = fositestore.UserinfoClaimsHeader

// AddRequestedClaims adds to an authorization's session the claims its
// claims request asks for the ID token (never listenbrainz_token: an ID
// token travels through browsers and logs) and keeps the userinfo member
// for the access token.
func AddRequestedClaims(s *openid.DefaultSession, id Identity, c ClaimsRequest) {
	for name, v := range RequestedClaims(id, c.IDToken, false) {
		s.Claims.Extra[name] = v
	}
	if len(c.UserInfo) == 0 {
		return
	}
	if s.Headers == nil {
		s.Headers = &jwt.Headers{}
	}
	if s.Headers.Extra == nil {
		s.Headers.Extra = map[string]interface{}{}
	}
	if raw, err := json.Marshal(ClaimsRequest{UserInfo: c.UserInfo}); err == nil {
		s.Headers.Extra[UserinfoClaimsHeader] = string(raw)
	}
}

// UserinfoClaims is the userinfo member of the claims request an access
// token's session carries (set at the authorization endpoint, never by a
// token request).
func UserinfoClaims(sess fosite.Session) map[string]ClaimRequest {
	s, ok := sess.(*openid.DefaultSession)
	if !ok || s.Headers == nil {
		return nil
	}
	raw, _ := s.Headers.Extra[UserinfoClaimsHeader].(string)
	c, err := ParseClaimsRequest(raw)
	if err != nil {
		return nil // written by AddRequestedClaims: cannot happen
	}
	return c.UserInfo
}

// PrivateHeader reports whether a session header is tonearm's own, for
// its code, never to be written into a token.
func PrivateHeader(name string) bool { return strings.HasPrefix(name, "tonearm_") }
