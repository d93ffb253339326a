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
	Client   *http.Client
	Now      func() time.Time

	mu        sync.Mutex
	keys      jose.JSONWebKeySet
	fetchedAt time.Time
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
// authorization server and the scopes to ask for.
func Handler(v *Verifier) http.Handler {
	mux := http.NewServeMux()
	metadata := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"resource": v.Audience, "authorization_servers": []string{v.Issuer}, "scopes_supported": []string{Scope},
			"bearer_methods_supported": []string{"header"}, "resource_name": "Listens",
		})
	}
	mux.HandleFunc("GET "+MetadataPath(v.Audience), metadata)
	if MetadataPath(v.Audience) != MetadataPath("") {
		mux.HandleFunc("GET "+MetadataPath(""), metadata)
	}
	mux.HandleFunc("GET /listens", func(w http.ResponseWriter, r *http.Request) {
		t, ok := bearer(w, r, v)
		if !ok {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"user": t.Subject, "client": t.ClientID, "listens": []string{}})
	})
	mux.HandleFunc("DELETE /listens", func(w http.ResponseWriter, r *http.Request) {
		t, ok := bearer(w, r, v)
		if !ok {
			return
		}
		// RFC 9470: the token is valid but the sign-in behind it is not
		// strong (or recent) enough; say what would be.
		acr, _ := t.Claims["acr"].(string)
		authTime, _ := t.Claims["auth_time"].(float64)
		if acr != MultiFactor || v.now().Sub(time.Unix(int64(authTime), 0)) > StepUpMaxAge {
			w.Header().Set("WWW-Authenticate", challenge(r, v)+fmt.Sprintf(`, error="insufficient_user_authentication", error_description="Deleting listens needs a sign-in with two factors within %d minutes", acr_values="%s", max_age=%d`,
				int(StepUpMaxAge/time.Minute), MultiFactor, int(StepUpMaxAge/time.Second)))
			http.Error(w, "a recent sign-in with two factors is required", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"user": t.Subject, "deleted": 0})
	})
	return mux
}

// challenge is the start of every WWW-Authenticate answer: the realm and
// where the API's metadata is (RFC 9728 §5.1), on the host the client
// reached.
func challenge(r *http.Request, v *Verifier) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return `Bearer realm="listens", resource_metadata="` + scheme + "://" + r.Host + MetadataPath(v.Audience) + `"`
}

// bearer verifies the request's token for Scope, answering the error
// itself when it fails.
func bearer(w http.ResponseWriter, r *http.Request, v *Verifier) (Token, bool) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		w.Header().Set("WWW-Authenticate", challenge(r, v))
		http.Error(w, "a bearer token is required", http.StatusUnauthorized)
		return Token{}, false
	}
	t, err := v.Verify(r.Context(), raw, Scope)
	switch {
	case errors.Is(err, ErrInsufficientScope):
		w.Header().Set("WWW-Authenticate", challenge(r, v)+`, error="insufficient_scope", scope="`+Scope+`"`)
		http.Error(w, "the token lacks "+Scope, http.StatusForbidden)
		return t, false
	case errors.Is(err, ErrInvalidToken):
		w.Header().Set("WWW-Authenticate", challenge(r, v)+`, error="invalid_token", error_description="`+strings.ReplaceAll(err.Error(), `"`, "'")+`"`)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return t, false
	case err != nil:
		log.Printf("verifying a token: %v", err)
		http.Error(w, "cannot verify tokens right now", http.StatusServiceUnavailable)
		return t, false
	}
	return t, true
}

func main() {
	issuer := flag.String("issuer", "http://127.0.0.1:8080", "tonearm's issuer URL")
	id := flag.String("id", "https://api.example.org/listens", "this API's identifier (registered with tonearm apis create)")
	listen := flag.String("listen", "127.0.0.1:9090", "listen address")
	flag.Parse()
	v := &Verifier{Issuer: *issuer, Audience: *id}
	log.Printf("serving GET /listens on %s for tokens of %s with aud %s and scope %s", *listen, *issuer, *id, Scope)
	srv := &http.Server{Addr: *listen, Handler: Handler(v), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
