// Package dpop checks DPoP proofs (RFC 9449): the JWT a client signs with
// its own key for each request, so that a token bound to that key is
// worthless to whoever copies it without the key. It knows nothing of
// HTTP routing or fosite: the token endpoint and the resources call Check
// with what the request says and what they expect.
package dpop

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// HeaderName is the request header that carries a proof (RFC 9449 §4.1)
// and NonceHeader the response header with a server nonce (§8.1).
const (
	HeaderName  = "DPoP"
	NonceHeader = "DPoP-Nonce"
)

// Error codes (RFC 9449 §12.2).
const (
	ErrInvalidProof = "invalid_dpop_proof"
	ErrUseNonce     = "use_dpop_nonce"
)

// SigningAlgs are the proof algorithms accepted, all asymmetric (§4.3
// point 5: never none nor a MAC), as discovery lists them
// (dpop_signing_alg_values_supported).
var SigningAlgs = []string{"ES256", "PS256", "RS256", "EdDSA"}

var joseAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.RS256, jose.EdDSA}

// Time bounds of a proof's iat (§4.3 point 11, §11.1): a proof is fresh
// for Window after it was made, and a client clock may run FutureSkew
// ahead of ours.
const (
	Window     = 60 * time.Second
	FutureSkew = 5 * time.Second
	// nonceSlot is how long one server nonce is handed out; a nonce is
	// accepted during its slot and the next.
	nonceSlot = 5 * time.Minute
	// maxProofLen bounds what is parsed (a proof is a few hundred bytes;
	// an RSA-4096 jwk makes it about 1.5 kB).
	maxProofLen = 8 << 10
	maxJTILen   = 128
)

// OneTimeStore records a proof's jti across replicas (storage.UseOnce):
// ErrAlreadyExists-like failure for a key recorded before and not expired.
type OneTimeStore interface {
	UseOnce(ctx context.Context, key string, now, expiresAt time.Time) error
}

// Config wires a Verifier.
type Config struct {
	// Once records jtis (required).
	Once OneTimeStore
	// IsReplay tells Once's "already used" error from an outage (required).
	IsReplay func(error) bool
	// NonceKey, when set, turns server nonces on (§8): every proof must
	// carry a nonce this server handed out. 32 bytes, derived from
	// TONEARM_SECRET, so every replica makes and accepts the same nonces.
	NonceKey []byte
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Verifier checks proofs.
type Verifier struct {
	once     OneTimeStore
	isReplay func(error) bool
	nonceKey []byte
	now      func() time.Time
}

// New returns a Verifier.
func New(c Config) (*Verifier, error) {
	if c.Once == nil || c.IsReplay == nil {
		return nil, errors.New("dpop: Once and IsReplay are required")
	}
	if c.NonceKey != nil && len(c.NonceKey) < 32 {
		return nil, errors.New("dpop: the nonce key must be 32 bytes")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Verifier{once: c.Once, isReplay: c.IsReplay, nonceKey: c.NonceKey, now: c.Now}, nil
}

// Error is a refused proof: Code is invalid_dpop_proof or use_dpop_nonce
// (then Nonce is the nonce to use), Description says why, in English,
// without secrets. Err is an outage behind it (then it is not the proof's
// fault).
type Error struct {
	Code        string
	Description string
	Nonce       string
	Err         error
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }
func (e *Error) Unwrap() error { return e.Err }

func invalid(format string, args ...any) *Error {
	return &Error{Code: ErrInvalidProof, Description: fmt.Sprintf(format, args...)}
}

// Proof is a verified proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's key,
	// base64url: what a bound token's cnf.jkt names.
	JKT string
}

// Request is what a proof must match.
type Request struct {
	Method string
	// URL is the endpoint as the client addresses it: the issuer's
	// external URL and the path (never r.Host, which a proxy rewrites).
	URL string
	// AccessToken is the token presented with the proof at a resource
	// (ath, §4.3 point 12); "" at the token endpoint.
	AccessToken string
}

// FromHeader returns the one DPoP header of h: "" when there is none, an
// error when there are several (§4.3 point 1).
func FromHeader(h http.Header) (string, error) {
	v := h.Values(HeaderName)
	switch {
	case len(v) == 0:
		return "", nil
	case len(v) > 1 || strings.Contains(v[0], ","):
		return "", invalid("Exactly one DPoP header is allowed.")
	case strings.TrimSpace(v[0]) == "":
		return "", invalid("The DPoP header is empty.")
	}
	return strings.TrimSpace(v[0]), nil
}

type claims struct {
	JTI   string   `json:"jti"`
	HTM   string   `json:"htm"`
	HTU   string   `json:"htu"`
	IAT   *float64 `json:"iat"` // a JSON number (RFC 7519 NumericDate), never a string
	ATH   *string  `json:"ath"`
	Nonce *string  `json:"nonce"`
}

// Check verifies proof against req (RFC 9449 §4.3), then records its jti
// so that it is never accepted again, on any replica. The checks that
// cost nothing come first; the jti is spent only by a proof that passed
// everything else.
func (v *Verifier) Check(ctx context.Context, proof string, req Request) (Proof, error) {
	if len(proof) > maxProofLen {
		return Proof{}, invalid("The DPoP proof is too long.")
	}
	obj, err := jose.ParseSignedCompact(proof, joseAlgs)
	if err != nil {
		// A none, HS* or unknown alg is refused here: the list above
		// admits only asymmetric algorithms.
		return Proof{}, invalid("The DPoP proof is not a JWS signed with %s.", strings.Join(SigningAlgs, ", "))
	}
	if len(obj.Signatures) != 1 {
		return Proof{}, invalid("The DPoP proof must carry one signature.")
	}
	h := obj.Signatures[0].Protected
	// A media type: compared without case (RFC 9449 §4.2, RFC 2045).
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "dpop+jwt") {
		return Proof{}, invalid("The DPoP proof's typ must be dpop+jwt.")
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		// §4.3 point 7: the jwk header is a public key; a private key
		// (d) or a symmetric one is never a proof key.
		return Proof{}, invalid("The DPoP proof's jwk header must be a public key.")
	}
	payload, err := obj.Verify(jwk)
	if err != nil {
		return Proof{}, invalid("The DPoP proof's signature does not verify with its jwk.")
	}
	var c claims
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return Proof{}, invalid("The DPoP proof's payload is not a JSON object.")
	}
	if c.JTI == "" || len(c.JTI) > maxJTILen {
		return Proof{}, invalid("The DPoP proof needs a jti of at most %d characters.", maxJTILen)
	}
	if c.HTM != req.Method {
		return Proof{}, invalid("The DPoP proof's htm is not this request's method.")
	}
	if !SameURL(c.HTU, req.URL) {
		return Proof{}, invalid("The DPoP proof's htu is not this endpoint's URL.")
	}
	if c.IAT == nil {
		return Proof{}, invalid("The DPoP proof needs an iat.")
	}
	iatf := *c.IAT
	now := v.now()
	iat := time.Unix(int64(iatf), 0)
	if iat.After(now.Add(FutureSkew)) || iat.Before(now.Add(-Window)) {
		return Proof{}, invalid("The DPoP proof's iat is not within %s of the server's time.", Window)
	}
	if req.AccessToken != "" {
		want := AccessTokenHash(req.AccessToken)
		if c.ATH == nil || subtle.ConstantTimeCompare([]byte(*c.ATH), []byte(want)) != 1 {
			return Proof{}, invalid("The DPoP proof's ath is not the hash of the access token.")
		}
	}
	if v.nonceKey != nil {
		if c.Nonce == nil || !v.validNonce(*c.Nonce, now) {
			return Proof{}, &Error{Code: ErrUseNonce, Description: "Use the server's DPoP nonce in the proof.", Nonce: v.Nonce()}
		}
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return Proof{}, invalid("The DPoP proof's jwk has no thumbprint.")
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	// Namespaced by kind and key, as client assertions are
	// ("assertion:…"); kept until the proof could no longer pass the iat
	// check.
	if err := v.once.UseOnce(ctx, "dpop:"+jkt+":"+c.JTI, now, iat.Add(Window+FutureSkew)); err != nil {
		if v.isReplay(err) {
			return Proof{}, invalid("The DPoP proof was used before.")
		}
		return Proof{}, &Error{Code: ErrInvalidProof, Description: "The DPoP proof could not be checked.", Err: err}
	}
	return Proof{JKT: jkt}, nil
}

// NoncesOn reports whether proofs must carry a server nonce.
func (v *Verifier) NoncesOn() bool { return v.nonceKey != nil }

// Nonce is the server nonce of the current slot ("" when nonces are off).
// It is stateless: an HMAC of the slot's number under the nonce key, so
// every replica makes the same and accepts it without storing it.
func (v *Verifier) Nonce() string {
	if v.nonceKey == nil {
		return ""
	}
	return v.nonceAt(v.now().Unix() / int64(nonceSlot/time.Second))
}

func (v *Verifier) nonceAt(slot int64) string {
	m := hmac.New(sha256.New, v.nonceKey)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(slot))
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// validNonce accepts the nonce of the current slot and of the one before
// (a nonce handed out just before a slot ends stays good for one more).
func (v *Verifier) validNonce(n string, now time.Time) bool {
	slot := now.Unix() / int64(nonceSlot/time.Second)
	ok := 0
	for _, s := range []int64{slot, slot - 1} {
		ok |= subtle.ConstantTimeCompare([]byte(n), []byte(v.nonceAt(s)))
	}
	return ok == 1
}

// SameURL compares a proof's htu with the endpoint's URL (§4.3 point 9):
// query and fragment ignored, scheme and host compared without case,
// default ports dropped, an empty path read as "/", and percent-encoding
// normalized (RFC 3986 §6.2.2).
func SameURL(htu, endpoint string) bool {
	a, ok1 := normalize(htu)
	b, ok2 := normalize(endpoint)
	return ok1 && ok2 && a == b
}

func normalize(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" || u.User != nil {
		return "", false
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := u.Path // decoded: %7E and ~ compare equal
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + (&url.URL{Path: path}).EscapedPath(), true
}

// AccessTokenHash is ath for token (§4.2).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
