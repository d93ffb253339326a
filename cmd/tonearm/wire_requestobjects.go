package main

import (
	"net"
	"net/url"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider/clientkeys"
	"github.com/tonearm-idp/tonearm/web/protocol"
)

// requestObjects is what the authorization and PAR endpoints verify
// request objects with (RFC 9101): the client's keys and the one guarded
// fetcher for client URLs, which allows loopback only while the issuer is
// loopback (development and tests); a jti is recorded in the database,
// shared by every replica.
func requestObjects(cfg config.Config, once protocol.OnceStore) protocol.RequestObjects {
	fetcher := clientkeys.NewFetcher(clientkeys.FetchOptions{AllowLoopbackHTTP: issuerOnLoopback(cfg.Issuer)})
	return protocol.RequestObjects{Keys: clientkeys.NewKeys(fetcher), Fetcher: fetcher, Once: once}
}

func issuerOnLoopback(issuer string) bool {
	u, err := url.Parse(issuer)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return u.Hostname() == "localhost" || ip != nil && ip.IsLoopback()
}
