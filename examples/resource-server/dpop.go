package main

// DPoP (RFC 9449): a token bound to a key the client holds is worthless to
// whoever copies it, because every request must also carry a proof signed
// with that key. tonearm binds an access token by putting the key's RFC 7638
// thumbprint in its cnf.jkt claim; this file checks the proof (§4.3) and
// that binding (§7.1).

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// ProofAlgs are the proof signature algorithms accepted: asymmetric ones only
// (RFC 9449 §4.3 point 5: never none or a MAC), the same list as tonearm's
// dpop_signing_alg_values_supported.
var ProofAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.RS256, jose.EdDSA}

// Proof age: a proof is fresh for proofWindow after its iat; a client clock
// up to proofSkew ahead of ours is tolerated (§4.3 point 11, §11.1).
const (
	proofWindow = 60 * time.Second
	proofSkew   = 5 * time.Second
)

// ErrInvalidProof is a bad DPoP proof: 401 error="invalid_dpop_proof" (§7.1).
var ErrInvalidProof = errors.New("invalid_dpop_proof")

// proofs remembers the jti of every proof until it is too old to be
// accepted anyway, so a captured proof cannot be sent again (§11.1).
//
// In memory is enough for this example, which runs as one process. An API
// running as several replicas must share this record (a database table or
// Redis with a unique key and an expiry), or a proof replayed to another
// replica would pass.
type proofs struct {
	mu   sync.Mutex
	seen map[string]time.Time // jti → when it may be forgotten
}

// use records jti and reports whether it was new.
func (p *proofs) use(jti string, until, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]time.Time{}
	}
	for k, t := range p.seen {
		if now.After(t) {
			delete(p.seen, k)
		}
	}
	if _, ok := p.seen[jti]; ok {
		return false
	}
	p.seen[jti] = until
	return true
}

// CheckProof verifies the request's DPoP proof for the access token raw
// (RFC 9449 §4.3) and returns the proof key's thumbprint (RFC 7638,
// SHA-256, base64url), which the caller compares with the token's cnf.jkt.
// maxProofLen bounds a proof (a JWS with one public key: RSA 4096 fits
// in well under 4 KB), so that parsing one costs little.
const maxProofLen = 8 << 10

func (v *Verifier) CheckProof(r *http.Request, raw string) (string, error) {
	headers := r.Header.Values("DPoP")
	if len(headers) != 1 { // §4.3 point 1: exactly one
		return "", fmt.Errorf("%w: send exactly one DPoP header", ErrInvalidProof)
	}
	if len(headers[0]) > maxProofLen {
		return "", fmt.Errorf("%w: the proof is too long", ErrInvalidProof)
	}
	obj, err := jose.ParseSignedCompact(headers[0], ProofAlgs)
	if err != nil || len(obj.Signatures) != 1 {
		return "", fmt.Errorf("%w: not a JWS signed with %v", ErrInvalidProof, ProofAlgs)
	}
	h := obj.Signatures[0].Protected
	// A media type: compared without case (RFC 7515 §4.1.9).
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "dpop+jwt") {
		return "", fmt.Errorf("%w: typ must be dpop+jwt", ErrInvalidProof)
	}
	// The key is in the proof itself; it must be a public key (go-jose also
	// refuses an embedded private key), and it signs the proof.
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() || !h.JSONWebKey.Valid() {
		return "", fmt.Errorf("%w: jwk must be a public key", ErrInvalidProof)
	}
	payload, err := obj.Verify(h.JSONWebKey)
	if err != nil {
		return "", fmt.Errorf("%w: bad signature", ErrInvalidProof)
	}
	var c struct {
		JTI string  `json:"jti"`
		HTM string  `json:"htm"`
		HTU string  `json:"htu"`
		IAT float64 `json:"iat"`
		ATH string  `json:"ath"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("%w: claims are not JSON", ErrInvalidProof)
	}
	now := v.now()
	iat := time.Unix(int64(c.IAT), 0)
	ath := sha256.Sum256([]byte(raw))
	switch {
	case c.JTI == "":
		return "", fmt.Errorf("%w: no jti", ErrInvalidProof)
	case c.HTM != r.Method:
		return "", fmt.Errorf("%w: htm is not %s", ErrInvalidProof, r.Method)
	case !sameURL(c.HTU, strings.TrimRight(v.URL, "/")+r.URL.Path):
		return "", fmt.Errorf("%w: htu is not %s%s", ErrInvalidProof, strings.TrimRight(v.URL, "/"), r.URL.Path)
	case iat.Before(now.Add(-proofWindow)) || iat.After(now.Add(proofSkew)):
		return "", fmt.Errorf("%w: iat is not within %s of now", ErrInvalidProof, proofWindow)
	// §4.3 point 12 / §7.1: the proof is for this very token.
	case subtle.ConstantTimeCompare([]byte(c.ATH), []byte(base64.RawURLEncoding.EncodeToString(ath[:]))) != 1:
		return "", fmt.Errorf("%w: ath is not the hash of this token", ErrInvalidProof)
	}
	jkt, err := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("%w: jwk has no thumbprint", ErrInvalidProof)
	}
	// Last, once everything else holds, so a bad proof does not use up a jti.
	if !v.proofs.use(c.JTI, iat.Add(proofWindow), now) {
		return "", fmt.Errorf("%w: this proof was used before", ErrInvalidProof)
	}
	return base64.RawURLEncoding.EncodeToString(jkt), nil
}

// sameURL compares htu with this request's URL as RFC 9449 §4.3 point 9
// says: without query and fragment, scheme and host case-insensitively
// (RFC 3986 §6.2.2.1), and a default port the same as none.
func sameURL(htu, want string) bool {
	a, err1 := url.Parse(htu)
	b, err2 := url.Parse(want)
	if err1 != nil || err2 != nil {
		return false
	}
	norm := func(u *url.URL) string {
		host := strings.ToLower(u.Host)
		scheme := strings.ToLower(u.Scheme)
		host = strings.TrimSuffix(host, map[string]string{"http": ":80", "https": ":443"}[scheme])
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		return scheme + "://" + host + path
	}
	return norm(a) == norm(b)
}

// jkt is the thumbprint a token is bound to, "" for a bearer token.
func (t Token) jkt() string {
	cnf, _ := t.Claims["cnf"].(map[string]any)
	jkt, _ := cnf["jkt"].(string)
	return jkt
}

// checkBinding enforces RFC 9449 §7: a DPoP-bound token is accepted only
// under the DPoP scheme with a proof by its key; a bearer token only under
// Bearer (a DPoP-bound token sent as a bearer token is what a thief sends).
func (v *Verifier) checkBinding(r *http.Request, scheme, raw string, t Token) error {
	if scheme == "Bearer" {
		if t.jkt() != "" {
			return fmt.Errorf("%w: this token is DPoP-bound: send it as Authorization: DPoP with a proof", ErrInvalidToken)
		}
		return nil
	}
	jkt, err := v.CheckProof(r, raw)
	if err != nil {
		return err
	}
	if t.jkt() == "" || subtle.ConstantTimeCompare([]byte(jkt), []byte(t.jkt())) != 1 {
		return fmt.Errorf("%w: the proof's key is not the key this token is bound to", ErrInvalidToken)
	}
	return nil
}
