package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/tonearm-idp/tonearm/provider/audit"
)

// Frontend is what the middleware knows of the network in front of
// tonearm.
type Frontend struct {
	// TrustedProxies are the peers (TONEARM_TRUSTED_PROXIES) whose
	// Forwarded or X-Forwarded-For header names the client. From any other
	// peer those headers are ignored: a client could set them to dodge the
	// rate limits or to pin its failures on someone else.
	TrustedProxies []netip.Prefix
	// HSTS sends Strict-Transport-Security on every answer (an https
	// issuer).
	HSTS bool
	// Metrics counts requests by route (nil: none).
	Metrics *Metrics
}

// ClientAddr is the address of the client that sent r, as the middleware
// resolved it: the peer, or behind trusted proxies the rightmost hop that
// is not one of them.
func ClientAddr(r *http.Request) string {
	if a := audit.OriginOf(r.Context()).IP; a != "" {
		return a
	}
	return peerAddr(r)
}

func peerAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (f Frontend) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range f.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// resolve walks the forwarding chain from the right: the peer first, then
// each hop the proxies appended, stopping at the first address that is not
// a trusted proxy. That hop was written by a trusted proxy about its own
// peer; everything left of it came from the client and may be forged.
func (f Frontend) resolve(r *http.Request) string {
	peer := peerAddr(r)
	if len(f.TrustedProxies) == 0 {
		return peer
	}
	a, err := netip.ParseAddr(peer)
	if err != nil || !f.trusted(a) {
		return peer
	}
	hops := forwardedFor(r.Header)
	client := a.Unmap().String()
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(hops[i])
		if err != nil {
			// Not an address (garbage, "unknown", an obfuscated name): the
			// nearest hop that could be trusted stands for the client.
			return client
		}
		client = h.Unmap().String()
		if !f.trusted(h) {
			return client
		}
	}
	return client
}

// forwardedFor lists the client addresses of the Forwarded header (RFC
// 7239) or, without it, of X-Forwarded-For, left to right; ports and the
// brackets of IPv6 addresses are dropped.
func forwardedFor(h http.Header) []string {
	var hops []string
	if values := h.Values("Forwarded"); len(values) > 0 {
		for _, v := range values {
			for _, elem := range strings.Split(v, ",") {
				hop := "unknown"
				for _, pair := range strings.Split(elem, ";") {
					k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if ok && strings.EqualFold(k, "for") {
						hop = hostOnly(strings.Trim(val, `"`))
					}
				}
				hops = append(hops, hop)
			}
		}
		return hops
	}
	for _, v := range h.Values("X-Forwarded-For") {
		for _, hop := range strings.Split(v, ",") {
			hops = append(hops, hostOnly(strings.TrimSpace(hop)))
		}
	}
	return hops
}

// hostOnly strips a port and IPv6 brackets: "[2001:db8::1]:4711" →
// "2001:db8::1", "192.0.2.1:80" → "192.0.2.1".
func hostOnly(s string) string {
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i > 0 {
			return s[1:i]
		}
		return s
	}
	if strings.Count(s, ":") == 1 {
		host, _, _ := strings.Cut(s, ":")
		return host
	}
	return s
}
