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

	"github.com/tonearm-idp/tonearm/provider/fositestore"
)

// Algorithms are the only ones a client may sign with: asymmetric, so that
// nothing tonearm stores can forge a client's signature. none and HMAC
// (with which a "public key as secret" token would verify) never pass.
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// AlgorithmNames are Algorithms as strings, for discovery documents.
func AlgorithmNames() []string {
	names := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		names[i] = string(a)
	}
	return names
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
	ErrBadJWS        = errors.New("not a compact JWS signed with RS256, PS256, ES256 or EdDSA")
	ErrNoMatchingKey = errors.New("no key of the client matches the signature's kid and algorithm")
	ErrBadSignature  = errors.New("the signature does not verify with the client's keys")
)

// Keys gives each client's public keys, caching fetched sets.
type Keys struct {
	fetcher *Fetcher
	now     func() time.Time

	mu    sync.Mutex
	cache map[string]cachedSet // by client ID
	// refetched is when a client's jwks_uri was last fetched because a kid
	// was unknown.
	refetched map[string]time.Time
}

type cachedSet struct {
	url     string
	set     *jose.JSONWebKeySet
	fetched time.Time
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
		return parseSet([]byte(c.JWKS))
	}
	if c.JWKSURI == "" {
		return nil, ErrNoKeys
	}
	now := k.now()
	k.mu.Lock()
	e, ok := k.cache[c.ID]
	k.mu.Unlock()
	if !refresh && ok && e.url == c.JWKSURI && now.Sub(e.fetched) < CacheMaxAge {
		return e.set, nil
	}
	body, err := k.fetcher.Get(ctx, c.JWKSURI)
	if err != nil {
		return nil, err
	}
	set, err := parseSet(body)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.cache[c.ID] = cachedSet{url: c.JWKSURI, set: set, fetched: now}
	k.mu.Unlock()
	return set, nil
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
// payload. algs narrows Algorithms (nil: all of them); anything outside
// Algorithms is ignored. When no key matches (a rotated key under a new
// kid), a jwks_uri is fetched again, at most once per RefetchInterval per
// client.
func (k *Keys) Verify(ctx context.Context, c *fositestore.Client, compact string, algs []jose.SignatureAlgorithm) ([]byte, error) {
	allowed := Algorithms
	if len(algs) > 0 {
		allowed = nil
		for _, a := range algs {
			if slices.Contains(Algorithms, a) {
				allowed = append(allowed, a)
			}
		}
	}
	jws, err := jose.ParseSignedCompact(compact, allowed)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, ErrBadJWS
	}
	set, err := k.Set(ctx, c)
	if err != nil {
		return nil, err
	}
	payload, err := verifyWith(jws, set)
	if errors.Is(err, ErrNoMatchingKey) && c.JWKS == "" && c.JWKSURI != "" && k.mayRefetch(c.ID) {
		if set, err = k.set(ctx, c, true); err != nil {
			return nil, err
		}
		payload, err = verifyWith(jws, set)
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
		if key.Use == "enc" || (key.Algorithm != "" && key.Algorithm != string(alg) && !isEd25519Name(key.Algorithm, alg)) {
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

// isEd25519Name reports whether a key's alg is RFC 9864's fully-specified
// name of EdDSA over Ed25519, which registration accepts, while the JWS
// says EdDSA (fits then checks the key is Ed25519).
func isEd25519Name(keyAlg string, alg jose.SignatureAlgorithm) bool {
	return keyAlg == "Ed25519" && alg == jose.EdDSA
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
