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
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/provider/backchannel"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/provider/device"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/provider/keys"
	"github.com/tonearm-idp/tonearm/provider/listenbrainz"
	"github.com/tonearm-idp/tonearm/provider/mail"
	"github.com/tonearm-idp/tonearm/provider/passkeys"
	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/templates"
	"github.com/tonearm-idp/tonearm/web"
	"github.com/tonearm-idp/tonearm/web/interaction"
	"github.com/tonearm-idp/tonearm/web/jsonapi"
	"github.com/tonearm-idp/tonearm/web/pages"
	"github.com/tonearm-idp/tonearm/web/protocol"
)

// app is everything built from one configuration.
type app struct {
	// endpoints are the JSON API routes, for the OpenAPI test.
	endpoints []jsonapi.Endpoint
	// securityCode is the one-time first-admin code ("" when an admin exists).
	securityCode string
	store        *sqlstore.Store
	accounts     *accounts.Service
	clients      *clients.Registry
	apis         *apis.Registry
	connectors   *connectors.Registry
	// initialTokens are RFC 7591 initial access tokens.
	initialTokens *clients.RegistrationTokens
	// health goes unready when serve starts draining.
	health *web.Health
	// metrics are served on TONEARM_METRICS_LISTEN (nil when unset).
	metrics *web.Metrics
	// backchannel delivers logout tokens; serve runs it.
	backchannel *backchannel.Deliverer
	keys        *keys.Manager
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
)

// sealBox seals under the key of purpose derived from TONEARM_SECRET and
// opens also what the keys derived from TONEARM_PREVIOUS_SECRETS sealed, so
// the master secret can be rotated (see tonearm reseal).
func sealBox(cfg config.Config, purpose string) (*seal.Box, error) {
	return seal.New(seal.DeriveKey(cfg.Secret, purpose), seal.DeriveKeys(cfg.PreviousSecrets, purpose)...)
}

func build(ctx context.Context, cfg config.Config, log *slog.Logger) (*app, error) {
	return buildWith(ctx, cfg, log, options{})
}

func buildWith(ctx context.Context, cfg config.Config, log *slog.Logger, opt options) (a *app, err error) {
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	lb, err := listenbrainz.New(cfg.ListenBrainzURL, opt.lbTimeout)
	if err != nil {
		return nil, err
	}
	tokenBox, err := sealBox(cfg, purposeListenBrainzToken)
	if err != nil {
		return nil, err
	}
	mailer := opt.mailer
	if mailer == nil {
		if cfg.SMTPURL != "" {
			if mailer, err = mail.NewSMTP(cfg.SMTPURL, cfg.Issuer); err != nil {
				return nil, err
			}
		} else {
			mailer = &mail.Log{Issuer: cfg.Issuer, Logger: log}
		}
	}
	params := accounts.DefaultHashParams
	if opt.hashParams != nil {
		params = *opt.hashParams
	}
	passwords := accounts.NewHasher(params, 0, 1024)
	acc, err := accounts.New(accounts.Config{
		Store: store, Hasher: passwords, Validator: lb, Box: tokenBox, Logger: log, Now: opt.now, Mailer: mailer,
		RecoveryKey: seal.DeriveKey(cfg.Secret, purposeRecoveryCodes), PreviousRecoveryKeys: seal.DeriveKeys(cfg.PreviousSecrets, purposeRecoveryCodes),
	})
	if err != nil {
		return nil, err
	}

	lifespans := provider.DefaultLifespans
	if opt.lifespans != nil {
		lifespans = *opt.lifespans
	}
	keyBox, err := sealBox(cfg, purposeSigningKeys)
	if err != nil {
		return nil, err
	}
	km, err := keys.New(ctx, keys.Config{
		Store: store, Box: keyBox, Retention: lifespans.MaxSignedLifetime() + 5*time.Minute, Now: opt.now, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	hasher, err := clients.NewSecretHasher(seal.DeriveKey(cfg.Secret, purposeClientSecrets), seal.DeriveKeys(cfg.PreviousSecrets, purposeClientSecrets)...)
	if err != nil {
		return nil, err
	}
	// A client secret or token shown to match under a previous secret is
	// stored again under the current one (see tonearm reseal).
	hasher.OnPreviousKey(func(ctx context.Context, old, current []byte) {
		if _, err := store.RekeyClientHash(ctx, old, current); err != nil {
			log.Warn("storing a client secret's hash under the current TONEARM_SECRET failed", "err", err)
		}
	})
	registry, err := clients.NewRegistry(store, hasher)
	if err != nil {
		return nil, err
	}
	apiRegistry, err := apis.NewRegistry(store, provider.BuiltinAPI(cfg.Issuer), opt.now)
	if err != nil {
		return nil, err
	}
	registry.AdmitAPIScopes(apiRegistry)
	if shadow, found, err := apiRegistry.Shadowing(ctx); err != nil {
		return nil, err
	} else if found {
		log.Warn("a registered API has the id of tonearm's own API and is ignored; delete it with tonearm apis delete", "api", shadow.ID)
	}
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
	p, err := provider.New(provider.Config{
		Devices: deviceCodes, Registration: cfg.ClientRegistration != config.ClientRegistrationOff,
		Issuer: cfg.Issuer, Store: adapter, Keys: km, HMACSecret: seal.DeriveKey(cfg.Secret, purposeTokenHMAC),
		PreviousHMACSecrets: seal.DeriveKeys(cfg.PreviousSecrets, purposeTokenHMAC),
		SecretsHasher:       hasher, Lifespans: lifespans, APIs: apiRegistry, Users: store,
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
		metrics = web.NewMetrics(sqlDB, func() int { _, waiting := passwords.InFlight(); return waiting })
	}
	limiter, err := web.NewLoginLimiter(store, devices, log, opt.now)
	if err != nil {
		return nil, err
	}
	signups, recovery, err := accountPolicies(cfg, acc, bootstrap, mailer, log)
	if err != nil {
		return nil, err
	}
	userAPI, err := jsonapi.NewUserAPI(jsonapi.UserAPIConfig{
		Accounts: acc, Signups: signups, Issuer: cfg.Issuer, Logger: log, Limiter: limiter, Tokens: p, Metrics: metrics,
	})
	if err != nil {
		return nil, err
	}
	meAPI, err := jsonapi.NewMeAPI(acc, cfg.Issuer, p, limiter, log)
	if err != nil {
		return nil, err
	}
	connectorBox, err := sealBox(cfg, purposeConnectorSecrets)
	if err != nil {
		return nil, err
	}
	upstreams, err := connectors.New(store, connectorBox, cfg.Issuer, opt.upstreamClient, opt.now)
	if err != nil {
		return nil, err
	}
	adminAPI, err := jsonapi.NewAdminAPI(acc, registry, apiRegistry, upstreams, store, adapter.ForgetClient, cfg.Issuer, p, log)
	if err != nil {
		return nil, err
	}
	theme, err := templates.LoadTheme(cfg.ThemeDir)
	if err != nil {
		return nil, err
	}
	site, err := web.NewSite(web.SiteConfig{Name: cfg.SiteName, Issuer: cfg.Issuer, Theme: theme, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("pages: %w", err)
	}
	publicAPI, err := jsonapi.NewPublicAPI(acc, recovery, cfg.Issuer, limiter, log)
	if err != nil {
		return nil, err
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
		Signups: signups, Logger: log, Now: opt.now,
	})
	if err != nil {
		return nil, err
	}
	oauth, err := protocol.NewOAuth(protocol.OAuthConfig{
		Provider: p, Site: site, Accounts: acc, Limiter: limiter,
		CSRFKey: seal.DeriveKey(cfg.Secret, purposeCSRF), Logger: log, Now: opt.now, Metrics: metrics,
		Interactions: interactions,
	})
	if err != nil {
		return nil, fmt.Errorf("pages: %w", err)
	}
	initialTokens, err := clients.NewRegistrationTokens(store, hasher, opt.now)
	if err != nil {
		return nil, err
	}
	people, err := pages.New(pages.Config{
		Site: site, Accounts: acc, Clients: registry, APIs: apiRegistry, Keys: km, Recovery: recovery, Devices: deviceCodes, Passkeys: passkeyCeremonies, Events: store, Scopes: p,
		Interactions: interactions, Connectors: upstreams, Apps: registry, InitialTokens: initialTokens,
		Limiter: limiter, Metrics: metrics, CSRFKey: seal.DeriveKey(cfg.Secret, purposeCSRF), Issuer: cfg.Issuer,
		Signups: signups, AdminMFA: cfg.AdminMFA, ForgetClient: adapter.ForgetClient, Logger: log, Now: opt.now,
	})
	if err != nil {
		return nil, err
	}
	if cfg.AdminMFA == config.AdminMFARequired {
		jsonapi.RequireAdminMFA(adminAPI)
		jsonapi.RequireAdminMFA(userAPI)
	}
	registration, err := protocol.NewRegistration(protocol.RegistrationConfig{
		Mode: cfg.ClientRegistration, Apps: registry, Tokens: initialTokens, Limiter: limiter, Events: store, Metrics: metrics,
		Issuer: cfg.Issuer, ForgetClient: adapter.ForgetClient, Logger: log, Now: opt.now,
	})
	if err != nil {
		return nil, err
	}
	health, err := web.NewHealth(store, log)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	userAPI.Routes(mux)
	meAPI.Routes(mux)
	adminAPI.Routes(mux)
	publicAPI.Routes(mux)
	jsonapi.ServeOpenAPI(mux)
	oauth.Routes(mux)
	interactions.Routes(mux)
	registration.Routes(mux)
	site.Routes(mux)
	people.Routes(mux)
	health.Routes(mux)
	var endpoints []jsonapi.Endpoint
	for _, api := range []interface{ Endpoints() []jsonapi.Endpoint }{userAPI, meAPI, adminAPI, publicAPI} {
		endpoints = append(endpoints, api.Endpoints()...)
	}
	endpoints = append(endpoints, jsonapi.Endpoint{Method: http.MethodGet, Path: jsonapi.OpenAPIPath})
	return &app{securityCode: code, endpoints: endpoints, store: store, accounts: acc, clients: registry, apis: apiRegistry, connectors: upstreams, initialTokens: initialTokens, backchannel: deliverer, metrics: metrics, health: health, keys: km, provider: p, handler: web.Middleware(log, web.Frontend{
		TrustedProxies: cfg.TrustedProxies, HSTS: strings.HasPrefix(cfg.Issuer, "https://"), Metrics: metrics,
	}, mux)}, nil
}
