package web

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestFrontendResolve(t *testing.T) {
	proxies := Frontend{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}}
	for _, c := range []struct {
		name     string
		f        Frontend
		peer     string
		xff, fwd string
		want     string
	}{
		{"no proxies: headers ignored", Frontend{}, "192.0.2.1:5000", "198.51.100.1", "", "192.0.2.1"},
		{"untrusted peer: headers ignored", proxies, "192.0.2.1:5000", "198.51.100.1", "for=198.51.100.2", "192.0.2.1"},
		{"trusted peer, one hop", proxies, "10.0.0.5:443", "198.51.100.1", "", "198.51.100.1"},
		{"forged left hop", proxies, "10.0.0.5:443", "203.0.113.9, 198.51.100.1", "", "198.51.100.1"},
		{"two trusted proxies", proxies, "10.0.0.5:443", "198.51.100.1, 10.1.1.1", "", "198.51.100.1"},
		{"only trusted hops", proxies, "10.0.0.5:443", "10.2.2.2", "", "10.2.2.2"},
		{"no header from a proxy", proxies, "10.0.0.5:443", "", "", "10.0.0.5"},
		{"garbage hop", proxies, "10.0.0.5:443", "not-an-ip", "", "10.0.0.5"},
		{"Forwarded wins", proxies, "10.0.0.5:443", "198.51.100.1", `for=192.0.2.60;proto=https, for="[2001:db8::7]:4711"`, "2001:db8::7"},
		{"Forwarded unknown", proxies, "10.0.0.5:443", "", "for=unknown", "10.0.0.5"},
		{"IPv6 proxy", proxies, "[fd00::1]:443", "198.51.100.3:1234", "", "198.51.100.3"},
		{"IPv4-mapped peer", proxies, "[::ffff:10.0.0.5]:443", "198.51.100.4", "", "198.51.100.4"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if c.fwd != "" {
			r.Header.Set("Forwarded", c.fwd)
		}
		if got := c.f.resolve(r); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
