package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	jose3 "github.com/go-jose/go-jose/v3"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/provider/keys"
)

// AccessTokenStrategy issues RFC 9068 JWT access tokens signed with ES256
// and leaves authorization codes and refresh tokens to fosite's HMAC
// strategy (they are opaque and only this server reads them).
type AccessTokenStrategy struct {
	HMAC     *oauth2.HMACSHAStrategy
	Keys     *keys.Manager
	Issuer   string
	Lifespan time.Duration
	Now      func() time.Time
	// ExtraClaims returns the user claims the token's audience releases
	// (optional).
	ExtraClaims func(ctx context.Context, subject, clientID string, aud []string) (map[string]any, error)
	// Subjects gives the token's sub as its client sees the person: a
	// client reads its access tokens, so a pairwise client's never
	// carries the user ID.
	Subjects *Subjects
}

var _ oauth2.CoreStrategy = (*AccessTokenStrategy)(nil)

// accessClaims is the RFC 9068 payload.
type accessClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience []string `json:"aud"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope,omitempty"`
	IssuedAt int64    `json:"iat"`
	Expiry   int64    `json:"exp"`
	JTI      string   `json:"jti"`
	AuthTime int64    `json:"auth_time,omitempty"`
	// ACR is how strongly the user signed in (the multi-factor class
	// after two factors), for resource servers that ask (RFC 9470).
	ACR string `json:"acr,omitempty"`
	// Cnf binds the token to the key of the client's DPoP proofs
	// (RFC 9449 §6.1, RFC 7800): a resource takes it only with a proof
	// signed by that key.
	Cnf *confirmation `json:"cnf,omitempty"`
}

type confirmation struct {
	JKT string `json:"jkt"`
}

func (s *AccessTokenStrategy) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func lastSegment(token string) string {
	i := strings.LastIndexByte(token, '.')
	if i < 0 || strings.Count(token, ".") != 2 {
		return ""
	}
	return token[i+1:]
}

// AccessTokenSignature implements oauth2.AccessTokenStrategy. The
// "signature" fosite keys an access token's row by is the whole token (the
// store keeps only its SHA-256): a row then matches only the exact bytes
// this server signed, so a token spliced from a real signature and a forged
// header or payload finds nothing. Keying by the JWS signature segment alone
// made that segment a credential by itself.
func (s *AccessTokenStrategy) AccessTokenSignature(_ context.Context, token string) string {
	if strings.Count(token, ".") != 2 {
		return ""
	}
	return token
}

// GenerateAccessToken implements oauth2.AccessTokenStrategy.
func (s *AccessTokenStrategy) GenerateAccessToken(ctx context.Context, req fosite.Requester) (string, string, error) {
	sess := req.GetSession()
	if sess == nil {
		return "", "", errors.New("provider: access token request without a session")
	}
	now := s.now().UTC()
	exp := sess.GetExpiresAt(fosite.AccessToken)
	if exp.IsZero() {
		exp = now.Add(s.Lifespan)
	}
	clientID := req.GetClient().GetID()
	subject := sess.GetSubject()
	ofUser := subject != ""
	if !ofUser {
		subject = clientID // client credentials: the client acts for itself
	}
	aud := []string(req.GetGrantedAudience())
	if narrowed, ok := fositestore.AccessAudience(ctx); ok {
		aud = narrowed
	}
	var extra map[string]any
	if s.ExtraClaims != nil && len(aud) > 0 {
		var err error
		if extra, err = s.ExtraClaims(ctx, subject, clientID, aud); err != nil {
			return "", "", err
		}
	}
	if len(aud) == 0 {
		aud = []string{clientID}
	}
	exchanged, isExchange := exchangedOf(ctx)
	switch {
	case ofUser && isExchange:
		// RFC 8693: the subject token's sub, unchanged; computed for the
		// requesting client, a pairwise sub would become the user ID (or
		// another pairwise one) in the exchanging client's hands.
		subject = exchanged.sub
	case ofUser:
		subject = s.Subjects.For(req.GetClient(), subject)
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", "", err
	}
	scopes := []string(req.GetGrantedScopes())
	if narrowed, ok := fositestore.AccessScopes(ctx); ok {
		scopes = narrowed
	}
	claims := accessClaims{
		Issuer: s.Issuer, Subject: subject, Audience: aud, ClientID: clientID,
		Scope: strings.Join(scopes, " "), IssuedAt: now.Unix(), Expiry: exp.Unix(),
		JTI: base64.RawURLEncoding.EncodeToString(jti),
	}
	if os, ok := sess.(*openid.DefaultSession); ok && os.Claims != nil && !os.Claims.AuthTime.IsZero() {
		claims.AuthTime = os.Claims.AuthTime.Unix()
		claims.ACR = os.Claims.AuthenticationContextClassReference
	}
	if jkt := BoundKey(sess); jkt != "" {
		claims.Cnf = &confirmation{JKT: jkt}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", "", err
	}
	if isExchange {
		// The actor chain (RFC 8693 §4.1), a claim no API can release.
		extra = maps.Clone(extra)
		if extra == nil {
			extra = map[string]any{}
		}
		extra["act"] = exchanged.act
	}
	if len(extra) > 0 {
		// Released user claims never replace a protocol claim.
		all := map[string]any{}
		if err := json.Unmarshal(payload, &all); err != nil {
			return "", "", err
		}
		for k, v := range extra {
			if _, taken := all[k]; !taken {
				all[k] = v
			}
		}
		if payload, err = json.Marshal(all); err != nil {
			return "", "", err
		}
	}
	k, err := s.Keys.Signing(keys.ES256)
	if err != nil {
		return "", "", err
	}
	token, err := signES256(k, payload)
	if err != nil {
		return "", "", err
	}
	return token, token, nil
}

// es256Headers caches each ES256 key's encoded protected header.
var es256Headers sync.Map // kid → string

// signES256 makes the compact JWS of payload with an ES256 key (RFC 7515
// §7.1, RFC 7518 §3.4: the signature is R and S as 32 big-endian bytes
// each) directly with crypto/ecdsa: the header is the same for every token
// of a key, so it is encoded once, and no signer object is built per
// token. Verification goes through go-jose like every other JWS.
func signES256(k *keys.Key, payload []byte) (string, error) {
	priv, ok := k.Private.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return "", fmt.Errorf("provider: key %s is not a P-256 key", k.KID)
	}
	header, ok := es256Headers.Load(k.KID)
	if !ok {
		h, err := json.Marshal(struct {
			Alg string `json:"alg"`
			KID string `json:"kid"`
			Typ string `json:"typ"`
		}{"ES256", k.KID, "at+jwt"})
		if err != nil {
			return "", err
		}
		header, _ = es256Headers.LoadOrStore(k.KID, base64.RawURLEncoding.EncodeToString(h))
	}
	return compactES256(priv, header.(string), payload)
}

// compactES256 makes the compact JWS of payload under an encoded protected
// header with an ES256 key.
func compactES256(priv *ecdsa.PrivateKey, hdr string, payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(hdr)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(64))
	buf = append(buf, hdr...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	digest := sha256.Sum256(buf)
	r, sv, err := ecdsa.Sign(rand.Reader, priv, digest[:])
	if err != nil {
		return "", err
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig[:])
	return string(buf), nil
}

// ParseAccessToken verifies an access token's signature (against any
// published key), type, issuer and expiry, and returns its claims.
func (s *AccessTokenStrategy) ParseAccessToken(ctx context.Context, token string) (map[string]any, error) {
	obj, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil || len(obj.Signatures) != 1 {
		return nil, fosite.ErrInvalidTokenFormat
	}
	h := obj.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "at+jwt") {
		return nil, fosite.ErrInvalidTokenFormat.WithHint("Not an access token.")
	}
	k, err := s.Keys.Lookup(ctx, h.KeyID)
	if err != nil || k.Alg != h.Algorithm {
		return nil, fosite.ErrTokenSignatureMismatch
	}
	payload, err := obj.Verify(k.Public())
	if err != nil {
		return nil, fosite.ErrTokenSignatureMismatch
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fosite.ErrInvalidTokenFormat
	}
	if iss, _ := claims["iss"].(string); iss != s.Issuer {
		return nil, fosite.ErrTokenClaim.WithHint("Wrong issuer.")
	}
	exp, _ := claims["exp"].(float64)
	if int64(exp) <= s.now().Unix() {
		return nil, fosite.ErrTokenExpired
	}
	return claims, nil
}

// ValidateAccessToken implements oauth2.AccessTokenStrategy. fosite calls
// it after finding the token's row by the hash of the whole token (see
// AccessTokenSignature): that row was written when this server signed
// exactly these bytes, and everything fosite reports (subject, client,
// scopes, expiry) comes from the row, not from the token's payload.
// Verifying the ECDSA signature again would add nothing but ~130 µs per
// introspection, so with a stored request only the stored expiry is
// checked. Without one, the token is verified in full.
func (s *AccessTokenStrategy) ValidateAccessToken(ctx context.Context, req fosite.Requester, token string) error {
	if req != nil && req.GetSession() != nil {
		if strings.Count(token, ".") != 2 {
			return fosite.ErrInvalidTokenFormat
		}
		exp := req.GetSession().GetExpiresAt(fosite.AccessToken)
		if exp.IsZero() || !s.now().Before(exp) {
			return fosite.ErrTokenExpired
		}
		return nil
	}
	_, err := s.ParseAccessToken(ctx, token)
	return err
}

// RefreshTokenSignature implements oauth2.RefreshTokenStrategy. A token
// whose key part does not verify under the current or a previous secret
// (tampered, or made under a secret since dropped) has no signature, so it
// finds no row and fosite answers invalid_grant, as RFC 6749 §5.2 says for
// a refresh token that is not valid. Keyed by its signature part alone it
// found its row and failed only in ValidateRefreshToken, which fosite's
// refresh handler (v0.49.0 flow_refresh.go) maps to invalid_request: client
// libraries that sign in again only on invalid_grant never recovered.
func (s *AccessTokenStrategy) RefreshTokenSignature(ctx context.Context, token string) string {
	if s.HMAC.Enigma.Validate(ctx, strings.TrimPrefix(token, "ory_rt_")) != nil {
		return ""
	}
	return s.HMAC.RefreshTokenSignature(ctx, token)
}

// GenerateRefreshToken implements oauth2.RefreshTokenStrategy.
func (s *AccessTokenStrategy) GenerateRefreshToken(ctx context.Context, req fosite.Requester) (string, string, error) {
	return s.HMAC.GenerateRefreshToken(ctx, req)
}

// ValidateRefreshToken implements oauth2.RefreshTokenStrategy.
func (s *AccessTokenStrategy) ValidateRefreshToken(ctx context.Context, req fosite.Requester, token string) error {
	return s.HMAC.ValidateRefreshToken(ctx, req, token)
}

// AuthorizeCodeSignature implements oauth2.AuthorizeCodeStrategy. As for
// refresh tokens, a code whose key part does not verify has no signature:
// keyed by its signature part alone, a forged code carrying a real one's
// second half found the real code's row, and the failed exchange spent it
// (SpendCode), or, once used, revoked the tokens it had given. Whoever held
// half a code could burn it.
func (s *AccessTokenStrategy) AuthorizeCodeSignature(ctx context.Context, token string) string {
	if s.HMAC.Enigma.Validate(ctx, strings.TrimPrefix(token, "ory_ac_")) != nil {
		return ""
	}
	return s.HMAC.AuthorizeCodeSignature(ctx, token)
}

// GenerateAuthorizeCode implements oauth2.AuthorizeCodeStrategy.
func (s *AccessTokenStrategy) GenerateAuthorizeCode(ctx context.Context, req fosite.Requester) (string, string, error) {
	return s.HMAC.GenerateAuthorizeCode(ctx, req)
}

// ValidateAuthorizeCode implements oauth2.AuthorizeCodeStrategy. The code's
// expiry is checked on the strategy's clock as well as by fosite (whose
// check reads time.Now): with the real clock the two agree; a test's clock
// (Provider.WithClock) moved past the code's lifetime expires it without a
// real wait.
func (s *AccessTokenStrategy) ValidateAuthorizeCode(ctx context.Context, req fosite.Requester, token string) error {
	if req != nil && req.GetSession() != nil {
		if exp := req.GetSession().GetExpiresAt(fosite.AuthorizeCode); !exp.IsZero() && !s.now().Before(exp) {
			return fosite.ErrTokenExpired.WithHintf("Authorize code expired at '%s'.", exp)
		}
	}
	return s.HMAC.ValidateAuthorizeCode(ctx, req, token)
}

// Signer is fosite's jwt.Signer over the key manager: it signs with the
// current key of one algorithm, puts its kid in the header, and verifies
// with whichever published key the token names. fosite's signer takes the
// raw private key (it uses go-jose v3 inside).
type Signer struct {
	keys *keys.Manager
	alg  string
}

var _ jwt.Signer = (*Signer)(nil)

// Generate implements jwt.Signer.
func (s *Signer) Generate(_ context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	if claims == nil {
		return "", "", errors.New("provider: no claims to sign")
	}
	alg := s.alg
	var hdr map[string]interface{}
	if header != nil {
		hdr = header.ToMap()
		// A session may ask for its client's ID-token algorithm
		// (SetIDTokenAlg); only the ones tonearm has keys for.
		if a, _ := hdr[IDTokenAlgHeader].(string); a == keys.RS256 || a == keys.ES256 {
			alg = a
		}
	}
	k, err := s.keys.Signing(alg)
	if err != nil {
		return "", "", err
	}
	if priv, ok := k.Private.(*ecdsa.PrivateKey); ok && alg == keys.ES256 && priv.Curve == elliptic.P256() {
		// ES256 directly, as for access tokens (go-jose built a signer
		// per token: half the ID token's cost).
		h := map[string]any{"typ": "JWT"}
		for name, v := range hdr {
			if !PrivateHeader(name) {
				h[name] = v
			}
		}
		h["kid"], h["alg"] = k.KID, keys.ES256
		hb, err := json.Marshal(h)
		if err != nil {
			return "", "", err
		}
		payload, err := json.Marshal(map[string]any(claims))
		if err != nil {
			return "", "", err
		}
		raw, err := compactES256(priv, base64.RawURLEncoding.EncodeToString(hb), payload)
		if err != nil {
			return "", "", err
		}
		return raw, lastSegment(raw), nil
	}
	t := jwt.NewWithClaims(jose3.SignatureAlgorithm(alg), claims)
	for name, v := range hdr {
		if name != "alg" && !PrivateHeader(name) {
			t.Header[name] = v
		}
	}
	t.Header["kid"] = k.KID
	raw, err := t.SignedString(k.Private)
	if err != nil {
		return "", "", err
	}
	return raw, lastSegment(raw), nil
}

// Decode implements jwt.Signer: the signature must verify with the key the
// header names, and the algorithm must be that key's.
func (s *Signer) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	return jwt.ParseWithClaims(token, jwt.MapClaims{}, func(t *jwt.Token) (interface{}, error) {
		kid, _ := t.Header["kid"].(string)
		k, err := s.keys.Lookup(ctx, kid)
		if err != nil {
			return nil, err
		}
		if string(t.Method) != k.Alg {
			return nil, fmt.Errorf("token algorithm %s does not match key %s", t.Method, k.Alg)
		}
		return k.Public(), nil
	})
}

// Validate implements jwt.Signer.
func (s *Signer) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}

// Hash implements jwt.Signer (for at_hash and c_hash).
func (s *Signer) Hash(_ context.Context, in []byte) ([]byte, error) {
	h := sha256.Sum256(in)
	return h[:], nil
}

// GetSignature implements jwt.Signer.
func (s *Signer) GetSignature(_ context.Context, token string) (string, error) {
	sig := lastSegment(token)
	if sig == "" {
		return "", errors.New("provider: malformed JWT")
	}
	return sig, nil
}

// GetSigningMethodLength implements jwt.Signer: SHA-256 for RS256.
func (s *Signer) GetSigningMethodLength(context.Context) int { return sha256.Size }
