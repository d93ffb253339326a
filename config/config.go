// Package config reads tonearm's configuration from the environment and the
// flags of a command, and validates it. cmd/tonearm loads it; the web
// packages import only its mode types (modes.go), never the loader.
package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Config is the validated configuration.
type Config struct {
	Issuer      string
	Listen      string
	DatabaseURL string
	Database    Database
	Secret      []byte
	SecretFile  string // set when the development secret file is in use
	// SecretFileNew is set when SecretFile did not exist yet: Secret is a
	// fresh one that WriteDevSecret still has to store (serve does so only
	// once it holds its port, so a start that fails leaves no file behind).
	SecretFileNew bool
	// PreviousSecrets are earlier values of Secret: what they sealed or
	// keyed still opens and verifies while `tonearm reseal` moves it to
	// Secret (rotation of the master secret).
	PreviousSecrets [][]byte
	ListenBrainzURL string
	Registration    Registration
	SMTPURL         string // empty: reset tokens are logged
	// TrustedProxies are the peers whose Forwarded / X-Forwarded-For
	// headers are believed (empty: none; the peer is the client).
	TrustedProxies []netip.Prefix
	// RefreshGrace: a refresh token presented again this soon after its
	// rotation is answered like the first use (0: strict).
	RefreshGrace time.Duration
	// EventRetention is how long audit events are kept.
	EventRetention time.Duration
	// MetricsListen serves Prometheus metrics when set.
	MetricsListen string
	// PprofListen serves Go's profiler (net/http/pprof) when set.
	PprofListen string
	// SiteName is in every page's title and header.
	SiteName string
	// ThemeDir is TONEARM_THEME_DIR, checked at load by Parsers.Theme;
	// the pages read their stylesheet and logo from it when they are
	// built (empty: the built-in ones).
	ThemeDir string
	// DefaultLanguage is TONEARM_DEFAULT_LANGUAGE: the pages' and mails'
	// language when nothing chooses another (a BCP 47 tag a catalog
	// matches, checked at load by Parsers.Language; "" means English).
	DefaultLanguage string
	// ClientRegistration is Dynamic Client Registration (RFC 7591).
	ClientRegistration ClientRegistration
	// AdminMFA: whether admins must have signed in with two factors to use
	// the console and the admin API with a user token.
	AdminMFA AdminMFA
	// DPoPNonce: whether DPoP proofs must carry a server nonce (RFC 9449
	// §8, §9).
	DPoPNonce DPoPNonce
	// Verbose: an administration command logs what it does (-v); without
	// it, it prints only its answer.
	Verbose bool
	// IssuerFromListen: TONEARM_ISSUER was unset, so Issuer is
	// IssuerForListen(Listen); serve re-derives it from the bound address
	// when the port was 0 (the kernel picks one).
	IssuerFromListen bool
}

// Defaults, as docs/configuration.md lists them.
const (
	DefaultIssuer          = "http://127.0.0.1:8080"
	DefaultListen          = "127.0.0.1:8080"
	DefaultDatabaseURL     = "sqlite://tonearm.db"
	DefaultListenBrainzURL = "https://api.listenbrainz.org"
	DefaultRegistration    = RegistrationOpen
	// DefaultClientRegistration and DefaultAdminMFA: test harnesses that
	// build a Config by hand start from these, as a load does.
	DefaultClientRegistration = ClientRegistrationToken
	DefaultAdminMFA           = AdminMFAOptional
	DefaultSiteName           = "tonearm"
	DefaultLanguage           = "en"
	MinSecretLen              = 32
)

// Database is what config needs to know of TONEARM_DATABASE_URL, as the
// storage package reads it (Parsers.Database).
type Database struct {
	// Dialect names the backend, for the start-up log line.
	Dialect string
	// Path is the SQLite database file, beside which the development
	// secret is kept; empty for a database server (PostgreSQL), which
	// needs TONEARM_SECRET.
	Path string
}

// Parsers read the settings whose grammar belongs to a package config
// must not import (it would then import what it configures): the
// database URL (storage/sqlstore, which opens it) and the theme folder
// (templates, which renders it). cmd/tonearm passes them in.
type Parsers struct {
	// Database reads TONEARM_DATABASE_URL; its error is reported after
	// "TONEARM_DATABASE_URL: ".
	Database func(url string) (Database, error)
	// Theme checks TONEARM_THEME_DIR (its error names the variable).
	Theme func(dir string) error
	// Language checks TONEARM_DEFAULT_LANGUAGE against the catalogs,
	// the shipped ones and those of the theme folder (its error names the
	// variable).
	Language func(tag, themeDir string) error
}

type setting struct {
	env, flag, def, usage string
	dst                   *string
	// parse, when set, validates the value and stores it in the Config
	// being loaded: the one place the setting is read.
	parse func(v string) error
}

// Scope says which settings a command takes as flags; every other
// setting still comes from its variable (or its default).
type Scope int

const (
	// ServerSettings: every setting (serve, migrate).
	ServerSettings Scope = iota
	// DatabaseSettings: only the database URL as a flag (the secret from
	// TONEARM_SECRET), for the commands that open the database.
	DatabaseSettings
)

// databaseFlags are the flags of DatabaseSettings.
// The master secret is not among them: it comes from TONEARM_SECRET only,
// so --secret on a command always means a client's secret (clients create
// and update) and a flag never shows the server's secret in ps.
var databaseFlags = map[string]bool{"database-url": true}

// Variables lists every configuration variable (for the reference docs).
func Variables() []string {
	var out []string
	for _, s := range settingsOf(new(rawSettings), new(Config)) {
		out = append(out, s.env)
	}
	return out
}

type rawSettings struct {
	issuer, listen, db, secret, previous, lb, registration, smtp, proxies, grace, retention, metrics, pprof, site, theme, language, adminMFA, clientRegistration, dpopNonce string
}

// Setting is the value of the variable env from getenv, or its default:
// for a command that reads one setting without the others (health).
func Setting(getenv func(string) string, env string) string {
	for _, s := range settingsOf(new(rawSettings), new(Config)) {
		if s.env == env {
			if v := getenv(env); v != "" {
				return v
			}
			return s.def
		}
	}
	panic("config: no setting " + env)
}

// settingsOf is the one table of settings: each reads into raw, and those
// with a parser are validated into c.
func settingsOf(raw *rawSettings, c *Config) []setting {
	return []setting{
		{"TONEARM_ISSUER", "issuer", "", "issuer URL, exactly as in tokens; unset: http:// + the listen address (" + DefaultIssuer + " by default)", &raw.issuer, nil},
		{"TONEARM_LISTEN", "listen", DefaultListen, "listen address", &raw.listen, nil},
		{"TONEARM_DATABASE_URL", "database-url", DefaultDatabaseURL, "sqlite://FILE or postgres://…", &raw.db, nil},
		{"TONEARM_SECRET", "secret", "", "at least 32 bytes; keys HMAC and encryption at rest (prefer the variable: flags show in ps)", &raw.secret, nil},
		{"TONEARM_PREVIOUS_SECRETS", "previous-secrets", "", "earlier TONEARM_SECRET values, separated by commas or spaces: what they sealed still opens; tonearm reseal moves it under TONEARM_SECRET", &raw.previous, nil},
		{"TONEARM_LISTENBRAINZ_URL", "listenbrainz-url", DefaultListenBrainzURL, "ListenBrainz API base URL", &raw.lb, nil},
		{"TONEARM_REGISTRATION", "registration", string(DefaultRegistration), "open, or admin (only admins create users)", &raw.registration,
			func(v string) (err error) { c.Registration, err = ParseRegistration(v); return err }},
		{"TONEARM_CLIENT_REGISTRATION", "client-registration", string(DefaultClientRegistration), "dynamic client registration (RFC 7591) at /oauth2/register: token (an initial access token from /developer or tonearm registration-tokens create), open (anyone, limited per address) or off", &raw.clientRegistration,
			func(v string) (err error) { c.ClientRegistration, err = ParseClientRegistration(v); return err }},
		{"TONEARM_ADMIN_MFA", "admin-mfa", string(DefaultAdminMFA), "required: admins use the console and the admin API (with a user token) only after signing in with two factors (an authenticator app code or a passkey); optional", &raw.adminMFA,
			func(v string) (err error) { c.AdminMFA, err = ParseAdminMFA(v); return err }},
		{"TONEARM_DPOP_NONCE", "dpop-nonce", string(DPoPNonceOff), "on: DPoP proofs (RFC 9449) must carry a server nonce (DPoP-Nonce), which limits how long a proof made in advance lasts; off", &raw.dpopNonce,
			func(v string) (err error) { c.DPoPNonce, err = ParseDPoPNonce(v); return err }},
		{"TONEARM_SMTP_URL", "smtp-url", "", "smtp://user:password@host:587?from=… (STARTTLS required; smtps:// for TLS from the start; ?tls=none only for a local relay) for password reset mail; unset: logged", &raw.smtp, nil},
		{"TONEARM_REFRESH_GRACE", "refresh-grace", "0s", "how long after its rotation a refresh token presented again is answered like the first use (clients that lost the answer), e.g. 30s; 0s: strict", &raw.grace, nil},
		{"TONEARM_METRICS_LISTEN", "metrics-listen", "", "address of a separate listener serving Prometheus metrics at /metrics; unset: off", &raw.metrics, nil},
		// Variable only, no flag: profiling is an operator's switch for a
		// deployment, not part of a command line.
		{"TONEARM_PPROF_LISTEN", "", "", "address of a separate listener serving Go's profiler at /debug/pprof/ (keep it on loopback); unset: off", &raw.pprof,
			func(v string) error {
				if v != "" {
					if _, _, err := net.SplitHostPort(v); err != nil {
						return errors.New("TONEARM_PPROF_LISTEN must be host:port, for example 127.0.0.1:6060")
					}
				}
				c.PprofListen = v
				return nil
			}},
		{"TONEARM_EVENT_RETENTION", "event-retention", "2160h", "how long audit events are kept", &raw.retention, nil},
		{"TONEARM_SITE_NAME", "site-name", DefaultSiteName, "the name in every page's title and header", &raw.site, nil},
		{"TONEARM_THEME_DIR", "theme-dir", "", "a folder whose style.css and logo.svg replace the built-in ones (read at start-up); unset: built-in", &raw.theme, nil},
		{"TONEARM_DEFAULT_LANGUAGE", "default-language", DefaultLanguage, "the language of pages and mails when neither the app (ui_locales), the account, the picker nor the browser chooses one: a BCP 47 tag with a catalog (shipped or in TONEARM_THEME_DIR/locales)", &raw.language, nil},
		{"TONEARM_TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated CIDRs of the reverse proxies whose Forwarded / X-Forwarded-For name the client (e.g. 127.0.0.1/32,10.0.0.0/8); unset: none", &raw.proxies, nil},
	}
}

// Flags registers the configuration flags of scope on fs (register a
// command's own flags first) and returns a loader that, after fs.Parse,
// combines them with the environment (a flag set on the command line wins
// over its variable) and validates the result.
func Flags(fs *flag.FlagSet, getenv func(string) string, scope Scope, parsers Parsers) func() (Config, error) {
	if parsers.Database == nil || parsers.Theme == nil || parsers.Language == nil {
		panic("config: Flags needs Parsers.Database, Parsers.Theme and Parsers.Language")
	}
	var raw rawSettings
	var parsed Config
	settings := settingsOf(&raw, &parsed)
	own := map[string]bool{}
	for _, s := range settings {
		// A command's own flag of the same name wins (clients create
		// --secret is the client's secret); the setting then comes from
		// its variable only.
		if s.flag == "" || fs.Lookup(s.flag) != nil || (scope == DatabaseSettings && !databaseFlags[s.flag]) {
			continue
		}
		own[s.flag] = true
		fs.StringVar(s.dst, s.flag, "", fmt.Sprintf("%s (env %s, default %q)", s.usage, s.env, s.def))
	}
	return func() (Config, error) {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, s := range settings {
			if own[s.flag] && set[s.flag] {
				continue
			}
			if v := getenv(s.env); v != "" {
				*s.dst = v
			} else {
				*s.dst = s.def
			}
		}
		// With TONEARM_ISSUER unset the issuer
		// follows the listen address, so TONEARM_LISTEN alone moves the
		// whole setup (discovery, redirects, tokens) to the new port
		// instead of silently pointing browsers at :8080.
		fromListen := raw.issuer == ""
		if fromListen {
			iss, err := IssuerForListen(raw.listen)
			if err != nil {
				return Config{}, errors.New("TONEARM_LISTEN must be host:port, for example 127.0.0.1:8080")
			}
			raw.issuer = iss
		}
		c, err := build(raw.issuer, raw.listen, raw.db, raw.secret, raw.lb, parsers.Database)
		c.IssuerFromListen = fromListen
		if err != nil {
			if fromListen && strings.HasPrefix(err.Error(), "TONEARM_ISSUER") {
				return c, fmt.Errorf("TONEARM_ISSUER is unset and TONEARM_LISTEN %q gives no usable issuer URL: set TONEARM_ISSUER", raw.listen)
			}
			return c, err
		}
		if raw.smtp != "" {
			if u, perr := url.Parse(raw.smtp); perr != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" || u.Query().Get("from") == "" {
				return c, errors.New("TONEARM_SMTP_URL must look like smtp://user:password@host:587?from=tonearm@example.org (or smtps://…:465)")
			}
		}
		c.SMTPURL = raw.smtp
		if c.PreviousSecrets, err = ParsePreviousSecrets(raw.previous, c.Secret); err != nil {
			return c, err
		}
		// The settings with a parser in the table, each validated here
		// once, in table order.
		for _, s := range settings {
			if s.parse != nil {
				if err := s.parse(*s.dst); err != nil {
					return c, err
				}
			}
		}
		c.Registration, c.ClientRegistration, c.AdminMFA, c.PprofListen = parsed.Registration, parsed.ClientRegistration, parsed.AdminMFA, parsed.PprofListen
		c.DPoPNonce = parsed.DPoPNonce
		if c.TrustedProxies, err = ParseTrustedProxies(raw.proxies); err != nil {
			return c, err
		}
		if c.RefreshGrace, err = time.ParseDuration(raw.grace); err != nil || c.RefreshGrace < 0 || c.RefreshGrace > 10*time.Minute {
			return c, errors.New("TONEARM_REFRESH_GRACE must be a duration from 0s to 10m, for example 30s")
		}
		if raw.metrics != "" {
			if _, _, err := net.SplitHostPort(raw.metrics); err != nil {
				return c, errors.New("TONEARM_METRICS_LISTEN must be host:port, for example 127.0.0.1:9100")
			}
		}
		c.MetricsListen = raw.metrics
		if err = c.setPages(raw, parsers); err != nil {
			return c, err
		}
		if c.EventRetention, err = time.ParseDuration(raw.retention); err != nil || c.EventRetention < time.Hour {
			return c, errors.New("TONEARM_EVENT_RETENTION must be a duration of at least 1h, for example 2160h (90 days)")
		}
		return c, nil
	}
}

// setPages checks and sets what the pages look like and speak: the site
// name, the theme folder and the default language.
func (c *Config) setPages(raw rawSettings, parsers Parsers) error {
	if n := utf8.RuneCountInString(raw.site); n > 60 || !utf8.ValidString(raw.site) || strings.TrimSpace(raw.site) == "" || strings.IndexFunc(raw.site, unicode.IsControl) >= 0 {
		return errors.New("TONEARM_SITE_NAME must be 1 to 60 printable characters")
	}
	c.SiteName = strings.TrimSpace(raw.site)
	if err := parsers.Theme(raw.theme); err != nil {
		return err
	}
	c.ThemeDir = raw.theme
	if err := parsers.Language(raw.language, raw.theme); err != nil {
		return err
	}
	c.DefaultLanguage = raw.language
	return nil
}

// IssuerForListen is the issuer when TONEARM_ISSUER is unset: http:// and
// the listen address, an unspecified host (0.0.0.0, [::] or none) read as
// 127.0.0.1, the address a browser on this machine reaches (the default of
// TONEARM_ISSUER in docs/configuration.md).
func IssuerForListen(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	if a, perr := netip.ParseAddr(host); host == "" || (perr == nil && a.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// ParsePreviousSecrets reads TONEARM_PREVIOUS_SECRETS: secrets separated by
// commas or spaces (base64 and hex, as openssl prints them, hold neither),
// each held to TONEARM_SECRET's rule. The current secret, if listed, is
// left out: it is tried first anyway.
func ParsePreviousSecrets(v string, current []byte) ([][]byte, error) {
	var out [][]byte
	for i, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		if len(f) < MinSecretLen {
			return nil, fmt.Errorf("TONEARM_PREVIOUS_SECRETS: secret %d is shorter than %d bytes (each must be a former TONEARM_SECRET)", i+1, MinSecretLen)
		}
		if string(current) == f {
			continue
		}
		out = append(out, []byte(f))
	}
	return out, nil
}

// ParseTrustedProxies reads TONEARM_TRUSTED_PROXIES: CIDRs or single
// addresses, separated by commas or spaces.
func ParseTrustedProxies(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("TONEARM_TRUSTED_PROXIES: %q is not a CIDR such as 10.0.0.0/8 or an address", f)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func build(issuer, listen, db, secret, lb string, parseDatabase func(string) (Database, error)) (Config, error) {
	c := Config{Issuer: issuer, Listen: listen, DatabaseURL: db, ListenBrainzURL: lb}
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return c, errors.New("TONEARM_ISSUER must be an absolute http(s) URL without query or fragment")
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return c, errors.New("TONEARM_LISTEN must be host:port, for example 127.0.0.1:8080")
	}
	loc, err := parseDatabase(db)
	if err != nil {
		return c, fmt.Errorf("TONEARM_DATABASE_URL: %v", err)
	}
	c.Database = loc
	lbu, err := url.Parse(lb)
	if err != nil || (lbu.Scheme != "http" && lbu.Scheme != "https") || lbu.Host == "" {
		return c, errors.New("TONEARM_LISTENBRAINZ_URL must be an absolute http(s) URL")
	}
	switch {
	case secret != "":
		if len(secret) < MinSecretLen {
			return c, fmt.Errorf("TONEARM_SECRET must be at least %d bytes (try: openssl rand -hex 32)", MinSecretLen)
		}
		c.Secret = []byte(secret)
	case loc.Path == "":
		return c, fmt.Errorf("TONEARM_SECRET is required with PostgreSQL (at least %d bytes; try: openssl rand -hex 32)", MinSecretLen)
	default:
		c.SecretFile = loc.Path + ".secret"
		if _, err := os.Stat(c.SecretFile); errors.Is(err, fs.ErrNotExist) {
			raw := make([]byte, 32)
			if _, err := rand.Read(raw); err != nil {
				return c, err
			}
			c.Secret, c.SecretFileNew = []byte(hex.EncodeToString(raw)), true
			return c, nil
		}
		s, err := devSecret(c.SecretFile)
		if err != nil {
			return c, fmt.Errorf("TONEARM_SECRET is unset and the development secret file failed: %v", err)
		}
		c.Secret = s
	}
	return c, nil
}

// WriteDevSecret stores a new development secret (SecretFileNew) in
// SecretFile, mode 0600. If another process stored one first, that one is
// read and used instead, so both agree.
func WriteDevSecret(c *Config) error {
	if !c.SecretFileNew {
		return nil
	}
	s, err := devSecretWith(c.SecretFile, c.Secret)
	if err != nil {
		return fmt.Errorf("TONEARM_SECRET is unset and the development secret file failed: %v", err)
	}
	c.Secret, c.SecretFileNew = s, false
	return nil
}

// devSecret reads the development secret from path, generating it once
// (mode 0600). The new file is written aside and hard-linked into place, which
// fails if the file exists: two processes starting together agree on one
// secret and neither reads a half-written file.
func devSecret(path string) ([]byte, error) { return devSecretWith(path, nil) }

// devSecretWith is devSecret writing fresh (a hex secret) when the file
// does not exist (a new random one when fresh is nil).
func devSecretWith(path string, fresh []byte) ([]byte, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if fresh == nil {
			raw := make([]byte, 32)
			if _, err := rand.Read(raw); err != nil {
				return nil, err
			}
			fresh = []byte(hex.EncodeToString(raw))
		}
		tmp, err := os.CreateTemp(filepath.Dir(path), ".tonearm-secret-*")
		if err != nil {
			return nil, err
		}
		defer os.Remove(tmp.Name())
		_, werr := tmp.WriteString(string(fresh) + "\n")
		serr := tmp.Sync()
		if err := errors.Join(werr, serr, tmp.Close()); err != nil {
			return nil, err
		}
		if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by other users (mode %v): chmod 600 it", path, info.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSpace(string(b))
	if len(s) < MinSecretLen {
		return nil, fmt.Errorf("%s holds fewer than %d bytes", path, MinSecretLen)
	}
	return []byte(s), nil
}
