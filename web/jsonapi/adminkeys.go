package jsonapi

import (
	"encoding/json"

	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// clientKeysJSON is how a client authenticates, its keys, request objects
// and subject type, in the admin API's camelCase (the RFC 7591 metadata of
// the same names); jwks is the JWK Set itself, not a string holding it.
type clientKeysJSON struct {
	TokenEndpointAuthMethod string          `json:"tokenEndpointAuthMethod"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string          `json:"jwksUri,omitempty"`
	RequestURIs             []string        `json:"requestUris"`
	RequestObjectSigningAlg string          `json:"requestObjectSigningAlg,omitempty"`
	SubjectType             string          `json:"subjectType"`
	SectorIdentifierURI     string          `json:"sectorIdentifierUri,omitempty"`
}

func toClientKeysJSON(c storage.Client) clientKeysJSON {
	k := clients.KeysOf(c)
	return clientKeysJSON{
		TokenEndpointAuthMethod: k.TokenEndpointAuthMethod, JWKS: k.RawJWKS(), JWKSURI: k.JWKSURI, RequestURIs: k.RequestURIs,
		RequestObjectSigningAlg: k.RequestObjectSigningAlg, SubjectType: k.SubjectType, SectorIdentifierURI: k.SectorIdentifierURI,
	}
}

// keys is the clients.Keys of a new client's body.
func (k clientKeysJSON) keys() clients.Keys {
	return clients.Keys{TokenEndpointAuthMethod: k.TokenEndpointAuthMethod, JWKS: jwksText(k.JWKS), JWKSURI: k.JWKSURI, RequestURIs: k.RequestURIs,
		RequestObjectSigningAlg: k.RequestObjectSigningAlg, SubjectType: k.SubjectType, SectorIdentifierURI: k.SectorIdentifierURI}
}

// jwksText is the JWK Set as the registry reads it; null or absent is none.
func jwksText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	return string(raw)
}

// keysPatch changes the keys of a client; a field left out stays as it
// is, and jwks: null (or "jwksUri": "") removes them.
type keysPatch struct {
	TokenEndpointAuthMethod *string         `json:"tokenEndpointAuthMethod"`
	JWKS                    json.RawMessage `json:"jwks"`
	JWKSURI                 *string         `json:"jwksUri"`
	RequestURIs             *[]string       `json:"requestUris"`
	RequestObjectSigningAlg *string         `json:"requestObjectSigningAlg"`
	SubjectType             *string         `json:"subjectType"`
	SectorIdentifierURI     *string         `json:"sectorIdentifierUri"`
}

func (p keysPatch) apply(s *clients.Spec) {
	for _, f := range []struct {
		dst *string
		v   *string
	}{{&s.TokenEndpointAuthMethod, p.TokenEndpointAuthMethod}, {&s.JWKSURI, p.JWKSURI},
		{&s.RequestObjectSigningAlg, p.RequestObjectSigningAlg}, {&s.SubjectType, p.SubjectType}, {&s.SectorIdentifierURI, p.SectorIdentifierURI}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	if p.JWKS != nil {
		s.JWKS = jwksText(p.JWKS)
	}
	// Keys given one way replace those given the other way.
	if p.JWKS != nil && s.JWKS != "" && p.JWKSURI == nil {
		s.JWKSURI = ""
	}
	if p.JWKSURI != nil && *p.JWKSURI != "" && p.JWKS == nil {
		s.JWKS = ""
	}
	if p.RequestURIs != nil {
		s.RequestURIs = *p.RequestURIs
	}
}
