package main

import (
	"log/slog"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/web"
)

// accountPolicies builds the account services every front door shares:
// who may create which account (the User API, the sign-up page, the
// connectors) and recovery (the JSON API and the pages).
func accountPolicies(cfg config.Config, acc *accounts.Service, bootstrap *accounts.Bootstrap, mailer accounts.Mailer, log *slog.Logger) (*accounts.Signups, *accounts.Recovery, error) {
	// provider/* does not import config: the mode is handed over as the
	// accounts package's own value.
	mode := accounts.RegistrationAdmin
	if cfg.Registration == config.RegistrationOpen {
		mode = accounts.RegistrationOpen
	}
	signups, err := accounts.NewSignups(acc, mode, bootstrap)
	if err != nil {
		return nil, nil, err
	}
	recovery, err := accounts.NewRecovery(accounts.RecoveryConfig{Accounts: acc, Mailer: mailer, Logger: log, RequestID: web.RequestID})
	if err != nil {
		return nil, nil, err
	}
	return signups, recovery, nil
}
