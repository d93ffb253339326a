package clients

import (
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/tonearm-idp/tonearm/fault"
)

// The one rule for the URIs of a client's metadata, on every path that
// registers or edits a client.

// MaxURILength caps every URI of a client's metadata: no legitimate
// redirect URI comes near it, and a longer one only bloats every
// authorization request and every page that lists it.
const MaxURILength = 2000

// validateRedirectURI is THE rule for redirect and post-logout redirect
// URIs, on every path that registers or edits a client (CLI, admin API,
// console, /developer, RFC 7591/7592, apply): absolute URIs without
// fragments (RFC 6749 §3.1.2), https, http only on loopback hosts
// (RFC 8252 §7.3 native apps), or a private-use scheme with a dot (reverse
// domain name, RFC 8252 §7.1); never a user name or password (RFC 9700
// §4.1.1: the authorization server must match exactly, and credentials
// in a URI are deprecated by RFC 3986 §3.2.1), never a wildcard host
// (matching is exact, so `*` would never match: it is a mistake or a probe)
// and at most MaxURILength characters (counted as characters, not bytes).
// A private-use scheme is for native apps only, for redirect and
// post-logout redirect URIs alike: public clients on the operators' path
// (Registry.validate), the native type on the developers' (apps.go).
func validateRedirectURI(raw string) error {
	if n := utf8.RuneCountInString(raw); n > MaxURILength {
		return redirectInvalid("redirect URI %q is %d characters: at most %d", shortURI(raw), n, MaxURILength)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return redirectInvalid("redirect URI %q is not an absolute URI", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return redirectInvalid("redirect URI %q must not contain a fragment", raw)
	}
	if u.User != nil {
		return redirectInvalid("redirect URI %q must not contain a user name or password (user:password@)", raw)
	}
	if strings.Contains(u.Host, "*") {
		return redirectInvalid("redirect URI %q: a wildcard host is not allowed; register each exact URI", raw)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return redirectInvalid("redirect URI %q has no host", raw)
		}
	case "http":
		h := u.Hostname()
		if h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return redirectInvalid("redirect URI %q: http is only allowed on loopback; use https", raw)
		}
	default:
		if !strings.Contains(u.Scheme, ".") {
			return redirectInvalid("redirect URI %q: use https, http on loopback, or a reverse-domain private scheme", raw)
		}
	}
	return nil
}

// privateUse reports whether raw (a valid redirect URI) has a private-use
// scheme (RFC 8252 §7.1), which only a native app can receive.
func privateUse(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme != "https" && u.Scheme != "http"
}

// shortURI is raw cut to 60 characters for a message, on a character
// boundary (never inside a UTF-8 sequence), with "…" when cut.
func shortURI(raw string) string {
	n := 0
	for i := range raw {
		if n == 60 {
			return raw[:i] + "…"
		}
		n++
	}
	return raw
}

// validatePostLogoutURI holds a post-logout redirect URI (OpenID Connect
// RP-Initiated Logout 1.0 §3.1) to the redirect URIs' rule: the browser is
// sent there just the same.
func validatePostLogoutURI(raw string) error {
	err := validateRedirectURI(raw)
	var ve *fault.Error
	if errors.As(err, &ve) {
		return invalid("post-logout %s", ve.Message()).On("post_logout_redirect_uris")
	}
	return err
}

// validateBackchannelURI checks a back-channel logout URI (OpenID Connect
// Back-Channel Logout 1.0 §2.2: absolute, no fragment; https, or http on
// loopback for development), under the same length, user-info and
// wildcard rules as redirect URIs ("" is none).
func validateBackchannelURI(raw string) error {
	if raw == "" {
		return nil
	}
	short := shortURI(raw)
	bad := func(format string, args ...any) error {
		return invalid("back-channel logout URI %q"+format, append([]any{short}, args...)...).On("backchannel_logout_uri")
	}
	if n := utf8.RuneCountInString(raw); n > MaxURILength {
		return bad(" is %d characters: at most %d", n, MaxURILength)
	}
	p, err := url.Parse(raw)
	switch {
	case err != nil || !p.IsAbs() || p.Host == "":
		return bad(" is not an absolute URI with a host")
	case p.Fragment != "" || strings.Contains(raw, "#"):
		return bad(" must not contain a fragment")
	case p.User != nil:
		return bad(" must not contain a user name or password (user:password@)")
	case strings.Contains(p.Host, "*"):
		return bad(": a wildcard host is not allowed; register the exact URI")
	case p.Scheme != "https" && !(p.Scheme == "http" && (p.Hostname() == "localhost" || p.Hostname() == "127.0.0.1" || p.Hostname() == "::1")):
		return bad(": use https (http only on loopback)")
	}
	return nil
}

// webURL accepts an absolute https URL (or http on loopback unless
// httpsOnly) without user info.
func webURL(raw string, httpsOnly bool) error {
	u, err := url.Parse(raw)
	if err != nil || utf8.RuneCountInString(raw) > MaxURILength || !u.IsAbs() || u.Host == "" || u.User != nil {
		return errors.New("not a web URL")
	}
	if u.Scheme == "https" {
		return nil
	}
	if !httpsOnly && u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1") {
		return nil
	}
	return errors.New("not https")
}
