package clientkeys

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeResolver answers each lookup with the next answer in its list (the
// last one repeats), so a test can make a name change between lookups.
type fakeResolver struct {
	mu      sync.Mutex
	answers [][]string
	calls   int
}

func (r *fakeResolver) LookupIPAddr(_ context.Context, _ string) ([]net.IPAddr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := min(r.calls, len(r.answers)-1)
	r.calls++
	var out []net.IPAddr
	for _, s := range r.answers[i] {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	return out, nil
}

func resolveTo(addrs ...string) *fakeResolver { return &fakeResolver{answers: [][]string{addrs}} }

// countingServer counts requests and answers with h.
func countingServer(t *testing.T, tls bool, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	wrapped := func(w http.ResponseWriter, r *http.Request) { n.Add(1); h(w, r) }
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(http.HandlerFunc(wrapped))
	} else {
		srv = httptest.NewServer(http.HandlerFunc(wrapped))
	}
	t.Cleanup(srv.Close)
	return srv, &n
}

func okHandler(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"keys":[]}`)) }

// withHost replaces the host of srv's URL with name (keeping the port).
func withHost(t *testing.T, srv *httptest.Server, name string) string {
	t.Helper()
	u, _ := url.Parse(srv.URL)
	u.Host = net.JoinHostPort(name, u.Port())
	return u.String()
}

func wantFetchError(t *testing.T, err error, contains string) {
	t.Helper()
	var fe *FetchError
	if !errors.As(err, &fe) || !errors.Is(err, ErrFetch) {
		t.Fatalf("error = %v, want a *FetchError", err)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("error = %q, want it to say %q", err, contains)
	}
}

func TestFetchLoopbackWhenAllowed(t *testing.T) {
	srv, n := countingServer(t, false, okHandler)
	f := NewFetcher(FetchOptions{AllowLoopbackHTTP: true})
	body, err := f.Get(context.Background(), srv.URL+"/jwks")
	if err != nil || string(body) != `{"keys":[]}` || n.Load() != 1 {
		t.Fatalf("Get = %q, %v (hits %d)", body, err, n.Load())
	}
	// A name that resolves to loopback, over TLS, is allowed too.
	tsrv, _ := countingServer(t, true, okHandler)
	f = NewFetcher(FetchOptions{AllowLoopbackHTTP: true, Resolver: resolveTo("127.0.0.1"), RootCAs: rootsOf(tsrv)})
	if _, err := f.Get(context.Background(), withHost(t, tsrv, "example.com")); err != nil {
		t.Fatalf("https to a loopback name with AllowLoopbackHTTP: %v", err)
	}
}

func rootsOf(srv *httptest.Server) *x509.CertPool {
	return srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
}

func TestFetchRefusesPlainHTTP(t *testing.T) {
	srv, n := countingServer(t, false, okHandler)
	_, err := NewFetcher(FetchOptions{}).Get(context.Background(), srv.URL)
	wantFetchError(t, err, "only https")
	// With loopback allowed, plain http still reaches only loopback.
	f := NewFetcher(FetchOptions{AllowLoopbackHTTP: true, Resolver: resolveTo("192.0.2.10")})
	_, err = f.Get(context.Background(), withHost(t, srv, "keys.example"))
	wantFetchError(t, err, "plain http is only for loopback")
	for _, raw := range []string{"ftp://example.com/x", "file:///etc/passwd", "https://user:pw@example.com/", "/relative"} {
		_, err := NewFetcher(FetchOptions{}).Get(context.Background(), raw)
		wantFetchError(t, err, "")
	}
	if n.Load() != 0 {
		t.Fatalf("server hit %d times", n.Load())
	}
}

// Every address that is not the public Internet is refused when loopback
// is not allowed, whether it is in the URL or behind a name.
func TestFetchRefusesNonPublicAddresses(t *testing.T) {
	srv, n := countingServer(t, true, okHandler)
	roots := rootsOf(srv)
	u, _ := url.Parse(srv.URL)
	port := u.Port()
	for _, tc := range []struct{ url, resolves, says string }{
		{url: srv.URL, says: "loopback"},
		{url: "https://[::1]:" + port + "/", says: "loopback"},
		{url: "https://[::ffff:127.0.0.1]:" + port + "/", says: "loopback"},
		{url: "https://keys.example:" + port + "/", resolves: "127.0.0.1", says: "loopback"},
		{url: "https://keys.example:" + port + "/", resolves: "::1", says: "loopback"},
		{url: "https://keys.example:" + port + "/", resolves: "10.1.2.3", says: "private"},
		{url: "https://keys.example:" + port + "/", resolves: "172.16.0.1", says: "private"},
		{url: "https://keys.example:" + port + "/", resolves: "192.168.1.1", says: "private"},
		{url: "https://keys.example:" + port + "/", resolves: "fd00::1", says: "private"},
		{url: "https://keys.example:" + port + "/", resolves: "::ffff:10.0.0.1", says: "private"},
		{url: "https://169.254.169.254:" + port + "/latest/meta-data/", says: "link-local"},
		{url: "https://keys.example:" + port + "/", resolves: "fe80::1", says: "link-local"},
		{url: "https://keys.example:" + port + "/", resolves: "100.64.0.1", says: "carrier-grade NAT"},
		{url: "https://keys.example:" + port + "/", resolves: "0.0.0.0", says: "unspecified"},
		{url: "https://keys.example:" + port + "/", resolves: "::", says: "unspecified"},
		{url: "https://keys.example:" + port + "/", resolves: "224.0.0.1", says: "multicast"},
		{url: "https://keys.example:" + port + "/", resolves: "64:ff9b::a00:1", says: "IPv4-translating"},
	} {
		opts := FetchOptions{RootCAs: roots}
		if tc.resolves != "" {
			opts.Resolver = resolveTo(tc.resolves)
		}
		_, err := NewFetcher(opts).Get(context.Background(), tc.url)
		wantFetchError(t, err, tc.says)
	}
	// A name with a private address among public ones gets nowhere either.
	f := NewFetcher(FetchOptions{RootCAs: roots, Resolver: resolveTo("127.0.0.1", "10.0.0.1")})
	_, err := f.Get(context.Background(), "https://keys.example:"+port+"/")
	wantFetchError(t, err, "only public addresses")
	if n.Load() != 0 {
		t.Fatalf("server hit %d times", n.Load())
	}
	// Loopback allowed does not open the private ranges.
	f = NewFetcher(FetchOptions{AllowLoopbackHTTP: true, RootCAs: roots, Resolver: resolveTo("10.0.0.1")})
	_, err = f.Get(context.Background(), "https://keys.example:"+port+"/")
	wantFetchError(t, err, "private")
}

func TestNotPublic(t *testing.T) {
	for addr, public := range map[string]bool{
		"93.184.216.34": true, "2606:4700::1111": true, "8.8.8.8": true,
		"10.0.0.1": false, "127.0.0.2": false, "100.127.255.255": false, "169.254.0.1": false,
		"::ffff:192.168.0.1": false, "ff02::1": false, "255.255.255.255": false, "240.0.0.1": false,
		"0.1.2.3": false, "2002:a00:1::": false, "fc00::1": false,
	} {
		if got := notPublic(netip.MustParseAddr(addr)) == ""; got != public {
			t.Errorf("notPublic(%s): public = %v, want %v", addr, got, public)
		}
	}
}

// DNS rebinding: the name answers with a public address at first and a
// private one afterwards. The address is checked on the socket that
// connects, so whichever answer is dialled is the one checked.
func TestFetchDNSRebinding(t *testing.T) {
	srv, n := countingServer(t, true, okHandler)
	r := &fakeResolver{answers: [][]string{{"192.0.2.1"}, {"127.0.0.1"}}}
	f := NewFetcher(FetchOptions{Resolver: r, RootCAs: rootsOf(srv), Timeout: 500 * time.Millisecond})
	u := withHost(t, srv, "rebind.example")
	// The first answer (a documentation address) leads nowhere; whatever a
	// check before the request saw, the dial sees the same.
	if _, err := f.Get(context.Background(), u); err == nil {
		t.Fatal("fetch through the public answer succeeded")
	}
	_, err := f.Get(context.Background(), u)
	wantFetchError(t, err, "loopback")
	if n.Load() != 0 {
		t.Fatalf("server hit %d times: the rebinding passed", n.Load())
	}
	if r.calls != 2 {
		t.Fatalf("resolver called %d times for 2 fetches; each dial must check the address it resolved itself", r.calls)
	}
}

func TestFetchRefusesRedirects(t *testing.T) {
	target, hits := countingServer(t, false, okHandler)
	for _, to := range []string{"http://10.0.0.1/jwks", target.URL + "/jwks", "/elsewhere"} {
		srv, _ := countingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				hits.Add(1)
			}
			http.Redirect(w, r, to, http.StatusFound)
		})
		_, err := NewFetcher(FetchOptions{AllowLoopbackHTTP: true}).Get(context.Background(), srv.URL+"/jwks")
		wantFetchError(t, err, "redirect")
	}
	if hits.Load() != 0 {
		t.Fatalf("a redirect was followed (%d hits)", hits.Load())
	}
}

func TestFetchLimits(t *testing.T) {
	f := NewFetcher(FetchOptions{AllowLoopbackHTTP: true})
	exact, _ := countingServer(t, false, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(make([]byte, DefaultMaxBody))
	})
	if body, err := f.Get(context.Background(), exact.URL); err != nil || len(body) != DefaultMaxBody {
		t.Fatalf("a body of exactly the limit: %d bytes, %v", len(body), err)
	}
	over, _ := countingServer(t, false, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(make([]byte, DefaultMaxBody+1))
	})
	_, err := f.Get(context.Background(), over.URL)
	wantFetchError(t, err, "larger than 65536 bytes")
	// A body that never ends, without a Content-Length.
	endless, _ := countingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 4096)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	_, err = f.Get(context.Background(), endless.URL)
	wantFetchError(t, err, "larger than")
	// A body that trickles in forever, too slowly to reach the size limit.
	trickle, _ := countingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		for r.Context().Err() == nil {
			_, _ = w.Write([]byte(" "))
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
	})
	start := time.Now()
	_, err = NewFetcher(FetchOptions{AllowLoopbackHTTP: true, Timeout: 300 * time.Millisecond}).Get(context.Background(), trickle.URL)
	wantFetchError(t, err, "no complete answer within 300ms")
	if time.Since(start) > 2*time.Second {
		t.Fatalf("the deadline was not kept: %s", time.Since(start))
	}
	notFound, _ := countingServer(t, false, http.NotFound)
	_, err = f.Get(context.Background(), notFound.URL)
	wantFetchError(t, err, "HTTP 404")
}

// The default deadline is 5 s: a server that answers after 6 s is given up.
func TestFetchSlowServerDefaultDeadline(t *testing.T) {
	release := make(chan struct{})
	slow, _ := countingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(6 * time.Second):
		case <-r.Context().Done():
		case <-release:
		}
		okHandler(w, r)
	})
	defer close(release)
	start := time.Now()
	_, err := NewFetcher(FetchOptions{AllowLoopbackHTTP: true}).Get(context.Background(), slow.URL)
	wantFetchError(t, err, "no complete answer within 5s")
	if d := time.Since(start); d < 4*time.Second || d > 6*time.Second {
		t.Fatalf("gave up after %s, want about 5s", d)
	}
}

func TestIsLoopbackURL(t *testing.T) {
	for raw, want := range map[string]bool{
		"http://127.0.0.1:8080": true, "http://localhost:8080/": true, "http://[::1]:9000": true, "http://127.8.9.10": true,
		"https://id.example.org": false, "http://10.0.0.1": false, "http://localhost.example.org": false, "::bad": false,
	} {
		if got := IsLoopbackURL(raw); got != want {
			t.Errorf("IsLoopbackURL(%q) = %v, want %v", raw, got, want)
		}
	}
}
