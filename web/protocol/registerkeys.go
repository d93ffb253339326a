package protocol

import (
	"encoding/json"
	"slices"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/provider/clientkeys"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// keyMetadata is the client metadata of keys, request objects and subject
// types (RFC 7591 §2 jwks and jwks_uri; OpenID Connect Dynamic
// Registration §2 request_uris, request_object_signing_alg,
// token_endpoint_auth_signing_alg, subject_type, sector_identifier_uri).
type keyMetadata struct {
	JWKS                        json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                     string          `json:"jwks_uri,omitempty"`
	RequestURIs                 []string        `json:"request_uris,omitempty"`
	RequestObjectSigningAlg     string          `json:"request_object_signing_alg,omitempty"`
	TokenEndpointAuthSigningAlg string          `json:"token_endpoint_auth_signing_alg,omitempty"`
	SubjectType                 string          `json:"subject_type,omitempty"`
	SectorIdentifierURI         string          `json:"sector_identifier_uri,omitempty"`
}

// assertionAlgs are the client assertion algorithms tonearm verifies
// (token_endpoint_auth_signing_alg; never none or HMAC), as discovery
// lists them.
var assertionAlgs = clientkeys.AlgorithmNames()

// keys checks what the registry does not store and returns the rest.
func (k keyMetadata) keys() (clients.Keys, error) {
	if k.TokenEndpointAuthSigningAlg != "" && !slices.Contains(assertionAlgs, k.TokenEndpointAuthSigningAlg) {
		// Accepted, not stored: every one of these algorithms is
		// accepted from every private_key_jwt client.
		return clients.Keys{}, fault.Errorf(fault.Invalid, "token_endpoint_auth_signing_alg must be RS256, PS256, ES256, EdDSA or Ed25519")
	}
	jwks := ""
	if len(k.JWKS) > 0 && string(k.JWKS) != "null" {
		jwks = string(k.JWKS)
	}
	return clients.Keys{JWKS: jwks, JWKSURI: k.JWKSURI, RequestURIs: k.RequestURIs, RequestObjectSigningAlg: k.RequestObjectSigningAlg,
		SubjectType: k.SubjectType, SectorIdentifierURI: k.SectorIdentifierURI}, nil
}

// keyMetadataOf is the metadata as registered.
func keyMetadataOf(c storage.Client) keyMetadata {
	k := clients.KeysOf(c)
	return keyMetadata{JWKS: k.RawJWKS(), JWKSURI: k.JWKSURI, RequestURIs: k.RequestURIs, RequestObjectSigningAlg: k.RequestObjectSigningAlg,
		SubjectType: k.SubjectType, SectorIdentifierURI: k.SectorIdentifierURI}
}
