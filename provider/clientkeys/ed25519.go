package clientkeys

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Ed25519 is the fully specified name of EdDSA with an Ed25519 key (RFC
// 9864 §2.2), which openid-client 6 (oauth4webapi) signs with. It is the
// same signature as EdDSA (RFC 8037 §3.1) over the same kind of key, so
// tonearm treats the two names as one: a client allowed EdDSA may sign
// with Ed25519 and the other way round. go-jose v4.1.8 does not know the
// name, so such a JWS is verified by verifyEd25519 below.
const Ed25519 = jose.SignatureAlgorithm("Ed25519")

// sameAlg reports whether a and b name the same signature algorithm.
func sameAlg(a, b jose.SignatureAlgorithm) bool {
	return a == b || (isEdDSA(a) && isEdDSA(b))
}

func isEdDSA(a jose.SignatureAlgorithm) bool { return a == jose.EdDSA || a == Ed25519 }

// ed25519JWS is a compact JWS with alg Ed25519, parsed but not verified.
type ed25519JWS struct {
	signingInput []byte // protected "." payload, as sent (RFC 7515 §5.2)
	payload      []byte
	signature    []byte
	kid          string
}

// headerAlg reads the alg of a compact JWS's header ("" when it is not a
// three-part compact JWS with a readable header).
func headerAlg(compact string) jose.SignatureAlgorithm {
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	if err != nil || json.Unmarshal(raw, &h) != nil {
		return ""
	}
	return jose.SignatureAlgorithm(h.Alg)
}

// parseEd25519 parses a compact JWS with alg Ed25519 as strictly as
// go-jose parses the algorithms it knows: exactly three parts, strict
// base64url (no padding, no stray bits), a JSON object header without
// duplicate members, and no header that changes what is signed or how it
// is read (crit, b64: RFC 7515 §4.1.11, RFC 7797), which tonearm does not
// implement and so must refuse.
func parseEd25519(compact string) (*ed25519JWS, error) {
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return nil, ErrBadJWS
	}
	dec := base64.RawURLEncoding.Strict()
	rawHeader, err1 := dec.DecodeString(parts[0])
	payload, err2 := dec.DecodeString(parts[1])
	sig, err3 := dec.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || len(sig) != ed25519.SignatureSize {
		return nil, ErrBadJWS
	}
	header, err := uniqueMembers(rawHeader)
	if err != nil {
		return nil, ErrBadJWS
	}
	var alg, kid string
	if json.Unmarshal(header["alg"], &alg) != nil || jose.SignatureAlgorithm(alg) != Ed25519 {
		return nil, ErrBadJWS
	}
	if raw, ok := header["kid"]; ok && json.Unmarshal(raw, &kid) != nil {
		return nil, ErrBadJWS
	}
	for _, refused := range []string{"crit", "b64"} {
		if _, ok := header[refused]; ok {
			return nil, ErrBadJWS
		}
	}
	return &ed25519JWS{signingInput: []byte(parts[0] + "." + parts[1]), payload: payload, signature: sig, kid: kid}, nil
}

// uniqueMembers reads a JSON object whose member names are all different
// (a duplicate could be read one way here and another way elsewhere).
func uniqueMembers(raw []byte) (map[string]json.RawMessage, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return nil, ErrBadJWS
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return nil, ErrBadJWS
	}
	seen := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil { // the name
			return nil, ErrBadJWS
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, ErrBadJWS
		}
		seen++
	}
	if seen != len(members) {
		return nil, ErrBadJWS
	}
	return members, nil
}

// verifyWith tries the client's Ed25519 keys that fit the kid.
func (j *ed25519JWS) verifyWith(set *jose.JSONWebKeySet) ([]byte, error) {
	candidates := set.Keys
	if j.kid != "" {
		candidates = set.Key(j.kid)
	}
	tried := false
	for _, key := range candidates {
		if key.Use == "enc" || (key.Algorithm != "" && !isEdDSA(jose.SignatureAlgorithm(key.Algorithm))) {
			continue
		}
		pub, ok := key.Public().Key.(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize {
			continue
		}
		tried = true
		if ed25519.Verify(pub, j.signingInput, j.signature) {
			return j.payload, nil
		}
	}
	if !tried {
		return nil, ErrNoMatchingKey
	}
	return nil, ErrBadSignature
}

// UnverifiedPayload is a compact JWS's payload, unverified: for reading
// whom a JWT claims to come from before its keys are looked up, never as
// proof. It accepts the algorithms Verify does.
func UnverifiedPayload(compact string) ([]byte, error) {
	if headerAlg(compact) == Ed25519 {
		j, err := parseEd25519(compact)
		if err != nil {
			return nil, err
		}
		return j.payload, nil
	}
	jws, err := jose.ParseSignedCompact(compact, Algorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, ErrBadJWS
	}
	return jws.UnsafePayloadWithoutVerification(), nil
}
