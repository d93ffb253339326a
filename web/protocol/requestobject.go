package protocol

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/provider/clientkeys"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// Request objects (RFC 9101, OpenID Connect Core §6): an authorization
// request sent as a JWT signed with the client's keys, by value (request)
// or by reference (request_uri, a URL the client registered). They are
// resolved here, before fosite parses the request: fosite's own
// request-object code fetches with a bare HTTP client and verifies with
// go-jose v3, so it never sees request or request_uri; it reads the
// object's parameters as if they had been sent themselves.

// RequestObjectKeys verifies a JWS against a client's registered keys
// (jwks or jwks_uri), with algs or, when nil, every algorithm clients may
// sign with: clientkeys.Keys.
type RequestObjectKeys interface {
	Verify(ctx context.Context, client *fositestore.Client, compact string, algs []jose.SignatureAlgorithm) ([]byte, error)
}

// RequestURIFetcher fetches a client's request_uri through the guarded
// fetcher (https, public addresses, time and size limits, no redirects):
// clientkeys.Fetcher.
type RequestURIFetcher interface {
	Get(ctx context.Context, rawURL string) ([]byte, error)
}

// OnceStore records a request object's jti as used (storage.UseOnce).
type OnceStore interface {
	UseOnce(ctx context.Context, key string, now, expiresAt time.Time) error
}

// RequestObjects is what resolving request objects needs.
type RequestObjects struct {
	Keys    RequestObjectKeys
	Fetcher RequestURIFetcher
	Once    OnceStore
}

const (
	// maxRequestObjectLifetime bounds how far ahead a request object's exp
	// may lie, and how long a jti is remembered when it has no exp.
	maxRequestObjectLifetime = time.Hour
	// requestObjectSkew tolerates clocks a little ahead for nbf and iat.
	requestObjectSkew = 30 * time.Second
	// maxRequestURILength: OpenID Connect Core §6.2 caps request_uri at
	// 512 ASCII characters.
	maxRequestURILength = 512
)

// jwtClaimNames are the object's JWT claims; they are not authorization
// parameters and are not handed on (RFC 9101 §4).
var jwtClaimNames = map[string]bool{"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true}

// resolvedObject is a request object read from a request.
type resolvedObject struct {
	// params are the object's authorization parameters with client_id:
	// the only ones that count (RFC 9101 §5). Set once the signature (or
	// the client's registration for unsigned objects) vouches for them,
	// so that a later refusal may go to the object's redirect_uri.
	params url.Values
	// jti, when the object has one, is spent (spendRequestObject) once
	// the request is otherwise accepted, until until.
	jti   string
	until time.Time
}

// resolveRequestObject reads the request object that form carries (request
// or request_uri) for clientID. A refusal is an RFC 6749 error; the
// returned params are nil unless the object was verified.
func (o *OAuth) resolveRequestObject(ctx context.Context, form url.Values, clientID string) (resolvedObject, error) {
	if form.Has("request") && form.Has("request_uri") {
		return resolvedObject{}, fosite.ErrInvalidRequest.WithHint("The 'request' and 'request_uri' parameters cannot be used together (RFC 9101 §5).")
	}
	if clientID == "" {
		return resolvedObject{}, fosite.ErrInvalidRequest.WithHint("A request object needs the 'client_id' parameter beside it (RFC 9101 §5).")
	}
	client, err := o.p.Client(ctx, clientID)
	if errors.Is(err, fosite.ErrNotFound) {
		return resolvedObject{}, fosite.ErrInvalidClient.WithHint("The requested OAuth 2.0 Client does not exist.")
	}
	if err != nil {
		return resolvedObject{}, fosite.ErrServerError.WithWrap(err)
	}
	compact := form.Get("request")
	if form.Has("request_uri") {
		if compact, err = o.fetchRequestObject(ctx, client, form.Get("request_uri")); err != nil {
			return resolvedObject{}, err
		}
	}
	payload, err := o.verifyRequestObject(ctx, client, compact)
	if err != nil {
		return resolvedObject{}, err
	}
	obj, err := objectParams(payload, clientID)
	if err != nil {
		return resolvedObject{}, err
	}
	// From here the object is the client's: its redirect_uri may carry
	// the refusals that follow.
	obj.until, err = o.checkRequestObject(payload, obj.params, form, client)
	// Refused or not, fosite must not meet them (it would resolve them).
	obj.params.Del("request")
	obj.params.Del("request_uri")
	return obj, err
}

// fetchRequestObject fetches a request_uri the client registered. OpenID
// Connect Core §6.2: the fragment (a hash of the content) is not part of
// the match, nor sent.
func (o *OAuth) fetchRequestObject(ctx context.Context, client *fositestore.Client, raw string) (string, error) {
	if len(raw) > maxRequestURILength {
		return "", fosite.ErrInvalidRequestURI.WithHintf("The request_uri is longer than %d characters.", maxRequestURILength)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fosite.ErrInvalidRequestURI.WithHint("The request_uri is not an absolute URL.")
	}
	u.Fragment, u.RawFragment = "", ""
	registered := slices.ContainsFunc(client.RequestURIs, func(r string) bool {
		ru, err := url.Parse(r)
		if err != nil {
			return false
		}
		ru.Fragment, ru.RawFragment = "", ""
		return ru.String() == u.String()
	})
	if !registered {
		return "", fosite.ErrInvalidRequestURI.WithHint("The request_uri is not one the client registered (request_uris).")
	}
	body, err := o.objects.Fetcher.Get(ctx, u.String())
	if err != nil {
		return "", fosite.ErrInvalidRequestURI.WithHint("The request_uri could not be fetched.").WithWrap(err).WithDebug(err.Error())
	}
	return string(bytes.TrimSpace(body)), nil
}

// verifyRequestObject checks a request object's header and signature and
// returns its payload. Unsigned objects (alg none) are accepted only from
// a client registered with request_object_signing_alg none (OpenID Connect
// Core §6.1), and such a client's objects must be unsigned (OpenID Connect
// Registration: objects not signed with the registered algorithm are
// rejected).
func (o *OAuth) verifyRequestObject(ctx context.Context, client *fositestore.Client, compact string) ([]byte, error) {
	parts := strings.Split(compact, ".")
	if len(parts) == 5 {
		return nil, fosite.ErrInvalidRequestObject.WithHint("Encrypted request objects are not supported.")
	}
	var header struct {
		Alg  string `json:"alg"`
		Typ  string `json:"typ"`
		Crit []string
	}
	if len(parts) != 3 || decodeSegment(parts[0], &header) != nil {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object is not a JWT.")
	}
	// RFC 9101 §4: typ oauth-authz-req+jwt, or a plain JWT from clients
	// written before it; any other type is a JWT for another purpose.
	switch strings.TrimPrefix(strings.ToLower(header.Typ), "application/") {
	case "", "jwt", "oauth-authz-req+jwt":
	default:
		return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object's typ %q is not oauth-authz-req+jwt.", header.Typ)
	}
	registered := client.RequestObjectSigningAlg
	if header.Alg == "none" || registered == "none" {
		if header.Alg != "none" || registered != "none" || parts[2] != "" {
			return nil, fosite.ErrInvalidRequestObject.WithHint("Unsigned request objects are accepted only from a client registered with request_object_signing_alg none, and only those.")
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			return nil, fosite.ErrInvalidRequestObject.WithHint("The request object is not a JWT.")
		}
		return payload, nil
	}
	// Unregistered: any of clientkeys.Algorithms (asymmetric only, as for
	// client assertions).
	var algs []jose.SignatureAlgorithm
	if registered != "" {
		algs = []jose.SignatureAlgorithm{jose.SignatureAlgorithm(registered)}
	}
	payload, err := o.objects.Keys.Verify(ctx, client, compact, algs)
	if err != nil {
		if web.Unavailable(err) {
			return nil, fosite.ErrServerError.WithWrap(err)
		}
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's signature does not verify with the client's keys and its registered algorithm.").WithWrap(err).WithDebug(err.Error())
	}
	return payload, nil
}

func decodeSegment(seg string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// objectParams turns a verified object's claims into authorization
// parameters: strings as they are, numbers and booleans as written, a
// list as repeated values, an object (the claims parameter) as its JSON.
func objectParams(payload []byte, clientID string) (resolvedObject, error) {
	claims, err := objectClaims(payload)
	if err != nil {
		return resolvedObject{}, err
	}
	params := url.Values{}
	for k, raw := range claims {
		if jwtClaimNames[k] || string(raw) == "null" {
			continue
		}
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil {
			list = []json.RawMessage{raw}
		}
		for _, item := range list {
			var s string
			if json.Unmarshal(item, &s) == nil {
				params.Add(k, s)
			} else {
				params.Add(k, string(item))
			}
		}
	}
	if got := params.Get("client_id"); got != clientID {
		if params.Has("client_id") {
			return resolvedObject{}, fosite.ErrInvalidRequestObject.WithHint("The request object's client_id is not the request's client_id (RFC 9101 §5).")
		}
		params.Set("client_id", clientID)
	}
	obj := resolvedObject{params: params}
	var jti string
	if raw, ok := claims["jti"]; ok && json.Unmarshal(raw, &jti) != nil {
		return resolvedObject{}, fosite.ErrInvalidRequestObject.WithHint("The request object's jti is not a string.")
	}
	obj.jti = jti
	return obj, nil
}

func objectClaims(payload []byte) (map[string]json.RawMessage, error) {
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's payload is not a JSON object.")
	}
	return claims, nil
}

// checkRequestObject applies RFC 9101 §4 and §6.3 to a verified object:
// iss is the client, aud the issuer, exp in the future and not far off,
// nbf passed; no request inside; response_type as in the query when both
// carry it. until is how long its jti is remembered.
func (o *OAuth) checkRequestObject(payload []byte, params, form url.Values, client *fositestore.Client) (until time.Time, err error) {
	var c struct {
		Iss string          `json:"iss"`
		Aud json.RawMessage `json:"aud"`
		Exp *json.Number    `json:"exp"`
		Nbf *json.Number    `json:"nbf"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return time.Time{}, fosite.ErrInvalidRequestObject.WithHint("The request object's iss, aud, exp or nbf is malformed.")
	}
	now := o.now()
	switch {
	case params.Has("request") || params.Has("request_uri"):
		return time.Time{}, fosite.ErrInvalidRequestObject.WithHint("A request object cannot carry request or request_uri (RFC 9101 §4).")
	case c.Iss != "" && c.Iss != client.GetID():
		return time.Time{}, fosite.ErrInvalidRequestObject.WithHint("The request object's iss is not the client.")
	case len(c.Aud) > 0 && !audienceHas(c.Aud, o.p.Issuer()):
		return time.Time{}, fosite.ErrInvalidRequestObject.WithHint("The request object's aud is not this issuer.")
	case form.Has("response_type") && params.Has("response_type") && !sameWords(form.Get("response_type"), params.Get("response_type")):
		return time.Time{}, fosite.ErrInvalidRequestObject.WithHint("The request object's response_type is not the request's.")
	}
	// OpenID Connect Core §6.1: response_type is sent in the query too, and
	// an object that leaves it out takes the query's (it can only be code).
	if !params.Has("response_type") && form.Has("response_type") {
		params.Set("response_type", form.Get("response_type"))
	}
	until = now.Add(maxRequestObjectLifetime)
	if c.Exp != nil {
		exp, err := numericDate(*c.Exp)
		switch {
		case err != nil:
			return time.Time{}, fosite.ErrInvalidRequestObject.WithHint("The request object's exp is not a number.")
		case clientkeys.Expired(now, exp):
			return time.Time{}, fosite.ErrInvalidRequestObject.WithHint("The request object has expired.")
		case exp.After(until.Add(requestObjectSkew)):
			return time.Time{}, fosite.ErrInvalidRequestObject.WithHintf("The request object's exp is more than %s ahead.", maxRequestObjectLifetime)
		}
		// Remembered as long as Expired lets it through, clock skew
		// included, or it could be replayed in that last stretch.
		until = clientkeys.RememberUntil(exp)
	}
	if c.Nbf != nil {
		nbf, err := numericDate(*c.Nbf)
		if err != nil || nbf.After(now.Add(requestObjectSkew)) {
			return time.Time{}, fosite.ErrInvalidRequestObject.WithHint("The request object is not valid yet (nbf).")
		}
	}
	return until, nil
}

// spendRequestObject records the object's jti (RFC 9101 §10.8 replay): a
// second use before it expires, on any replica, is refused.
func (o *OAuth) spendRequestObject(ctx context.Context, clientID string, obj resolvedObject) error {
	if obj.jti == "" {
		return nil
	}
	err := o.objects.Once.UseOnce(ctx, "request:"+clientID+":"+obj.jti, o.now(), obj.until)
	switch {
	case errors.Is(err, storage.ErrAlreadyExists):
		return fosite.ErrInvalidRequestObject.WithHint("This request object (its jti) was used before.")
	case err != nil:
		return fosite.ErrServerError.WithWrap(err)
	}
	return nil
}

func audienceHas(raw json.RawMessage, issuer string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == issuer
	}
	var many []string
	return json.Unmarshal(raw, &many) == nil && slices.Contains(many, issuer)
}

func numericDate(n json.Number) (time.Time, error) {
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(int64(f), 0), nil
}

func sameWords(a, b string) bool {
	x, y := strings.Fields(a), strings.Fields(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
