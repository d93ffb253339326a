package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/provider/keys"
	"github.com/tonearm-idp/tonearm/provider/listenbrainz"
	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/web"
)

// app is everything built from one configuration.
type app struct {
	store    *sqlstore.Store
	accounts *accounts.Service
	clients  *clients.Registry
	keys     *keys.Manager
	provider *provider.Provider
	handler  http.Handler
}

// options are the knobs tests turn; production uses the zero value.
type options struct {
	hashParams *accounts.HashParams
	lbTimeout  time.Duration
	now        func() time.Time
	lifespans  *provider.Lifespans
}

// Purposes of the keys derived from TONEARM_SECRET: each key does one job.
const (
	purposeListenBrainzToken = "listenbrainz-token"
	purposeSigningKeys       = "signing-keys"
	purposeTokenHMAC         = "oauth2-hmac"
	purposeClientSecrets     = "client-secrets"
	purposeCSRF              = "csrf"
)

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
	tokenBox, err := seal.New(seal.DeriveKey(cfg.Secret, purposeListenBrainzToken))
	if err != nil {
		return nil, err
	}
	params := accounts.DefaultHashParams
	if opt.hashParams != nil {
		params = *opt.hashParams
	}
	acc, err := accounts.New(accounts.Config{
		Store: store, Hasher: accounts.NewHasher(params, 0, 1024), Validator: lb, Box: tokenBox, Logger: log, Now: opt.now,
	})
	if err != nil {
		return nil, err
	}

	lifespans := provider.DefaultLifespans
	if opt.lifespans != nil {
		lifespans = *opt.lifespans
	}
	keyBox, err := seal.New(seal.DeriveKey(cfg.Secret, purposeSigningKeys))
	if err != nil {
		return nil, err
	}
	km, err := keys.New(ctx, keys.Config{
		Store: store, Box: keyBox, Retention: lifespans.MaxSignedLifetime() + 5*time.Minute, Now: opt.now, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	hasher, err := clients.NewSecretHasher(seal.DeriveKey(cfg.Secret, purposeClientSecrets))
	if err != nil {
		return nil, err
	}
	registry, err := clients.NewRegistry(store, hasher)
	if err != nil {
		return nil, err
	}
	adapter, err := fositestore.New(store, provider.NewFositeSession, fositestore.Lifespans{
		AuthorizeCode: lifespans.AuthorizeCode, AccessToken: lifespans.AccessToken, RefreshToken: lifespans.RefreshToken,
	})
	if err != nil {
		return nil, err
	}
	p, err := provider.New(provider.Config{
		Issuer: cfg.Issuer, Store: adapter, Keys: km, HMACSecret: seal.DeriveKey(cfg.Secret, purposeTokenHMAC),
		SecretsHasher: hasher, Lifespans: lifespans,
	})
	if err != nil {
		return nil, err
	}

	limiter := web.NewLoginLimiter(opt.now)
	userAPI, err := web.NewUserAPI(web.UserAPIConfig{
		Accounts: acc, Issuer: cfg.Issuer, Registration: cfg.Registration, Logger: log, Limiter: limiter, Tokens: p,
	})
	if err != nil {
		return nil, err
	}
	oauth, err := web.NewOAuth(web.OAuthConfig{
		Provider: p, Accounts: acc, Consents: store, Limiter: limiter,
		CSRFKey: seal.DeriveKey(cfg.Secret, purposeCSRF), Logger: log, Now: opt.now,
	})
	if err != nil {
		return nil, fmt.Errorf("pages: %w", err)
	}
	health, err := web.NewHealth(store, log)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	userAPI.Routes(mux)
	oauth.Routes(mux)
	health.Routes(mux)
	return &app{store: store, accounts: acc, clients: registry, keys: km, provider: p, handler: web.Middleware(log, mux)}, nil
}
