package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clientkeys"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/provider/keys"
	"github.com/tonearm-idp/tonearm/provider/listenbrainz"
	"github.com/tonearm-idp/tonearm/provider/mail"
	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/templates"
)

// The three layers of the composition root: the store (openStore), the
// services on it (buildServices, this file) and the server, the OAuth 2.0
// provider with the HTTP handler (buildServer, wire.go). serve builds all
// three; an administration command opens the store and only the services
// it acts through, never the pages, passkeys or the workers of a server.

// need names the services a command acts through.
type need uint

const (
	needAccounts need = 1 << iota
	needAPIs
	needClients // with the APIs: a client holds API scopes
	needConnectors
	needRegistrationTokens
	needKeys
	needEverything = needAccounts | needAPIs | needClients | needConnectors | needRegistrationTokens | needKeys
)

// services are the store and the services built on it; each is nil
// unless it was needed.
type services struct {
	store *sqlstore.Store
	// issuer is TONEARM_ISSUER (or the listen address's).
	issuer        string
	accounts      *accounts.Service
	clients       *clients.Registry
	apis          *apis.Registry
	connectors    *connectors.Registry
	initialTokens *clients.RegistrationTokens // RFC 7591 initial access tokens
	keys          *keys.Manager
	// The parts the server shares with the services.
	passwords    *accounts.Hasher
	mailer       accounts.Mailer
	secretHasher *clients.SecretHasher
	// fetcher is the one guarded fetcher of the URLs clients register
	// (jwks_uri, request_uri, sector_identifier_uri).
	fetcher *clientkeys.Fetcher
	// languages are the catalogs (shipped and TONEARM_THEME_DIR/locales),
	// loaded once: the pages, the mails, the accounts' saved language and
	// discovery share them.
	languages *locale.Catalogs
}

// cliEvent records what an operator did on the command line (actor
// "cli"); a failure is reported, the action stands.
func (s *services) cliEvent(ctx context.Context, typ, client string, detail map[string]any) {
	ctx = audit.WithOrigin(ctx, audit.Origin{Actor: "cli"})
	if err := audit.Record(ctx, s.store, time.Now(), typ, "", client, detail); err != nil {
		fmt.Fprintln(os.Stderr, "tonearm: recording the audit event failed:", err)
	}
}

// openServices opens the store and builds the services of needs on it;
// the caller closes s.store.
func openServices(ctx context.Context, cfg config.Config, log *slog.Logger, opt options, needs need) (s *services, err error) {
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	return buildServices(ctx, cfg, log, opt, store, needs)
}

// buildServices builds the services of needs on store.
func buildServices(ctx context.Context, cfg config.Config, log *slog.Logger, opt options, store *sqlstore.Store, needs need) (*services, error) {
	s := &services{store: store, issuer: cfg.Issuer,
		fetcher: clientkeys.NewFetcher(clientkeys.FetchOptions{AllowLoopbackHTTP: clientkeys.IsLoopbackURL(cfg.Issuer)})}
	languages, err := locale.Load(cfg.DefaultLanguage, templates.LocalesDir(cfg.ThemeDir))
	if err != nil {
		return nil, err
	}
	s.languages = languages
	if needs&needAccounts != 0 {
		if err := s.buildAccounts(cfg, log, opt); err != nil {
			return nil, err
		}
	}
	if needs&needKeys != 0 {
		keyBox, err := sealBox(cfg, purposeSigningKeys)
		if err != nil {
			return nil, err
		}
		if s.keys, err = keys.New(ctx, keys.Config{
			Store: store, Box: keyBox, Retention: opt.tokenLifespans().MaxSignedLifetime() + 5*time.Minute, Now: opt.now, Logger: log,
		}); err != nil {
			return nil, err
		}
	}
	if needs&(needClients|needRegistrationTokens) != 0 {
		if err := s.buildSecretHasher(cfg, log); err != nil {
			return nil, err
		}
	}
	if needs&(needAPIs|needClients) != 0 {
		if err := s.buildAPIs(ctx, cfg, log, opt); err != nil {
			return nil, err
		}
	}
	if needs&needClients != 0 {
		if s.clients, err = clients.NewRegistry(store, s.secretHasher, clients.WithIssuer(cfg.Issuer),
			clients.WithSectorCheck(provider.SectorCheck(s.fetcher)), clients.WithSectorOf(provider.Sector)); err != nil {
			return nil, err
		}
		s.clients.AdmitAPIScopes(s.apis)
	}
	if needs&needConnectors != 0 {
		connectorBox, err := sealBox(cfg, purposeConnectorSecrets)
		if err != nil {
			return nil, err
		}
		if s.connectors, err = connectors.New(store, connectorBox, cfg.Issuer, opt.upstreamClient, opt.now); err != nil {
			return nil, err
		}
	}
	if needs&needRegistrationTokens != 0 {
		if s.initialTokens, err = clients.NewRegistrationTokens(store, s.secretHasher, opt.now); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// buildAccounts builds the accounts service with its password hasher,
// ListenBrainz validator and mailer (SMTP when TONEARM_SMTP_URL is set,
// else the log).
func (s *services) buildAccounts(cfg config.Config, log *slog.Logger, opt options) error {
	lb, err := listenbrainz.New(cfg.ListenBrainzURL, opt.lbTimeout)
	if err != nil {
		return err
	}
	tokenBox, err := sealBox(cfg, purposeListenBrainzToken)
	if err != nil {
		return err
	}
	s.mailer = opt.mailer
	if s.mailer == nil {
		if cfg.SMTPURL != "" {
			smtp, err := mail.NewSMTP(cfg.SMTPURL, cfg.Issuer)
			if err != nil {
				return err
			}
			smtp.Languages = s.languages
			s.mailer = smtp
		} else {
			s.mailer = &mail.Log{Issuer: cfg.Issuer, Logger: log}
		}
	}
	params := accounts.DefaultHashParams
	if opt.hashParams != nil {
		params = *opt.hashParams
	}
	s.passwords = accounts.NewHasher(params, 0, 1024)
	s.accounts, err = accounts.New(accounts.Config{
		Store: s.store, Hasher: s.passwords, Validator: lb, Box: tokenBox, Logger: log, Now: opt.now, Mailer: s.mailer,
		Languages: s.languages, RecoveryKey: seal.DeriveKey(cfg.Secret, purposeRecoveryCodes), PreviousRecoveryKeys: seal.DeriveKeys(cfg.PreviousSecrets, purposeRecoveryCodes),
	})
	return err
}

// buildSecretHasher builds the keyed hash of client secrets and
// registration tokens.
func (s *services) buildSecretHasher(cfg config.Config, log *slog.Logger) error {
	hasher, err := clients.NewSecretHasher(seal.DeriveKey(cfg.Secret, purposeClientSecrets), seal.DeriveKeys(cfg.PreviousSecrets, purposeClientSecrets)...)
	if err != nil {
		return err
	}
	// A client secret or token shown to match under a previous secret is
	// stored again under the current one (see tonearm reseal).
	store := s.store
	hasher.OnPreviousKey(func(ctx context.Context, old, current []byte) {
		if _, err := store.RekeyClientHash(ctx, old, current); err != nil {
			log.Warn("storing a client secret's hash under the current TONEARM_SECRET failed", "err", err)
		}
	})
	s.secretHasher = hasher
	return nil
}

// buildAPIs builds the registry of APIs, warning about one that shadows
// tonearm's own.
func (s *services) buildAPIs(ctx context.Context, cfg config.Config, log *slog.Logger, opt options) error {
	reg, err := apis.NewRegistry(s.store, provider.BuiltinAPI(cfg.Issuer), opt.now)
	if err != nil {
		return err
	}
	if shadow, found, err := reg.Shadowing(ctx); err != nil {
		return err
	} else if found {
		log.Warn("a registered API has the id of tonearm's own API and is ignored; delete it with tonearm apis delete", "api", shadow.ID)
	}
	s.apis = reg
	return nil
}
