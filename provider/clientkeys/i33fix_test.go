package clientkeys

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tonearm-idp/tonearm/provider/clientkeys/clientkeystest"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
)

func uriClient(id, uri string) *fositestore.Client {
	c := &fositestore.Client{JWKSURI: uri}
	c.ID = id
	return c
}

// A jwks_uri publishing a private key (or a symmetric or weak one) is
// refused whole, with the reason, never used: the rule of registered sets.
func TestFetchedSetMeetsTheRegistrationRules(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	good := clientkeystest.NewKey(t, jose.ES256, "good")
	for name, tc := range map[string]struct {
		key    jose.JSONWebKey
		signer clientkeystest.Key
		reason string
	}{
		"private EC key": {jose.JSONWebKey{Key: ec, KeyID: "k", Algorithm: "ES256", Use: "sig"}, clientkeystest.Key{Alg: jose.ES256, Private: ec, KID: "k"}, `holds a private key ("d")`},
		"RSA 1024":       {jose.JSONWebKey{Key: &rsa1024.PublicKey, KeyID: "k"}, clientkeystest.Key{Alg: jose.RS256, Private: rsa1024, KID: "k"}, "at least 2048"},
		"oct":            {jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "k"}, good, "symmetric"},
	} {
		t.Run(name, func(t *testing.T) {
			set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{tc.key, good.Public()}})
			js := &jwksServer{body: string(set)}
			keys := NewKeys(NewFetcher(FetchOptions{AllowLoopbackHTTP: true}))
			for _, signer := range []clientkeystest.Key{tc.signer, good} {
				_, err := keys.Verify(context.Background(), uriClient("app", js.serve(t)), signer.Sign(t, []byte("x")), nil)
				var fe *FetchError
				if !errors.As(err, &fe) || !errors.Is(err, ErrBadKeySet) || !strings.Contains(fe.Reason, tc.reason) {
					t.Fatalf("signed by %s: %v, want the set refused for %q", signer.KID, err, tc.reason)
				}
			}
		})
	}
}

// A jwks_uri that fails is fetched once a minute at most, however many
// requests name its client, one after another or all at once.
func TestFailingJWKSURIIsNotFetchedPerRequest(t *testing.T) {
	k := clientkeystest.NewKey(t, jose.ES256, "k")
	t.Run("sequential", func(t *testing.T) {
		srv, fetches := countingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://10.0.0.1/jwks", http.StatusFound)
		})
		keys := NewKeys(NewFetcher(FetchOptions{AllowLoopbackHTTP: true}))
		now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
		keys.now = func() time.Time { return now }
		c := uriClient("app", srv.URL+"/jwks")
		for i := range 10 {
			_, err := keys.Verify(context.Background(), c, k.Sign(t, []byte("x")), nil)
			var fe *FetchError
			if !errors.As(err, &fe) || !strings.Contains(fe.Reason, "redirect") {
				t.Fatalf("request %d: %v, want the redirect refused", i, err)
			}
			now = now.Add(time.Second)
		}
		if n := fetches.Load(); n != 1 {
			t.Fatalf("10 requests in 10 s: %d fetches, want 1", n)
		}
		now = now.Add(RefetchInterval)
		_, _ = keys.Verify(context.Background(), c, k.Sign(t, []byte("x")), nil)
		if n := fetches.Load(); n != 2 {
			t.Fatalf("a minute later: %d fetches, want 2", n)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		release := make(chan struct{})
		srv, fetches := countingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
			select { // hold the answer, as a slow server would
			case <-release:
			case <-r.Context().Done():
			}
			http.Error(w, "down", http.StatusServiceUnavailable)
		})
		keys := NewKeys(NewFetcher(FetchOptions{AllowLoopbackHTTP: true}))
		c := uriClient("app", srv.URL+"/jwks")
		var wg sync.WaitGroup
		errs := make(chan error, 30)
		for range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := keys.Verify(context.Background(), c, k.Sign(t, []byte("x")), nil)
				errs <- err
			}()
		}
		time.Sleep(500 * time.Millisecond) // all 30 are waiting
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if !errors.Is(err, ErrFetch) {
				t.Fatalf("a request: %v", err)
			}
		}
		if n := fetches.Load(); n != 1 {
			t.Fatalf("30 concurrent requests: %d fetches, want 1", n)
		}
		// And the failure is remembered: the next request fails fast.
		start := time.Now()
		if _, err := keys.Verify(context.Background(), c, k.Sign(t, []byte("x")), nil); !errors.Is(err, ErrFetch) || fetches.Load() != 1 || time.Since(start) > time.Second {
			t.Fatalf("after the failure: %v, %d fetches", err, fetches.Load())
		}
	})
}

// openid-client 6 signs with alg "Ed25519" (RFC 9864), EdDSA's fully
// specified name: accepted as EdDSA is, with an Ed25519 key only, and parsed
// as strictly as go-jose parses what it knows.
func TestVerifyEd25519Name(t *testing.T) {
	ed := clientkeystest.NewKey(t, jose.EdDSA, "ed")
	es := clientkeystest.NewKey(t, jose.ES256, "es")
	c := &fositestore.Client{JWKS: clientkeystest.JWKS(t, ed, es)}
	c.ID = "app"
	keys := NewKeys(nil)
	verify := func(compact string, algs ...jose.SignatureAlgorithm) error {
		_, err := keys.Verify(context.Background(), c, compact, algs)
		return err
	}
	good := ed.SignEd25519(t, nil, []byte("hello"))
	for _, algs := range [][]jose.SignatureAlgorithm{nil, {jose.EdDSA}, {Ed25519}} {
		if payload, err := keys.Verify(context.Background(), c, good, algs); err != nil || string(payload) != "hello" {
			t.Fatalf("Ed25519 with algs %v: %q %v", algs, payload, err)
		}
	}
	// And a registered Ed25519 admits the EdDSA name.
	if err := verify(ed.Sign(t, []byte("x")), Ed25519); err != nil {
		t.Fatalf("EdDSA where Ed25519 is registered: %v", err)
	}
	if p, err := UnverifiedPayload(good); err != nil || string(p) != "hello" {
		t.Fatalf("UnverifiedPayload: %q %v", p, err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	parts := strings.Split(good, ".")
	impostor := clientkeystest.NewKey(t, jose.EdDSA, "ed")
	for name, tc := range map[string]struct {
		compact string
		algs    []jose.SignatureAlgorithm
		want    error
	}{
		"another algorithm registered": {good, []jose.SignatureAlgorithm{jose.RS256}, ErrBadJWS},
		"payload changed":              {parts[0] + "." + b64([]byte("hellO")) + "." + parts[2], nil, ErrBadSignature},
		"wrong key":                    {impostor.SignEd25519(t, nil, []byte("x")), nil, ErrBadSignature},
		"kid of an EC key":             {ed.SignEd25519(t, map[string]any{"kid": "es"}, []byte("x")), nil, ErrNoMatchingKey},
		"crit":                         {ed.SignEd25519(t, map[string]any{"crit": []string{"exp"}, "exp": 1}, []byte("x")), nil, ErrBadJWS},
		"b64 false":                    {ed.SignEd25519(t, map[string]any{"b64": false, "crit": []string{"b64"}}, []byte("x")), nil, ErrBadJWS},
		"b64 alone":                    {ed.SignEd25519(t, map[string]any{"b64": true}, []byte("x")), nil, ErrBadJWS},
		"kid not a string":             {ed.SignEd25519(t, map[string]any{"kid": 1}, []byte("x")), nil, ErrBadJWS},
		"padded base64":                {parts[0] + "." + parts[1] + "=." + parts[2], nil, ErrBadJWS},
		"four parts":                   {good + ".", nil, ErrBadJWS},
		"short signature":              {parts[0] + "." + parts[1] + "." + parts[2][:40], nil, ErrBadJWS},
		"duplicate alg member": {b64([]byte(`{"alg":"Ed25519","kid":"ed","alg":"Ed25519"}`)) + "." + parts[1] + "." + parts[2],
			nil, ErrBadJWS},
	} {
		if err := verify(tc.compact, tc.algs...); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// A key registered for another algorithm is not used with Ed25519.
	pub := ed.Public()
	pub.Algorithm = "ES256"
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	c.JWKS = string(set)
	if err := verify(good); !errors.Is(err, ErrNoMatchingKey) {
		t.Errorf("key with alg ES256: %v", err)
	}
	// A key published with alg Ed25519 serves EdDSA signatures too.
	pub.Algorithm = "Ed25519"
	set, _ = json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	c.JWKS = string(set)
	if err := verify(ed.Sign(t, []byte("x"))); err != nil {
		t.Errorf("EdDSA JWS, key with alg Ed25519: %v", err)
	}
}
