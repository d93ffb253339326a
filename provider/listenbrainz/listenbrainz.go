// Package listenbrainz is the client for the one ListenBrainz API call tonearm
// makes: validating a user's token. Standard library only.
package listenbrainz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors a caller tells apart.
// ErrUnavailable: ListenBrainz could not be asked or gave no usable answer
// (down, slow, rate limiting, or a malformed reply).
var ErrUnavailable = errors.New("listenbrainz: service unavailable")

// DefaultTimeout bounds one validation from dial to the last byte.
const DefaultTimeout = 5 * time.Second

// Client validates tokens against a ListenBrainz API base URL.
type Client struct {
	base string
	http *http.Client
}

// New returns a client for the API at baseURL (for example
// https://api.listenbrainz.org). timeout bounds each call; zero means
// DefaultTimeout.
func New(baseURL string, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("listenbrainz: base URL %q is not an http(s) URL", baseURL)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &Client{
		base: strings.TrimRight(baseURL, "/"),
		http: &http.Client{
			Timeout:   timeout,
			Transport: transport,
			// A redirect could carry the token's header elsewhere: refuse.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

type validateResponse struct {
	Valid    bool   `json:"valid"`
	UserName string `json:"user_name"`
}

// ValidateToken asks ListenBrainz whether token is valid. For a valid token it
// returns the ListenBrainz user name and true; for a token ListenBrainz
// refuses, false and no error. Errors wrap ErrUnavailable and never contain
// the token.
func (c *Client) ValidateToken(ctx context.Context, token string) (name string, valid bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/1/validate-token", nil)
	if err != nil {
		return "", false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Authorization", "Token "+token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "tonearm (OpenID Connect provider)")
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error repeats only the URL, never the header.
		return "", false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", false, fmt.Errorf("%w: reading answer: %v", ErrUnavailable, err)
	}
	var vr validateResponse
	jsonErr := json.Unmarshal(body, &vr)
	switch {
	case resp.StatusCode == http.StatusOK && jsonErr == nil:
		if !vr.Valid {
			return "", false, nil
		}
		if vr.UserName == "" || len(vr.UserName) > 255 || !utf8.ValidString(vr.UserName) {
			return "", false, fmt.Errorf("%w: valid answer without a usable user_name", ErrUnavailable)
		}
		return vr.UserName, true, nil
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized ||
		resp.StatusCode == http.StatusForbidden:
		// ListenBrainz answers 400 for a missing or malformed token;
		// compatible servers answer 401.
		return "", false, nil
	default:
		return "", false, fmt.Errorf("%w: HTTP %d", ErrUnavailable, resp.StatusCode)
	}
}
