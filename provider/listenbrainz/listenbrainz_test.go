package listenbrainz

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestValidateToken(t *testing.T) {
	// Handlers of timed-out requests may still run while the next request
	// arrives, so what they record is guarded.
	var (
		mu               sync.Mutex
		gotAuth, gotPath string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Token good" {
			mu.Lock()
			gotAuth, gotPath = r.Header.Get("Authorization"), r.URL.Path
			mu.Unlock()
		}
		switch r.Header.Get("Authorization") {
		case "Token good":
			w.Write([]byte(`{"code":200,"message":"Token valid.","valid":true,"user_name":"rob"}`))
		case "Token bad":
			w.Write([]byte(`{"code":200,"message":"Token invalid.","valid":false}`))
		case "Token unauthorized":
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"code":401,"valid":false}`))
		case "Token noname":
			w.Write([]byte(`{"valid":true}`))
		case "Token garbage":
			w.Write([]byte(`<html>oops</html>`))
		case "Token slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "Token redirect":
			http.Redirect(w, r, "http://example.invalid/steal", http.StatusFound)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/", 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	name, valid, err := c.ValidateToken(context.Background(), "good")
	if err != nil || !valid || name != "rob" {
		t.Fatalf("ValidateToken(good) = %q, %v", name, err)
	}
	mu.Lock()
	auth, path := gotAuth, gotPath
	mu.Unlock()
	if auth != "Token good" || path != "/1/validate-token" {
		t.Fatalf("request: Authorization %q, path %q", auth, path)
	}
	for _, token := range []string{"bad", "unauthorized"} {
		name, valid, err := c.ValidateToken(context.Background(), token)
		if err != nil || valid || name != "" {
			t.Errorf("ValidateToken(%s) = %q, %v, %v; want invalid without error", token, name, valid, err)
		}
	}
	for _, token := range []string{"noname", "garbage", "slow", "redirect", "boom"} {
		_, valid, err := c.ValidateToken(context.Background(), token)
		if !errors.Is(err, ErrUnavailable) || valid {
			t.Errorf("ValidateToken(%s) = %v, %v; want ErrUnavailable", token, valid, err)
		}
		if err != nil && strings.Contains(err.Error(), token) {
			t.Errorf("error for %s repeats the token: %v", token, err)
		}
	}
}

func TestValidateTokenUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, _ := New(url, time.Second)
	if _, _, err := c.ValidateToken(context.Background(), "x"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed port: %v, want ErrUnavailable", err)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "api.listenbrainz.org", "http://"} {
		if _, err := New(u, 0); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}
