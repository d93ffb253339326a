package clientkeys

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/tonearm-idp/tonearm/provider/fositestore"
)

// Algorithms are the only ones a client may sign with: asymmetric, so that
// nothing tonearm stores can forge a client's signature. none and HMAC
// (with which a "public key as secret" token would verify) never pass.
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// AlgorithmNames are the names of the algorithms Verify accepts, for
// discovery documents and registration: Algorithms and Ed25519 (RFC 9864,
// EdDSA's fully specified name).
func AlgorithmNames() []string {
	names := make([]string, 0, len(Algorithms)+1)
	for _, a := range Algorithms {
		names = append(names, string(a))
	}
	return append(names, string(Ed25519))
}

const (
	// CacheMaxAge is how long a fetched jwks_uri is used before it is
	// fetched again.
	CacheMaxAge = 10 * time.Minute
	// RefetchInterval bounds refetches on an unknown kid per client, so a
	// stream of made-up kids cannot make tonearm hammer a client's server.
	RefetchInterval = time.Minute
)

// Errors of Set and Verify. Fetch failures are *FetchError.
var (
	ErrNoKeys        = errors.New("the client has no registered keys (jwks or jwks_uri)")
	ErrBadKeySet     = errors.New("the client's key set is not a valid JSON Web Key Set")
	ErrBadJWS        = errors.New("not a compact JWS signed with RS256, PS256, ES256 or EdDSA (Ed25519)")
	ErrNoMatchingKey = errors.New("no key of the client matches the signature's kid and algorithm")
	ErrBadSignature  = errors.New("the signature does not verify with the client's keys")
)

// Keys gives each client's public keys, caching fetched sets.
type Keys struct {
	fetcher *Fetcher
	now     func() time.Time

	// flight collapses concurrent fetches of one client's jwks_uri into
	// one: anyone who knows a client ID can send assertions, and without
	// it N requests would make N fetches of a slow URL.
	flight singleflight.Group

	mu    sync.Mutex
	cache map[string]cachedSet // by client ID
	// refetched is when a client's jwks_uri was last fetched because a kid
	// was unknown.
	refetched map[string]time.Time
}

type cachedSet struct {
	url     string
	set     *jose.JSONWebKeySet // nil until a fetch succeeded
	fetched time.Time
	// failed is when a fetch of url last failed, and failure why: for
	// RefetchInterval every request fails fast with that reason instead
	// of fetching again (a negative cache), so a failing URL is not
	// fetched once per request by unauthenticated callers.
	failed  time.Time
	failure error
}

// NewKeys returns a Keys that fetches with f.
func NewKeys(f *Fetcher) *Keys {
	return &Keys{fetcher: f, now: time.Now, cache: map[string]cachedSet{}, refetched: map[string]time.Time{}}
}

// Fetcher is the fetcher the key sets come through, for the other client
// URLs (request_uri, sector_identifier_uri): one set of rules for all.
func (k *Keys) Fetcher() *Fetcher { return k.fetcher }

// Set returns the client's key set: its inline jwks, or its jwks_uri
// fetched and cached for CacheMaxAge.
func (k *Keys) Set(ctx context.Context, c *fositestore.Client) (*jose.JSONWebKeySet, error) {
	return k.set(ctx, c, false)
}

func (k *Keys) set(ctx context.Context, c *fositestore.Client, refresh bool) (*jose.JSONWebKeySet, error) {
	if c.JWKS != "" {
		// Checked by CheckSet when it was registered.
		return parseSet([]byte(c.JWKS))
	}
	if c.JWKSURI == "" {
		return nil, ErrNoKeys
	}
	now := k.now()
	k.mu.Lock()
	e, ok := k.cache[c.ID]
	k.mu.Unlock()
	if ok && e.url == c.JWKSURI {
		if !refresh && e.set != nil && now.Sub(e.fetched) < CacheMaxAge {
			return e.set, nil
		}
		if e.failure != nil && now.Sub(e.failed) < RefetchInterval {
			return nil, e.failure
		}
	}
	v, err, _ := k.flight.Do(c.ID+"\n"+c.JWKSURI, func() (any, error) {
		// Not the first caller's cancellation: the fetch serves all of
		// them, and the fetcher bounds its time itself.
		return k.fetch(context.WithoutCancel(ctx), c.ID, c.JWKSURI)
	})
	if err != nil {
		return nil, err
	}
	return v.(*jose.JSONWebKeySet), nil
}

// fetch fetches and checks a client's jwks_uri and caches the outcome,
// a set or a failure.
func (k *Keys) fetch(ctx context.Context, clientID, uri string) (*jose.JSONWebKeySet, error) {
	body, err := k.fetcher.Get(ctx, uri)
	var set *jose.JSONWebKeySet
	if err == nil {
		// The rule of registered sets (no private key, no weak key…):
		// a set that breaks it is refused whole, never used in part.
		var canonical string
		if canonical, err = CheckSet(string(body)); err != nil {
			err = &FetchError{URL: uri, Reason: "its key set is refused: " + err.Error(), Err: ErrBadKeySet}
		} else {
			set, err = parseSet([]byte(canonical))
		}
	}
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.cache[clientID]
	if e.url != uri {
		e = cachedSet{url: uri}
	}
	if err != nil {
		e.failed, e.failure = now, err
	} else {
		e.set, e.fetched, e.failure = set, now, nil
	}
	k.cache[clientID] = e
	return set, err
}

func parseSet(b []byte) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, ErrBadKeySet
	}
	return &set, nil
}

// mayRefetch reports whether the client's jwks_uri may be fetched again
// for an unknown kid now, and if so records it.
func (k *Keys) mayRefetch(clientID string) bool {
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if last, ok := k.refetched[clientID]; ok && now.Sub(last) < RefetchInterval {
		return false
	}
	k.refetched[clientID] = now
	return true
}

// Verify checks a compact JWS against the client's keys and returns its
// payload. algs narrows Algorithms (nil: all of them; EdDSA and Ed25519
// stand for each other); anything outside Algorithms is ignored. When no
// key matches (a rotated key under a new kid), a jwks_uri is fetched
// again, at most once per RefetchInterval per client.
func (k *Keys) Verify(ctx context.Context, c *fositestore.Client, compact string, algs []jose.SignatureAlgorithm) ([]byte, error) {
	allowed := Algorithms
	if len(algs) > 0 {
		allowed = nil
		for _, a := range Algorithms {
			if slices.ContainsFunc(algs, func(b jose.SignatureAlgorithm) bool { return sameAlg(a, b) }) {
				allowed = append(allowed, a)
			}
		}
	}
	var verify func(*jose.JSONWebKeySet) ([]byte, error)
	if headerAlg(compact) == Ed25519 {
		if !slices.Contains(allowed, jose.EdDSA) {
			return nil, ErrBadJWS
		}
		jws, err := parseEd25519(compact)
		if err != nil {
			return nil, err
		}
		verify = jws.verifyWith
	} else {
		jws, err := jose.ParseSignedCompact(compact, allowed)
		if err != nil || len(jws.Signatures) != 1 {
			return nil, ErrBadJWS
		}
		verify = func(set *jose.JSONWebKeySet) ([]byte, error) { return verifyWith(jws, set) }
	}
	set, err := k.Set(ctx, c)
	if err != nil {
		return nil, err
	}
	payload, err := verify(set)
	if errors.Is(err, ErrNoMatchingKey) && c.JWKS == "" && c.JWKSURI != "" && k.mayRefetch(c.ID) {
		if set, err = k.set(ctx, c, true); err != nil {
			return nil, err
		}
		payload, err = verify(set)
	}
	return payload, err
}

// verifyWith tries the keys that fit the header's kid and algorithm.
func verifyWith(jws *jose.JSONWebSignature, set *jose.JSONWebKeySet) ([]byte, error) {
	h := jws.Signatures[0].Header
	alg := jose.SignatureAlgorithm(h.Algorithm)
	candidates := set.Keys
	if h.KeyID != "" {
		candidates = set.Key(h.KeyID)
	}
	tried := false
	for _, key := range candidates {
		if key.Use == "enc" || (key.Algorithm != "" && !sameAlg(jose.SignatureAlgorithm(key.Algorithm), alg)) {
			continue
		}
		pub := key.Public()
		if !pub.Valid() || !fits(pub.Key, alg) {
			continue
		}
		tried = true
		if payload, err := jws.Verify(pub); err == nil {
			return payload, nil
		}
	}
	if !tried {
		return nil, ErrNoMatchingKey
	}
	return nil, ErrBadSignature
}

// fits reports whether key is the kind of public key alg is defined for, so
// that a key is never used with an algorithm of another family.
func fits(key any, alg jose.SignatureAlgorithm) bool {
	switch alg {
	case jose.RS256, jose.PS256:
		k, ok := key.(*rsa.PublicKey)
		return ok && k.N.BitLen() >= 2048 // RFC 7518 §3.3
	case jose.ES256:
		k, ok := key.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P256()
	case jose.EdDSA:
		_, ok := key.(ed25519.PublicKey)
		return ok
	}
	return false
}
