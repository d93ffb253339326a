// Command resource-server is a small API protected by tonearm: it serves
// GET /listens to bearers of an access token issued for it (aud = its
// identifier) with the scope listens:read, and DELETE /listens (deleting
// someone's listening history is sensitive) only to a person who signed in
// with two factors within the last 10 minutes: otherwise it answers 401
// with the RFC 9470 step-up challenge (error="insufficient_user_authentication",
// acr_values, max_age), and the app sends the person to tonearm again with
// those acr_values and max_age. Every 401 names the API's protected
// resource metadata (RFC 9728: resource_metadata=…), served at
// /.well-known/oauth-protected-resource/listens, which names tonearm as
// the authorization server and the scopes to ask for.
//
//	go run ./examples/resource-server -issuer http://127.0.0.1:8080 -id https://api.example.org/listens -listen 127.0.0.1:9090
//
// It verifies tokens offline against tonearm's JWKS, the way any resource
// server should: the signature, by the key the token's kid names in the
// JWKS (fetched through discovery, cached, fetched again for an unknown kid
// at most every 30 seconds), with ES256 or RS256 only (never none or
// HS256); typ at+jwt (RFC 9068), so an ID token is not taken for an access
// token; iss, aud containing its identifier, exp; and scope containing
// listens:read (403 insufficient_scope otherwise).
//
// It also takes DPoP-bound tokens (RFC 9449, dpop.go): Authorization: DPoP
// with a DPoP proof signed by the key whose thumbprint the token carries in
// cnf.jkt; such a token sent as a bearer token is refused. And with
// -summary-api it serves GET /listens/summary by exchanging the caller's
// token for one to another API (RFC 8693, exchange.go):
//
//	go run ./examples/resource-server -id https://api.example.org/listens -listen 127.0.0.1:9090 \
//	  -summary-api https://api.example.org/stats -summary-api-url http://127.0.0.1:9091 -client-id listens-backend  # secret in $CLIENT_SECRET
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Scope is what GET /listens needs.
const Scope = "listens:read"

// MultiFactor is the acr of a sign-in with two factors (tonearm's
// acr_values_supported); StepUpMaxAge how recent that sign-in must be for
// DELETE /listens.
const (
	MultiFactor  = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
	StepUpMaxAge = 10 * time.Minute
)

// Verifier checks tonearm access tokens for one API.
type Verifier struct {
	Issuer   string // exactly as in tokens
	Audience string // this API's identifier
	Scope    string // what GET /listens needs; Scope when empty
	URL      string // where clients reach this API (DPoP proofs name it in htu)
	Client   *http.Client
	Now      func() time.Time

	mu        sync.Mutex
	keys      jose.JSONWebKeySet
	fetchedAt time.Time
	proofs    proofs
}

func (v *Verifier) scope() string {
	if v.Scope != "" {
		return v.Scope
	}
	return Scope
}

// Token is what a verified access token says.
type Token struct {
	Subject, ClientID string
	Scopes            []string
	Claims            map[string]any
}

// Errors of Verify: ErrInvalidToken is a 401, ErrInsufficientScope a 403.
var (
	ErrInvalidToken      = errors.New("invalid_token")
	ErrInsufficientScope = errors.New("insufficient_scope")
)

// refetchEvery bounds how often an unknown kid makes the verifier fetch the
// JWKS again (a flood of made-up kids must not become a flood of fetches).
const refetchEvery = 30 * time.Second

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) fetchKeys(ctx context.Context) error {
	c := v.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, c, strings.TrimRight(v.Issuer, "/")+"/.well-known/openid-configuration", &meta); err != nil {
		return err
	}
	if meta.Issuer != v.Issuer || meta.JWKSURI == "" {
		return fmt.Errorf("discovery names issuer %q, want %q", meta.Issuer, v.Issuer)
	}
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, c, meta.JWKSURI, &set); err != nil {
		return err
	}
	v.keys, v.fetchedAt = set, v.now()
	return nil
}

func getJSON(ctx context.Context, c *http.Client, url string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(dst)
}

// key returns the public key for kid, fetching the JWKS when it is unknown
// (a rotated key) and the last fetch is not too recent.
func (v *Verifier) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if k := v.keys.Key(kid); len(k) == 1 {
		return &k[0], nil
	}
	if !v.fetchedAt.IsZero() && v.now().Sub(v.fetchedAt) < refetchEvery {
		return nil, ErrInvalidToken
	}
	if err := v.fetchKeys(ctx); err != nil {
		return nil, err
	}
	if k := v.keys.Key(kid); len(k) == 1 {
		return &k[0], nil
	}
	return nil, ErrInvalidToken
}

// Verify checks a bearer token for scope.
func (v *Verifier) Verify(ctx context.Context, raw, scope string) (Token, error) {
	obj, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil || len(obj.Signatures) != 1 {
		return Token{}, ErrInvalidToken
	}
	h := obj.Signatures[0].Protected
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return Token{}, ErrInvalidToken
	}
	k, err := v.key(ctx, h.KeyID)
	if err != nil {
		if errors.Is(err, ErrInvalidToken) {
			return Token{}, err
		}
		return Token{}, fmt.Errorf("fetching tonearm's keys: %w", err)
	}
	if k.Algorithm != "" && k.Algorithm != h.Algorithm {
		return Token{}, ErrInvalidToken
	}
	payload, err := obj.Verify(k.Key)
	if err != nil {
		return Token{}, ErrInvalidToken
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		return Token{}, ErrInvalidToken
	}
	exp, _ := c["exp"].(float64)
	switch {
	case c["iss"] != v.Issuer:
		return Token{}, fmt.Errorf("%w: issued by %v, not %s", ErrInvalidToken, c["iss"], v.Issuer)
	case !audienceHas(c["aud"], v.Audience):
		// The usual mistake: a token asked for without this API's scope
		// (or resource) is meant for someone else.
		return Token{}, fmt.Errorf("%w: not meant for this API (its aud does not include %s; ask for one of its scopes)", ErrInvalidToken, v.Audience)
	case int64(exp) <= v.now().Unix():
		return Token{}, fmt.Errorf("%w: expired", ErrInvalidToken)
	}
	sub, _ := c["sub"].(string)
	clientID, _ := c["client_id"].(string)
	scopes, _ := c["scope"].(string)
	t := Token{Subject: sub, ClientID: clientID, Scopes: strings.Fields(scopes), Claims: c}
	if !slices.Contains(t.Scopes, scope) {
		return t, ErrInsufficientScope
	}
	return t, nil
}

func audienceHas(aud any, id string) bool {
	switch a := aud.(type) {
	case string:
		return a == id
	case []any:
		for _, x := range a {
			if x == id {
				return true
			}
		}
	}
	return false
}

// MetadataPath is where the API's RFC 9728 metadata is: the well-known
// prefix, then the path of its identifier.
func MetadataPath(id string) string {
	path := ""
	if u, err := url.Parse(id); err == nil {
		path = strings.TrimRight(u.Path, "/")
	}
	return "/.well-known/oauth-protected-resource" + path
}

// Handler serves GET /listens, DELETE /listens and the API's protected
// resource metadata (RFC 9728), so a client that meets a 401 finds the
// authorization server and the scopes to ask for; with an Exchanger, also
// GET /listens/summary, which calls another API for the caller (exchange.go).
func Handler(v *Verifier, x *Exchanger) http.Handler {
	mux := http.NewServeMux()
	metadata := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"resource": v.Audience, "authorization_servers": []string{v.Issuer}, "scopes_supported": []string{v.scope()},
			"bearer_methods_supported": []string{"header"}, "resource_name": "Listens",
			"dpop_signing_alg_values_supported": ProofAlgs, // RFC 9728 §2
		})
	}
	mux.HandleFunc("GET "+MetadataPath(v.Audience), metadata)
	if MetadataPath(v.Audience) != MetadataPath("") {
		mux.HandleFunc("GET "+MetadataPath(""), metadata)
	}
	mux.HandleFunc("GET /listens", func(w http.ResponseWriter, r *http.Request) {
		t, _, ok := authorize(w, r, v)
		if !ok {
			return
		}
		answer := map[string]any{"user": t.Subject, "client": t.ClientID, "listens": sampleListens}
		if act, ok := t.Claims["act"]; ok {
			// RFC 8693 §4.1: who calls on the person's behalf, when the
			// token came from a token exchange.
			answer["act"] = act
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	})
	mux.HandleFunc("DELETE /listens", func(w http.ResponseWriter, r *http.Request) {
		t, scheme, ok := authorize(w, r, v)
		if !ok {
			return
		}
		// RFC 9470: the token is valid but the sign-in behind it is not
		// strong (or recent) enough; say what would be.
		acr, _ := t.Claims["acr"].(string)
		authTime, _ := t.Claims["auth_time"].(float64)
		if acr != MultiFactor || v.now().Sub(time.Unix(int64(authTime), 0)) > StepUpMaxAge {
			w.Header().Set("WWW-Authenticate", challenge(r, v, scheme)+fmt.Sprintf(`, error="insufficient_user_authentication", error_description="Deleting listens needs a sign-in with two factors within %d minutes", acr_values="%s", max_age=%d`,
				int(StepUpMaxAge/time.Minute), MultiFactor, int(StepUpMaxAge/time.Second)))
			http.Error(w, "a recent sign-in with two factors is required", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"user": t.Subject, "deleted": 0})
	})
	if x != nil {
		mux.HandleFunc("GET /listens/summary", func(w http.ResponseWriter, r *http.Request) {
			t, _, ok := authorize(w, r, v)
			if ok {
				x.summary(w, r, t)
			}
		})
	}
	return mux
}

// A listen is one track played; every user of this example has the same.
type listen struct {
	Artist string `json:"artist"`
	Track  string `json:"track"`
}

var sampleListens = []listen{{"Nina Simone", "Feeling Good"}, {"Nina Simone", "Sinnerman"}, {"Miles Davis", "So What"}}

// challenge is the start of a WWW-Authenticate answer in scheme (Bearer or
// DPoP): the realm and where the API's metadata is (RFC 9728 §5.1), on the
// host the client reached; a DPoP challenge names the proof algorithms it
// takes (RFC 9449 §7.1).
func challenge(r *http.Request, v *Verifier, scheme string) string {
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	c := scheme + ` realm="listens", resource_metadata="` + proto + "://" + r.Host + MetadataPath(v.Audience) + `"`
	if scheme == "DPoP" {
		c += fmt.Sprintf(`, algs="%s"`, strings.Trim(fmt.Sprint(ProofAlgs), "[]"))
	}
	return c
}

// authorize verifies the request's access token for the API's scope, a
// bearer token (Authorization: Bearer) or a DPoP-bound one (Authorization:
// DPoP and a DPoP proof, RFC 9449 §7.1), answering the error itself when it
// fails. It returns the scheme the token must be sent with.
func authorize(w http.ResponseWriter, r *http.Request, v *Verifier) (Token, string, bool) {
	// The scheme's name is case-insensitive (RFC 9110 §11.1).
	sent, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	for _, s := range []string{"Bearer", "DPoP"} {
		if strings.EqualFold(sent, s) {
			sent = s
		}
	}
	if (sent != "Bearer" && sent != "DPoP") || raw == "" {
		// Either scheme will do: offer both (RFC 9449 §7.2).
		w.Header().Add("WWW-Authenticate", challenge(r, v, "Bearer"))
		w.Header().Add("WWW-Authenticate", challenge(r, v, "DPoP"))
		http.Error(w, "an access token is required", http.StatusUnauthorized)
		return Token{}, "", false
	}
	scheme := sent
	t, err := v.Verify(r.Context(), raw, v.scope())
	if err == nil || errors.Is(err, ErrInsufficientScope) {
		if t.jkt() != "" {
			// Errors about a bound token are told in its scheme, even when
			// it came as a bearer token (RFC 9449 §7.1).
			scheme = "DPoP"
		}
		if bindErr := v.checkBinding(r, sent, raw, t); bindErr != nil {
			err = bindErr
		}
	}
	quote := func(err error) string { return strings.ReplaceAll(err.Error(), `"`, "'") }
	switch {
	case errors.Is(err, ErrInsufficientScope):
		w.Header().Set("WWW-Authenticate", challenge(r, v, scheme)+`, error="insufficient_scope", scope="`+v.scope()+`"`)
		http.Error(w, "the token lacks "+v.scope(), http.StatusForbidden)
		return t, scheme, false
	case errors.Is(err, ErrInvalidProof):
		w.Header().Set("WWW-Authenticate", challenge(r, v, "DPoP")+`, error="invalid_dpop_proof", error_description="`+quote(err)+`"`)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return t, scheme, false
	case errors.Is(err, ErrInvalidToken):
		w.Header().Set("WWW-Authenticate", challenge(r, v, scheme)+`, error="invalid_token", error_description="`+quote(err)+`"`)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return t, scheme, false
	case err != nil:
		log.Printf("verifying a token: %v", err)
		http.Error(w, "cannot verify tokens right now", http.StatusServiceUnavailable)
		return t, scheme, false
	}
	return t, scheme, true
}

func main() {
	issuer := flag.String("issuer", "http://127.0.0.1:8080", "tonearm's issuer URL")
	id := flag.String("id", "https://api.example.org/listens", "this API's identifier (registered with tonearm apis create)")
	scope := flag.String("scope", Scope, "the scope GET /listens needs (one of the API's scopes)")
	listen := flag.String("listen", "127.0.0.1:9090", "listen address")
	external := flag.String("url", "", "the URL clients reach this API at, as DPoP proofs name it (default http://LISTEN)")
	var x Exchanger
	flag.StringVar(&x.Target, "summary-api", "", "the identifier of the API GET /listens/summary calls (off when empty)")
	flag.StringVar(&x.TargetURL, "summary-api-url", "", "where that API serves GET /listens")
	flag.StringVar(&x.ClientID, "client-id", "", "this API's client ID at tonearm, for token exchange")
	flag.StringVar(&x.ClientSecret, "client-secret", os.Getenv("CLIENT_SECRET"), "its client secret (or $CLIENT_SECRET)")
	flag.Parse()
	if *external == "" {
		*external = "http://" + *listen
	}
	v := &Verifier{Issuer: *issuer, Audience: *id, Scope: *scope, URL: *external}
	var xp *Exchanger
	if x.Target != "" {
		if x.TargetURL == "" || x.ClientID == "" || x.ClientSecret == "" {
			log.Fatal("-summary-api needs -summary-api-url, -client-id and -client-secret")
		}
		x.Issuer, xp = *issuer, &x
	}
	log.Printf("serving GET /listens on %s (%s) for tokens of %s with aud %s and scope %s", *listen, *external, *issuer, *id, *scope)
	srv := &http.Server{Addr: *listen, Handler: Handler(v, xp), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
