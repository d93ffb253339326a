package provider

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/tonearm-idp/tonearm/fault"
)

// URLGetter reads a URL a client registered, the guarded way (https,
// public addresses, bounded time and size, no redirects): the shared
// clientkeys.Fetcher.
type URLGetter interface {
	Get(ctx context.Context, rawURL string) ([]byte, error)
}

const sectorField = "sector_identifier_uri"

// SectorCheck is the check of a pairwise client's sector when it is
// registered or changed (OpenID Connect Core §8.1, Dynamic Client
// Registration §2), for the clients registry's hook: its
// sector_identifier_uri answers a JSON array of URIs that contains every
// redirect URI of the client (the host of that URL is then the client's
// sector, see Sector: only a client whose redirect URIs its owner listed
// there shares the sector's subs); without one, its redirect URIs have one
// host (the sector would be ambiguous).
func SectorCheck(get URLGetter) func(ctx context.Context, uri string, redirectURIs []string) error {
	return func(ctx context.Context, uri string, redirectURIs []string) error {
		if uri == "" {
			return severalHosts(redirectURIs)
		}
		body, err := get.Get(ctx, uri)
		if err != nil {
			return fault.Errorf(fault.Invalid, "sector_identifier_uri %s could not be read: %v", uri, err).On(sectorField)
		}
		var listed []string
		if err := json.Unmarshal(body, &listed); err != nil {
			return fault.Errorf(fault.Invalid, "sector_identifier_uri %s does not answer a JSON array of redirect URIs", uri).On(sectorField)
		}
		var missing []string
		for _, r := range redirectURIs {
			if !has(listed, r) {
				missing = append(missing, r)
			}
		}
		if len(missing) > 0 {
			return fault.Errorf(fault.Invalid, "sector_identifier_uri %s does not list the redirect URI %s: its document must list every redirect URI of the client",
				uri, strings.Join(missing, ", ")).On(sectorField)
		}
		return nil
	}
}

// severalHosts is the registration error of a pairwise client whose
// redirect URIs have several hosts and that names no
// sector_identifier_uri, or nil.
func severalHosts(redirectURIs []string) error {
	if hosts := RedirectHosts(redirectURIs); len(hosts) > 1 && !loopbackSector(hosts) {
		return fault.Errorf(fault.Invalid, "a pairwise client whose redirect URIs have several hosts (%s) needs a sector_identifier_uri listing them",
			strings.Join(hosts, ", ")).On(sectorField)
	}
	return nil
}

// loopbackSector reports whether redirect hosts are all loopback ones
// (127.0.0.1, localhost, ::1). Every native app redirects there (RFC 8252
// §7.3), so OpenID Connect Core §8.1's rule, the host of the redirect
// URIs, would put every such app in one sector and give them one sub per
// person: tonearm deliberately makes such a client a sector of its own,
// "client:" and its ID (see Sector). Clients of one app that must share
// subs register a sector_identifier_uri.
func loopbackSector(hosts []string) bool {
	for _, h := range hosts {
		if h != "localhost" && h != "::1" && !strings.HasPrefix(h, "127.") {
			return false
		}
	}
	return len(hosts) > 0
}
