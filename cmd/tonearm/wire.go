package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/backchannel"
	"github.com/tonearm-idp/tonearm/provider/clientkeys"
	"github.com/tonearm-idp/tonearm/provider/device"
	"github.com/tonearm-idp/tonearm/provider/dpop"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/provider/passkeys"
	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/templates"
	"github.com/tonearm-idp/tonearm/web"
	"github.com/tonearm-idp/tonearm/web/interaction"
	"github.com/tonearm-idp/tonearm/web/jsonapi"
	"github.com/tonearm-idp/tonearm/web/pages"
	"github.com/tonearm-idp/tonearm/web/protocol"
)

// app is everything serve builds from one configuration: the services
// and the server on them.
type app struct {
	*services
	// endpoints are the JSON API routes, for the OpenAPI test.
	endpoints []jsonapi.Endpoint
	// securityCode is the one-time first-admin code ("" when an admin exists).
	securityCode string
	// health goes unready when serve starts draining.
	health *web.Health
	// metrics are served on TONEARM_METRICS_LISTEN (nil when unset).
	metrics *web.Metrics
	// backchannel delivers logout tokens; serve runs it.
	backchannel *backchannel.Deliverer
	provider    *provider.Provider
	handler     http.Handler
}

// options are the knobs tests turn; production uses the zero value.
type options struct {
	hashParams *accounts.HashParams
	lbTimeout  time.Duration
	now        func() time.Time
	lifespans  *provider.Lifespans
	mailer     accounts.Mailer
	// noBackchannel: the test runs no back-channel logout worker (a
	// replica that died before delivering).
	noBackchannel bool
	// upstreamClient is the HTTP client connectors use (nil: the default).
	upstreamClient *http.Client
	// catalogs are the pages' languages (nil: the shipped ones).
	catalogs *locale.Catalogs
}

// tokenLifespans are the lifespans the test set, else the defaults.
func (o options) tokenLifespans() provider.Lifespans {
	if o.lifespans != nil {
		return *o.lifespans
	}
	return provider.DefaultLifespans
}

// Purposes of the keys derived from TONEARM_SECRET: each key does one job.
const (
	purposeListenBrainzToken = "listenbrainz-token"
	purposeSigningKeys       = "signing-keys"
	purposeTokenHMAC         = "oauth2-hmac"
	purposeClientSecrets     = "client-secrets"
	purposeCSRF              = "csrf"
	purposeKnownDevice       = "known-device"
	purposeDeviceCodes       = "device-codes"
	purposeConnectorSecrets  = "connector-secrets"
	purposeInteractions      = "interactions"
	purposeRecoveryCodes     = "recovery-codes"
	purposeInstanceSecrets   = "instance-secrets"
	purposeDPoPNonces        = "dpop-nonces"
)

// dpopVerifier checks DPoP proofs (RFC 9449); their jtis are recorded in
// the database, so a proof is used once across replicas, and server nonces
// are keyed by TONEARM_SECRET, so every replica accepts the others'.
func dpopVerifier(cfg config.Config, store dpop.OneTimeStore, now func() time.Time) (*dpop.Verifier, error) {
	c := dpop.Config{Once: store, IsReplay: func(err error) bool { return errors.Is(err, storage.ErrAlreadyExists) }, Now: now}
	if cfg.DPoPNonce == config.DPoPNonceOn {
		c.NonceKey = seal.DeriveKey(cfg.Secret, purposeDPoPNonces)
	}
	return dpop.New(c)
}

// sealBox seals under the key of purpose derived from TONEARM_SECRET and
// opens also what the keys derived from TONEARM_PREVIOUS_SECRETS sealed, so
// the master secret can be rotated (see tonearm reseal).
func sealBox(cfg config.Config, purpose string) (*seal.Box, error) {
	return seal.New(seal.DeriveKey(cfg.Secret, purpose), seal.DeriveKeys(cfg.PreviousSecrets, purpose)...)
}

func build(ctx context.Context, cfg config.Config, log *slog.Logger) (*app, error) {
	return buildWith(ctx, cfg, log, options{})
}

// buildWith builds the three layers: the store, every service on it and
// the server.
func buildWith(ctx context.Context, cfg config.Config, log *slog.Logger, opt options) (a *app, err error) {
	svc, err := openServices(ctx, cfg, log, opt, needEverything)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			svc.store.Close()
		}
	}()
	return buildServer(ctx, cfg, log, opt, svc)
}

// serverParts are what the pages and the JSON APIs of the server share.
type serverParts struct {
	*services
	adapter     *fositestore.Adapter
	deviceCodes *device.Codes
	provider    *provider.Provider
	limiter     *web.LoginLimiter
	metrics     *web.Metrics
	bootstrap   *accounts.Bootstrap
	signups     *accounts.Signups
	recovery    *accounts.Recovery
}

// buildServer builds the OAuth 2.0 provider on the services, the
// back-channel logout worker and the HTTP handler.
func buildServer(ctx context.Context, cfg config.Config, log *slog.Logger, opt options, svc *services) (*app, error) {
	lifespans := opt.tokenLifespans()
	store := svc.store
	adapter, err := fositestore.New(store, provider.NewFositeSession, fositestore.Lifespans{
		AuthorizeCode: lifespans.AuthorizeCode, AccessToken: lifespans.AccessToken, RefreshToken: lifespans.RefreshToken,
		RefreshGrace: cfg.RefreshGrace,
	})
	if err != nil {
		return nil, err
	}
	adapter.WithClock(opt.now)
	deviceCodes, err := device.New(store, seal.DeriveKey(cfg.Secret, purposeDeviceCodes), opt.now)
	if err != nil {
		return nil, err
	}
	subjectBox, err := sealBox(cfg, purposeInstanceSecrets)
	if err != nil {
		return nil, err
	}
	subjects, err := provider.LoadSubjects(ctx, store, subjectBox)
	if err != nil {
		return nil, err
	}
	proofs, err := dpopVerifier(cfg, store, opt.now)
	if err != nil {
		return nil, err
	}
	p, err := provider.New(provider.Config{
		DPoP: proofs, Devices: deviceCodes, Registration: cfg.ClientRegistration != config.ClientRegistrationOff, Subjects: subjects,
		Issuer: cfg.Issuer, Store: adapter, Keys: svc.keys, HMACSecret: seal.DeriveKey(cfg.Secret, purposeTokenHMAC),
		PreviousHMACSecrets: seal.DeriveKeys(cfg.PreviousSecrets, purposeTokenHMAC),
		SecretsHasher:       svc.secretHasher, Lifespans: lifespans, APIs: svc.apis, Users: store,
		UsedOnce: store, ClientKeys: clientkeys.NewKeys(svc.fetcher), UILocales: svc.languages.Tags(),
	})
	if err != nil {
		return nil, err
	}

	deliverer, err := backchannel.New(store, p, nil, log, nil)
	if err != nil {
		return nil, err
	}
	bootstrap, code, err := accounts.NewBootstrap(ctx, store)
	if err != nil {
		return nil, err
	}
	devices := web.NewDeviceCookies(seal.DeriveKey(cfg.Secret, purposeKnownDevice), cfg.Issuer, opt.now, seal.DeriveKeys(cfg.PreviousSecrets, purposeKnownDevice)...)
	var metrics *web.Metrics
	if cfg.MetricsListen != "" {
		sqlDB, err := store.SQLDB()
		if err != nil {
			return nil, err
		}
		passwords := svc.passwords
		metrics = web.NewMetrics(sqlDB, func() int { _, waiting := passwords.InFlight(); return waiting })
	}
	limiter, err := web.NewLoginLimiter(store, devices, log, opt.now)
	if err != nil {
		return nil, err
	}
	signups, recovery, err := accountPolicies(cfg, svc.accounts, bootstrap, svc.mailer, log)
	if err != nil {
		return nil, err
	}
	parts := &serverParts{services: svc, adapter: adapter, deviceCodes: deviceCodes, provider: p, limiter: limiter, metrics: metrics, bootstrap: bootstrap, signups: signups, recovery: recovery}
	handler, endpoints, health, err := parts.handler(cfg, log, opt)
	if err != nil {
		return nil, err
	}
	return &app{services: svc, securityCode: code, endpoints: endpoints, backchannel: deliverer, metrics: metrics, health: health, provider: p, handler: handler}, nil
}

// jsonAPIs are the JSON APIs of the server.
type jsonAPIs struct {
	user   *jsonapi.UserAPI
	me     *jsonapi.MeAPI
	admin  *jsonapi.AdminAPI
	public *jsonapi.PublicAPI
}

// jsonAPIs builds the JSON APIs.
func (s *serverParts) jsonAPIs(cfg config.Config, log *slog.Logger) (*jsonAPIs, error) {
	acc, p, limiter, metrics := s.accounts, s.provider, s.limiter, s.metrics
	userAPI, err := jsonapi.NewUserAPI(jsonapi.UserAPIConfig{
		Accounts: acc, Signups: s.signups, Issuer: cfg.Issuer, Logger: log, Limiter: limiter, Tokens: p, Metrics: metrics,
	})
	if err != nil {
		return nil, err
	}
	meAPI, err := jsonapi.NewMeAPI(acc, cfg.Issuer, p, limiter, log)
	if err != nil {
		return nil, err
	}
	adminAPI, err := jsonapi.NewAdminAPI(acc, s.clients, s.apis, s.connectors, s.store, s.adapter.ForgetClient, cfg.Issuer, p, log)
	if err != nil {
		return nil, err
	}
	publicAPI, err := jsonapi.NewPublicAPI(acc, s.recovery, cfg.Issuer, limiter, log)
	if err != nil {
		return nil, err
	}
	if cfg.AdminMFA == config.AdminMFARequired {
		jsonapi.RequireAdminMFA(adminAPI)
		jsonapi.RequireAdminMFA(userAPI)
	}
	return &jsonAPIs{user: userAPI, me: meAPI, admin: adminAPI, public: publicAPI}, nil
}

// handler builds the pages and the JSON APIs and mounts them, with the
// JSON routes (for the OpenAPI test) and the health checks.
func (s *serverParts) handler(cfg config.Config, log *slog.Logger, opt options) (http.Handler, []jsonapi.Endpoint, *web.Health, error) {
	api, err := s.jsonAPIs(cfg, log)
	if err != nil {
		return nil, nil, nil, err
	}
	routes, err := s.pages(cfg, log, opt)
	if err != nil {
		return nil, nil, nil, err
	}
	health, err := web.NewHealth(s.store, log)
	if err != nil {
		return nil, nil, nil, err
	}
	mux := http.NewServeMux()
	api.user.Routes(mux)
	api.me.Routes(mux)
	api.admin.Routes(mux)
	api.public.Routes(mux)
	jsonapi.ServeOpenAPI(mux)
	for _, r := range routes {
		r.Routes(mux)
	}
	health.Routes(mux)
	var endpoints []jsonapi.Endpoint
	for _, api := range []interface{ Endpoints() []jsonapi.Endpoint }{api.user, api.me, api.admin, api.public} {
		endpoints = append(endpoints, api.Endpoints()...)
	}
	endpoints = append(endpoints, jsonapi.Endpoint{Method: http.MethodGet, Path: jsonapi.OpenAPIPath})
	return web.Middleware(log, web.Frontend{
		TrustedProxies: cfg.TrustedProxies, HSTS: strings.HasPrefix(cfg.Issuer, "https://"), Metrics: s.metrics,
	}, mux), endpoints, health, nil
}

// router is a part of the server that mounts its routes.
type router interface{ Routes(*http.ServeMux) }

// pages builds the site (templates and theme), passkeys, the sign-in
// interactions, the OAuth 2.0 endpoints, the people's pages and RFC 7591
// registration, as the routers to mount.
func (s *serverParts) pages(cfg config.Config, log *slog.Logger, opt options) ([]router, error) {
	store, acc, registry, apiRegistry, upstreams := s.store, s.accounts, s.clients, s.apis, s.connectors
	p, limiter, metrics, adapter, initialTokens := s.provider, s.limiter, s.metrics, s.adapter, s.initialTokens
	theme, err := templates.LoadTheme(cfg.ThemeDir)
	if err != nil {
		return nil, err
	}
	cats := s.languages
	if opt.catalogs != nil {
		cats = opt.catalogs
	}
	// The pages whose handler does not load the account still speak the
	// signed-in person's saved language (one session lookup, only for a
	// browser that holds a session cookie).
	sessionCookies := web.NewCookies(cfg.Issuer)
	accountLanguage := func(r *http.Request) string {
		if sessionCookies.Value(r) == "" {
			return ""
		}
		c, err := web.SessionCaller(r.Context(), r, sessionCookies, acc)
		if err != nil {
			return ""
		}
		return c.User.Language
	}
	site, err := web.NewSite(web.SiteConfig{Name: cfg.SiteName, Issuer: cfg.Issuer, Theme: theme, Logger: log, Catalogs: cats,
		AccountLanguage: accountLanguage})
	if err != nil {
		return nil, fmt.Errorf("pages: %w", err)
	}
	// Passkeys need a domain name: WebAuthn relying-party IDs cannot be
	// IP addresses.
	var passkeyCeremonies pages.Passkeys // stays a nil interface when off
	switch pk, err := passkeys.New(passkeys.Config{Issuer: cfg.Issuer, SiteName: cfg.SiteName, Store: store, Logger: log, Now: opt.now}); {
	case errors.Is(err, passkeys.ErrUnavailable):
		log.Info("passkeys are off: the issuer's host is an IP address, not a domain name", "issuer", cfg.Issuer)
	case err != nil:
		return nil, err
	default:
		passkeyCeremonies = pk
	}
	interactionBox, err := sealBox(cfg, purposeInteractions)
	if err != nil {
		return nil, err
	}
	var passkeyLogin web.PasskeyLogin
	if passkeyCeremonies != nil {
		passkeyLogin = passkeyCeremonies
	}
	interactions, err := interaction.New(interaction.Config{
		Site: site, Store: store, Accounts: acc, Connectors: upstreams, Scopes: p, Passkeys: passkeyLogin, Limiter: limiter,
		Metrics: metrics, Box: interactionBox, CSRFKey: seal.DeriveKey(cfg.Secret, purposeCSRF), Issuer: cfg.Issuer,
		Signups: s.signups, Logger: log, Now: opt.now,
	})
	if err != nil {
		return nil, err
	}
	oauth, err := protocol.NewOAuth(protocol.OAuthConfig{
		Provider: p, Site: site, Accounts: acc, Limiter: limiter,
		CSRFKey: seal.DeriveKey(cfg.Secret, purposeCSRF), Logger: log, Now: opt.now, Metrics: metrics,
		Interactions: interactions,
		// Request objects (RFC 9101) are verified with the keys, and fetched
		// through the guarded fetcher, that private_key_jwt uses.
		RequestObjects: protocol.RequestObjects{Keys: p.ClientKeys(), Fetcher: p.ClientKeys().Fetcher(), Once: store},
	})
	if err != nil {
		return nil, fmt.Errorf("pages: %w", err)
	}
	people, err := pages.New(pages.Config{
		Site: site, Accounts: acc, Clients: registry, APIs: apiRegistry, Keys: s.keys, Recovery: s.recovery, Devices: s.deviceCodes, Passkeys: passkeyCeremonies, Events: store, Scopes: p,
		Interactions: interactions, Connectors: upstreams, Apps: registry, InitialTokens: initialTokens,
		Limiter: limiter, Metrics: metrics, CSRFKey: seal.DeriveKey(cfg.Secret, purposeCSRF), Issuer: cfg.Issuer,
		Signups: s.signups, AdminMFA: cfg.AdminMFA, ForgetClient: adapter.ForgetClient, Logger: log, Now: opt.now,
	})
	if err != nil {
		return nil, err
	}
	registration, err := protocol.NewRegistration(protocol.RegistrationConfig{
		Mode: cfg.ClientRegistration, Apps: registry, Tokens: initialTokens, Limiter: limiter, Events: store, Metrics: metrics,
		Issuer: cfg.Issuer, ForgetClient: adapter.ForgetClient, Logger: log, Now: opt.now,
	})
	if err != nil {
		return nil, err
	}
	return []router{oauth, interactions, registration, site, people}, nil
}
