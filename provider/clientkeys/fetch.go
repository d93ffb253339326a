// Package clientkeys fetches what a client publishes at its own URLs
// (jwks_uri, request_uri, sector_identifier_uri) and verifies the JWSs a
// client signs with its keys (private_key_jwt assertions, request objects).
//
// A client's URL is chosen by whoever registered the client, which for apps
// registered on /developer or by RFC 7591 is anyone. Fetching it is a
// server-side request on their behalf, so the one Fetcher here refuses
// everything that would let such a URL reach inside the network: it checks
// the address actually dialled (so DNS rebinding does not pass), follows no
// redirect, uses no proxy, and bounds time and size.
package clientkeys

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Defaults for FetchOptions.
const (
	DefaultTimeout = 5 * time.Second
	DefaultMaxBody = 64 << 10
)

// Resolver looks a host name up; *net.Resolver implements it.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// FetchOptions configure a Fetcher.
type FetchOptions struct {
	// AllowLoopbackHTTP allows loopback addresses, over http or https. Set
	// it only when the issuer itself is loopback (development and tests):
	// in production a client URL on loopback would reach tonearm's host.
	AllowLoopbackHTTP bool
	// Timeout bounds a whole fetch: connect, TLS, headers and body
	// (DefaultTimeout when 0).
	Timeout time.Duration
	// MaxBody is the largest body accepted; a larger one is an error, not
	// truncated (DefaultMaxBody when 0).
	MaxBody int64
	// Resolver resolves host names (net.DefaultResolver when nil). Tests
	// inject one to play DNS tricks.
	Resolver Resolver
	// RootCAs are the trusted roots (the system's when nil). Tests set it
	// to trust an httptest TLS server.
	RootCAs *x509.CertPool
}

// Fetcher fetches client URLs under the rules in the package comment.
type Fetcher struct {
	client   *http.Client
	resolver Resolver
	opts     FetchOptions
}

// FetchError says, in words an operator understands, why a client URL could
// not be fetched. It carries no internals of the connection.
type FetchError struct {
	URL    string
	Reason string
	// Err is what the failure is, when it is one of this package's errors
	// (ErrBadKeySet for a fetched set that breaks CheckSet's rules).
	Err error
}

// Unwrap lets errors.Is see Err.
func (e *FetchError) Unwrap() error { return e.Err }

func (e *FetchError) Error() string { return "fetching " + e.URL + ": " + e.Reason }

// ErrFetch matches every *FetchError with errors.Is.
var ErrFetch = errors.New("clientkeys: fetch failed")

// Is lets errors.Is(err, ErrFetch) match.
func (e *FetchError) Is(target error) bool { return target == ErrFetch }

// NewFetcher returns a Fetcher.
func NewFetcher(opts FetchOptions) *Fetcher {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	f := &Fetcher{opts: opts, resolver: opts.Resolver}
	if f.resolver == nil {
		f.resolver = net.DefaultResolver
	}
	transport := &http.Transport{
		// No proxy from the environment: a proxy would dial for us, out of
		// reach of the address check.
		Proxy:       nil,
		DialContext: f.dial,
		TLSClientConfig: &tls.Config{
			RootCAs:    opts.RootCAs,
			MinVersion: tls.VersionTLS12,
		},
		// A connection kept from an earlier fetch was checked then; a
		// fresh one per fetch keeps the rule simple (fetches are cached
		// and rare).
		DisableKeepAlives:      true,
		TLSHandshakeTimeout:    opts.Timeout,
		ResponseHeaderTimeout:  opts.Timeout,
		MaxResponseHeaderBytes: 16 << 10,
	}
	f.client = &http.Client{
		Transport: transport,
		Timeout:   opts.Timeout,
		// A redirect could lead anywhere, so none is followed: the 3xx
		// comes back and Get refuses it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return f
}

// IsLoopbackURL reports whether rawURL names a loopback host (localhost or
// a loopback address): an issuer there is a developer's machine or a test,
// where client URLs on loopback are expected (FetchOptions.AllowLoopbackHTTP).
func IsLoopbackURL(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

type plainHTTPKey struct{}

// Get fetches rawURL and returns its body when the answer is 200.
func (f *Fetcher) Get(ctx context.Context, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || u.User != nil {
		return nil, &FetchError{URL: rawURL, Reason: "not an absolute URL without credentials"}
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && f.opts.AllowLoopbackHTTP:
		// http only to loopback; the dialler enforces it on the address
		// actually dialled.
		ctx = context.WithValue(ctx, plainHTTPKey{}, true)
	default:
		return nil, &FetchError{URL: rawURL, Reason: "only https URLs are fetched"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &FetchError{URL: rawURL, Reason: "not a valid URL"}
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json, application/oauth-authz-req+jwt, application/jwt, */*;q=0.1")
	req.Header.Set("User-Agent", "tonearm")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, &FetchError{URL: rawURL, Reason: f.describe(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, &FetchError{URL: rawURL, Reason: fmt.Sprintf("answered with a redirect (HTTP %d); redirects are not followed, register the final URL", resp.StatusCode)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &FetchError{URL: rawURL, Reason: fmt.Sprintf("answered HTTP %d, not 200", resp.StatusCode)}
	}
	if resp.ContentLength > f.opts.MaxBody {
		return nil, &FetchError{URL: rawURL, Reason: fmt.Sprintf("the answer is larger than %d bytes", f.opts.MaxBody)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.opts.MaxBody+1))
	if err != nil {
		return nil, &FetchError{URL: rawURL, Reason: f.describe(err)}
	}
	if int64(len(body)) > f.opts.MaxBody {
		return nil, &FetchError{URL: rawURL, Reason: fmt.Sprintf("the answer is larger than %d bytes", f.opts.MaxBody)}
	}
	return body, nil
}

// describe turns a transport error into a reason without internals.
func (f *Fetcher) describe(err error) string {
	var blocked *blockedError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var netErr net.Error
	switch {
	case errors.As(err, &blocked):
		return blocked.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("no complete answer within %s", f.opts.Timeout)
	case errors.Is(err, context.Canceled):
		return "the request was cancelled"
	case errors.As(err, &dnsErr):
		return "the host name does not resolve"
	case errors.As(err, &certErr):
		return "its TLS certificate is not valid for this host or not trusted"
	default:
		return "could not connect or the connection broke off"
	}
}

// blockedError is an address the fetcher must not reach.
type blockedError struct {
	addr netip.Addr
	why  string
}

func (e *blockedError) Error() string {
	return fmt.Sprintf("the host resolves to %s, a %s address; only public addresses are fetched", e.addr, e.why)
}

// dial resolves the host itself and dials each address with a Control that
// checks the address of the socket about to connect: the check and the
// connection see the same address, so a name that answers differently on a
// second lookup (DNS rebinding) gains nothing.
func (f *Fetcher) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
		ips = []net.IP{ip}
	} else {
		found, err := f.resolver.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, err
		}
		for _, a := range found {
			ips = append(ips, a.IP)
		}
		if len(ips) == 0 {
			return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
	}
	plain, _ := ctx.Value(plainHTTPKey{}).(bool)
	d := &net.Dialer{Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &blockedError{why: "unparsable"}
		}
		return f.check(ap.Addr().Unmap(), plain)
	}}
	var first error
	for _, ip := range ips {
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// check refuses the addresses that are not the public Internet.
func (f *Fetcher) check(a netip.Addr, plainHTTP bool) error {
	if a.IsLoopback() {
		if f.opts.AllowLoopbackHTTP {
			return nil
		}
		return &blockedError{addr: a, why: "loopback"}
	}
	if plainHTTP {
		return &blockedError{addr: a, why: "non-loopback (plain http is only for loopback)"}
	}
	if why := notPublic(a); why != "" {
		return &blockedError{addr: a, why: why}
	}
	return nil
}

// Special-purpose ranges netip has no predicate for.
var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598
	thisNet   = netip.MustParsePrefix("0.0.0.0/8")     // RFC 791 "this network"
	nat64     = netip.MustParsePrefix("64:ff9b::/96")  // RFC 6052: embeds an IPv4 address
	sixToFour = netip.MustParsePrefix("2002::/16")     // RFC 3056: embeds an IPv4 address
)

// notPublic names why a is not a public unicast address ("" when it is).
func notPublic(a netip.Addr) string {
	a = a.Unmap() // IPv4-mapped IPv6 (::ffff:10.0.0.1) is the IPv4 address
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsUnspecified() || thisNet.Contains(a):
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate(): // RFC 1918, and fc00::/7 (RFC 4193)
		return "private"
	case a.IsMulticast(): // 224/4, ff00::/8 (link- and interface-local ones included)
		return "multicast"
	case a.IsLinkLocalUnicast(): // 169.254/16, fe80::/10
		return "link-local"
	case cgnat.Contains(a):
		return "shared (carrier-grade NAT)"
	case a.Is4() && a.As4()[0] >= 240: // 240/4 and the broadcast address
		return "reserved"
	case nat64.Contains(a) || sixToFour.Contains(a):
		// These would reach the embedded IPv4 address through a
		// translator; refusing them is simpler than checking it.
		return "IPv4-translating"
	}
	return ""
}
