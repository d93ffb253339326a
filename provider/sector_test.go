package provider

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/fault"
)

// plainGetter stands in for the guarded fetcher (tested in
// provider/clientkeys): only the content rule is tested here.
type plainGetter struct{}

func (plainGetter) Get(ctx context.Context, u string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("the server answered " + resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func TestSectorCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok.json":
			io.WriteString(w, `["https://a.example/cb", "https://b.example/cb", "https://c.example/cb"]`)
		case "/object.json":
			io.WriteString(w, `{"redirect_uris": ["https://a.example/cb"]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	check := SectorCheck(plainGetter{})
	ctx := context.Background()
	if err := check(ctx, srv.URL+"/ok.json", []string{"https://a.example/cb", "https://b.example/cb"}); err != nil {
		t.Fatalf("every redirect URI listed: %v", err)
	}
	for name, c := range map[string]struct {
		path      string
		redirects []string
		want      string
	}{
		"one missing":  {"/ok.json", []string{"https://a.example/cb", "https://evil.example/cb"}, "https://evil.example/cb"},
		"a prefix":     {"/ok.json", []string{"https://a.example/cb/more"}, "does not list"},
		"not an array": {"/object.json", []string{"https://a.example/cb"}, "JSON array"},
		"not found":    {"/missing.json", []string{"https://a.example/cb"}, "could not be read"},
	} {
		err := check(ctx, srv.URL+c.path, c.redirects)
		d, ok := fault.Find(err)
		if err == nil || !fault.Is(err, fault.Invalid) || !ok || !strings.Contains(d.Message(), c.want) {
			t.Errorf("%s: %v, want an invalid-input error saying %q", name, err, c.want)
		}
	}
}

// Without a sector_identifier_uri, the redirect URIs must have one host.
func TestSectorCheckWithoutURI(t *testing.T) {
	check := SectorCheck(plainGetter{})
	ctx := context.Background()
	if err := check(ctx, "", []string{"https://a.example/cb", "https://b.example/cb"}); !fault.Is(err, fault.Invalid) {
		t.Errorf("a pairwise client with two redirect hosts and no sector_identifier_uri: %v", err)
	}
	for _, ok := range [][]string{{"https://a.example/cb", "https://a.example:8443/other"}, nil} {
		if err := check(ctx, "", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}
