package main

// Token exchange (RFC 8693): to answer GET /listens/summary this API needs
// the person's listens from another API. Forwarding the caller's token would
// not do (its aud is this API, and the other API must refuse it), and calling
// with this API's own client credentials would lose the person. So it asks
// tonearm for a token for the other API on the person's behalf: tonearm checks
// that the other API names this client (tonearm apis update … --exchange-from),
// narrows the scopes to what the person granted, and records this client in
// the new token's act claim (§4.1).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// RFC 8693 §2.1 and §3.
const (
	exchangeGrant   = "urn:ietf:params:oauth:grant-type:token-exchange"
	accessTokenType = "urn:ietf:params:oauth:token-type:access_token"
)

// Exchanger gets tokens for the API at TargetURL (identifier Target) in
// exchange for the caller's, as the tonearm client ClientID.
type Exchanger struct {
	Issuer, ClientID, ClientSecret string
	Target, TargetURL              string
	Client                         *http.Client

	mu            sync.Mutex
	tokenEndpoint string
}

// errRefused is tonearm saying no to an exchange (an OAuth error, RFC 6749
// §5.2); Code is its error.
type errRefused struct{ Code, Description string }

func (e *errRefused) Error() string {
	return "tonearm refused the exchange: " + e.Code + " " + e.Description
}

func (x *Exchanger) client() *http.Client {
	if x.Client != nil {
		return x.Client
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// endpoint finds the token endpoint through discovery, once.
func (x *Exchanger) endpoint(ctx context.Context) (string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.tokenEndpoint == "" {
		var meta struct {
			TokenEndpoint string `json:"token_endpoint"`
		}
		if err := getJSON(ctx, x.client(), strings.TrimRight(x.Issuer, "/")+"/.well-known/openid-configuration", &meta); err != nil {
			return "", err
		}
		x.tokenEndpoint = meta.TokenEndpoint
	}
	return x.tokenEndpoint, nil
}

// Exchange trades subjectToken (an access token tonearm issued to the
// person's app for this API) for an access token for the Target API.
func (x *Exchanger) Exchange(ctx context.Context, subjectToken string) (string, error) {
	endpoint, err := x.endpoint(ctx)
	if err != nil {
		return "", err
	}
	form := url.Values{
		"grant_type":         {exchangeGrant},
		"subject_token":      {subjectToken},
		"subject_token_type": {accessTokenType},
		"resource":           {x.Target}, // RFC 8707: the API the new token is for
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 §2.3.1: the ID and secret are form-encoded before Basic.
	req.SetBasicAuth(url.QueryEscape(x.ClientID), url.QueryEscape(x.ClientSecret))
	resp, err := x.client().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken     string `json:"access_token"`
		IssuedTokenType string `json:"issued_token_type"`
		Error           string `json:"error"`
		Description     string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("token endpoint: %s", resp.Status)
	}
	switch {
	case body.Error != "":
		return "", &errRefused{body.Error, body.Description}
	case resp.StatusCode != http.StatusOK || body.AccessToken == "" || body.IssuedTokenType != accessTokenType:
		return "", fmt.Errorf("token endpoint: %s, issued_token_type %q", resp.Status, body.IssuedTokenType)
	}
	return body.AccessToken, nil
}

// summary answers GET /listens/summary for the verified token t: it
// exchanges the caller's token, reads the person's listens from the other
// API with the new one, and counts them.
func (x *Exchanger) summary(w http.ResponseWriter, r *http.Request, t Token) {
	_, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	tok, err := x.Exchange(r.Context(), raw)
	var refused *errRefused
	switch {
	case errors.As(err, &refused) && (refused.Code == "invalid_client" || refused.Code == "unauthorized_client" || refused.Code == "invalid_target"):
		// This API is not set up as the other API expects: the operator's
		// problem, not the caller's.
		log.Print(err)
		http.Error(w, "this API may not call "+x.Target+" for you", http.StatusBadGateway)
		return
	case errors.As(err, &refused):
		// Typically invalid_scope: the person did not let the app reach the
		// other API.
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	case err != nil:
		log.Printf("token exchange: %v", err)
		http.Error(w, "cannot reach tonearm right now", http.StatusServiceUnavailable)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, strings.TrimRight(x.TargetURL, "/")+"/listens", nil)
	if err != nil {
		http.Error(w, "bad -summary-api-url", http.StatusInternalServerError)
		return
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := x.client().Do(req)
	if err != nil {
		log.Printf("calling %s: %v", x.TargetURL, err)
		http.Error(w, "cannot reach "+x.Target, http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	var got struct {
		Listens []listen `json:"listens"`
		Act     any      `json:"act"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&got) != nil {
		log.Printf("calling %s: %s %s", x.TargetURL, resp.Status, resp.Header.Get("WWW-Authenticate"))
		http.Error(w, x.Target+" answered "+resp.Status, http.StatusBadGateway)
		return
	}
	perArtist := map[string]int{}
	for _, l := range got.Listens {
		perArtist[l.Artist]++
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"user": t.Subject, "listens": len(got.Listens), "per_artist": perArtist,
		"from": x.Target, "seen_there_as": got.Act})
}
