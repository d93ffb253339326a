package provider

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/storage"
)

// URLGetter reads a URL a client registered, the guarded way (https,
// public addresses, bounded time and size, no redirects): the shared
// clientkeys.Fetcher.
type URLGetter interface {
	Get(ctx context.Context, rawURL string) ([]byte, error)
}

const sectorField = "sector_identifier_uri"

// SectorCheck is the check of a pairwise client's sector_identifier_uri
// when it is registered or changed (OpenID Connect Core §8.1, Dynamic
// Client Registration §2): the URL answers a JSON array of URIs that
// contains every redirect URI of the client. The host of that URL is then
// the client's sector (Sector): only a client whose redirect URIs its
// owner listed there shares the sector's subs. For the clients registry's
// sector check hook.
func SectorCheck(get URLGetter) func(ctx context.Context, uri string, redirectURIs []string) error {
	return func(ctx context.Context, uri string, redirectURIs []string) error {
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

// PairwiseSectorError is the registration error of a pairwise client
// whose redirect URIs have several hosts and that names no
// sector_identifier_uri (OpenID Connect Core §8.1: its sector would be
// ambiguous), or nil.
func PairwiseSectorError(subjectType, sectorIdentifierURI string, redirectURIs []string) error {
	if subjectType != storage.SubjectPairwise || sectorIdentifierURI != "" {
		return nil
	}
	if hosts := RedirectHosts(redirectURIs); len(hosts) > 1 {
		return fault.Errorf(fault.Invalid, "a pairwise client whose redirect URIs have several hosts (%s) needs a sector_identifier_uri listing them",
			strings.Join(hosts, ", ")).On(sectorField)
	}
	return nil
}
