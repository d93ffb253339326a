package provider

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/tonearm-idp/tonearm/provider/clientkeys"
	"github.com/tonearm-idp/tonearm/provider/dpop"
	"github.com/tonearm-idp/tonearm/provider/keys"
)

// Scopes tonearm understands.
var SupportedScopes = []string{"openid", "profile", "email", "listenbrainz", "roles", "offline_access", ScopeAccount, ScopeAdmin}

// Identity is what the provider may say about a user.
type Identity struct {
	ID            string
	Username      string
	Name          string // display name; the username when unset
	Email         string
	EmailVerified bool
	Website       string
	// Locale is the saved language (BCP 47), the locale claim (OIDC Core
	// §5.1); "" when none.
	Locale            string
	Role              string
	ListenBrainzName  string
	ListenBrainzToken string // only for userinfo, only to confidential clients
	// MusicBrainzName is the MetaBrainz username of a linked MusicBrainz
	// account (a musicbrainz connector).
	MusicBrainzName string
}

func has(scopes []string, s string) bool {
	for _, x := range scopes {
		if x == s {
			return true
		}
	}
	return false
}

// ScopedClaims returns the claims granted scopes release (without sub).
// listenbrainz_token is added only when withToken is set: userinfo to a
// confidential client.
func ScopedClaims(id Identity, scopes []string, withToken bool) map[string]any {
	c := map[string]any{}
	if has(scopes, "profile") {
		c["preferred_username"] = id.Username
		name := id.Name
		if name == "" {
			name = id.Username
		}
		c["name"] = name
		if id.Website != "" {
			c["website"] = id.Website
		}
		// OIDC Core §5.1: locale is a BCP 47 tag, released with profile.
		if id.Locale != "" {
			c["locale"] = id.Locale
		}
	}
	if has(scopes, "email") && id.Email != "" {
		c["email"] = id.Email
		c["email_verified"] = id.EmailVerified
	}
	if has(scopes, "roles") && id.Role != "" {
		c["role"] = id.Role
	}
	if has(scopes, "listenbrainz") && id.MusicBrainzName != "" {
		c["musicbrainz_name"] = id.MusicBrainzName
	}
	if has(scopes, "listenbrainz") && id.ListenBrainzName != "" {
		c["listenbrainz_name"] = id.ListenBrainzName
		if withToken && id.ListenBrainzToken != "" {
			c["listenbrainz_token"] = id.ListenBrainzToken
		}
	}
	return c
}

// ACRMultiFactor is the acr of a sign-in with two factors (OpenID PAPE),
// the one value of acr_values_supported.
const ACRMultiFactor = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"

// UserSession builds the session of an authorization: the subject, when the
// user authenticated, when the request arrived, and the ID-token claims the
// granted scopes release.
// sid is the browser session's identifier (OpenID Connect Front- and
// Back-Channel Logout), carried in every ID token of the authorization;
// amr says how the user proved who they are (RFC 8176: pwd, hwk).
func UserSession(id Identity, sid string, amr []string, authTime, requestedAt time.Time, granted []string) *openid.DefaultSession {
	s := NewSession()
	s.Subject = id.ID
	s.Username = id.Username
	s.Claims.Subject = id.ID
	s.Claims.AuthTime = authTime.UTC()
	s.Claims.RequestedAt = requestedAt.UTC()
	s.Claims.AuthenticationMethodsReferences = amr
	if has(amr, "mfa") {
		s.Claims.AuthenticationContextClassReference = ACRMultiFactor
	}
	s.Claims.Extra = ScopedClaims(id, granted, false)
	if sid != "" {
		s.Claims.Extra["sid"] = sid
	}
	s.Headers = &jwt.Headers{Extra: map[string]interface{}{}}
	return s
}

// SetIDTokenAlg makes the ID tokens of session signed with alg (a
// client's id_token_signed_response_alg: RS256 or ES256); the choice
// travels with the session, so refreshes sign the same way.
func SetIDTokenAlg(s *openid.DefaultSession, alg string) {
	if s == nil || (alg != keys.RS256 && alg != keys.ES256) {
		return
	}
	if s.Headers == nil {
		s.Headers = &jwt.Headers{Extra: map[string]interface{}{}}
	}
	if s.Headers.Extra == nil {
		s.Headers.Extra = map[string]interface{}{}
	}
	s.Headers.Extra[IDTokenAlgHeader] = alg
}

// IDTokenAlgHeader carries, in a session's ID-token headers, the algorithm
// to sign with; the signer takes it out of the header it writes (fosite
// drops a header named alg).
const IDTokenAlgHeader = "tonearm_alg"

// discoveryDocument is the OpenID Provider Metadata; uiLocales are the
// languages of the pages (ui_locales_supported, OIDC Discovery §3).
func discoveryDocument(issuer string, scopes []string, registration bool, uiLocales []string) ([]byte, error) {
	base := strings.TrimRight(issuer, "/")
	doc := map[string]any{
		"issuer":                                        issuer,
		"authorization_endpoint":                        base + AuthorizePath,
		"token_endpoint":                                base + TokenPath,
		"userinfo_endpoint":                             base + UserinfoPath,
		"jwks_uri":                                      base + JWKSPath,
		"introspection_endpoint":                        base + IntrospectPath,
		"revocation_endpoint":                           base + RevokePath,
		"end_session_endpoint":                          base + LogoutPath,
		"pushed_authorization_request_endpoint":         base + PARPath,
		"device_authorization_endpoint":                 base + DeviceAuthorizationPath,
		"require_pushed_authorization_requests":         false,
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
		"response_types_supported":                      []string{"code"},
		"response_modes_supported":                      []string{"query", "form_post"},
		"grant_types_supported":                         []string{"authorization_code", "refresh_token", "client_credentials", DeviceCodeGrant, TokenExchangeGrant},
		"subject_types_supported":                       []string{"public", "pairwise"},
		"id_token_signing_alg_values_supported":         []string{"RS256", "ES256"},
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
		"scopes_supported":                              scopes,
		"claims_supported": []string{
			"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr", "acr",
			"preferred_username", "name", "website", "locale", "email", "email_verified", "role", "listenbrainz_name", "listenbrainz_token", "musicbrainz_name",
		},
		"code_challenge_methods_supported": []string{"S256"},
		"acr_values_supported":             []string{ACRMultiFactor},
		// RFC 9207: every authorization response carries iss.
		"authorization_response_iss_parameter_supported": true,
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
		"prompt_values_supported":                        []string{"none", "login", "consent"},
		"claims_parameter_supported":                     true,
		// Request objects (RFC 9101): by value, or by a request_uri the
		// client registered; none only from a client registered for it.
		"request_parameter_supported":                 true,
		"request_uri_parameter_supported":             true,
		"require_request_uri_registration":            true,
		"request_object_signing_alg_values_supported": append(clientkeys.AlgorithmNames(), "none"),
		// RFC 9449 §5.1: the proof algorithms the token endpoint accepts.
		"dpop_signing_alg_values_supported": dpop.SigningAlgs,
	}
	if registration {
		doc["registration_endpoint"] = base + RegisterPath
	}
	if len(uiLocales) > 0 {
		doc["ui_locales_supported"] = uiLocales
	}
	// private_key_jwt assertions (RFC 7523, OIDC Core §9): asymmetric
	// algorithms only, the same at every endpoint that takes them.
	for _, endpoint := range []string{"token", "introspection", "revocation"} {
		doc[endpoint+"_endpoint_auth_signing_alg_values_supported"] = clientkeys.AlgorithmNames()
	}
	return json.Marshal(doc)
}
