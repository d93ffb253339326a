package pages

import (
	"net/http"
	"strings"

	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// keysForm is the part of the console's client form and of /developer's
// app forms that says how the client authenticates, its public keys, its
// request URIs and its subject type (template "clientkeys").
type keysForm struct {
	// Suffix keeps the fields' ids unique on a page with several forms.
	Suffix                                                          string
	AuthMethod, JWKS, JWKSURI, RequestURIs, RequestObjectSigningAlg string
	SubjectType, SectorIdentifierURI                                string
	// Existing: the client exists, so its subject type is shown, not
	// chosen (it cannot change).
	Existing bool
}

// Methods are the choices of token_endpoint_auth_method ("" the default
// for the client's kind).
func (keysForm) Methods() []string {
	return []string{"", clients.AuthSecretBasic, clients.AuthSecretPost, clients.AuthPrivateKeyJWT, clients.AuthNone}
}

// Algs are the choices of request_object_signing_alg ("" any signed).
func (keysForm) Algs() []string { return append([]string{""}, clients.RequestObjectAlgs...) }

func keysFormOf(r *http.Request) keysForm {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return keysForm{AuthMethod: v("token_endpoint_auth_method"), JWKS: v("jwks"), JWKSURI: v("jwks_uri"), RequestURIs: r.PostFormValue("request_uris"),
		RequestObjectSigningAlg: v("request_object_signing_alg"), SubjectType: v("subject_type"), SectorIdentifierURI: v("sector_identifier_uri"),
		Existing: v("existing") == "yes"}
}

func keysFormFrom(c storage.Client, suffix string) keysForm {
	return keysForm{Suffix: suffix, AuthMethod: c.TokenEndpointAuthMethod, JWKS: c.JWKS, JWKSURI: c.JWKSURI, RequestURIs: strings.Join(c.RequestURIs, "\n"),
		RequestObjectSigningAlg: c.RequestObjectSigningAlg, SubjectType: c.SubjectType, SectorIdentifierURI: c.SectorIdentifierURI, Existing: true}
}

func (k keysForm) keys() clients.Keys {
	return clients.Keys{TokenEndpointAuthMethod: k.AuthMethod, JWKS: k.JWKS, JWKSURI: k.JWKSURI, RequestURIs: lines(k.RequestURIs),
		RequestObjectSigningAlg: k.RequestObjectSigningAlg, SubjectType: k.SubjectType, SectorIdentifierURI: k.SectorIdentifierURI}
}
