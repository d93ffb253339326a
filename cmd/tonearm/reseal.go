package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/provider/keys"
	"github.com/tonearm-idp/tonearm/provider/seal"
	"github.com/tonearm-idp/tonearm/web/interaction"
)

// resealCounts is what tonearm reseal changed, by kind (the JSON answer).
type resealCounts struct {
	SigningKeys        int `json:"signing_keys"`
	ConnectorSecrets   int `json:"connector_secrets"`
	TOTPSecrets        int `json:"totp_secrets"`
	ListenBrainzTokens int `json:"listenbrainz_tokens"`
	Interactions       int `json:"interactions"`
	InstanceSecrets    int `json:"instance_secrets"`
}

// resealCommand seals every stored sealed value again under TONEARM_SECRET
// after the master secret was rotated (the earlier one in
// TONEARM_PREVIOUS_SECRETS). It opens only the database and the boxes, not
// the server: a value that opens under no configured secret stops it with
// an error naming that value, and each kind is re-sealed in one
// transaction, so a failed run leaves that kind as it was and running it
// again finishes the job. Values already under TONEARM_SECRET are left, so
// it is safe to run twice, and while servers that know both secrets run.
func resealCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var asJSON bool
	cfg, err := loadConfig("reseal", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, `print JSON: {"signing_keys": N, "connector_secrets": N, "totp_secrets": N, "listenbrainz_tokens": N, "interactions": N, "instance_secrets": N}`)
	}, config.DatabaseSettings)
	if err != nil {
		return err
	}
	log := commandLogger(cfg, stderr)
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	boxes := map[string]*seal.Box{}
	for _, purpose := range []string{purposeSigningKeys, purposeConnectorSecrets, purposeListenBrainzToken, purposeInteractions, purposeInstanceSecrets} {
		if boxes[purpose], err = sealBox(cfg, purpose); err != nil {
			return err
		}
	}
	var n resealCounts
	steps := []func() error{
		func() (err error) { n.SigningKeys, err = keys.Reseal(ctx, store, boxes[purposeSigningKeys]); return },
		func() (err error) {
			n.ConnectorSecrets, err = connectors.Reseal(ctx, store, boxes[purposeConnectorSecrets])
			return
		},
		func() (err error) {
			n.TOTPSecrets, n.ListenBrainzTokens, err = accounts.Reseal(ctx, store, boxes[purposeListenBrainzToken])
			return
		},
		func() (err error) {
			n.Interactions, err = interaction.Reseal(ctx, store, boxes[purposeInteractions])
			return
		},
		func() (err error) {
			n.InstanceSecrets, err = provider.ResealInstanceSecrets(ctx, store, boxes[purposeInstanceSecrets])
			return
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			if errors.Is(err, seal.ErrOpen) {
				return fmt.Errorf("reseal: %w: it was sealed under a secret that is neither TONEARM_SECRET nor one of TONEARM_PREVIOUS_SECRETS (nothing of that kind was changed)", err)
			}
			return fmt.Errorf("reseal: %w", err)
		}
	}
	detail := map[string]any{"signing_keys": n.SigningKeys, "connector_secrets": n.ConnectorSecrets, "totp_secrets": n.TOTPSecrets,
		"listenbrainz_tokens": n.ListenBrainzTokens, "interactions": n.Interactions, "instance_secrets": n.InstanceSecrets}
	if err := audit.Record(audit.WithOrigin(ctx, audit.Origin{Actor: "cli"}), store, time.Now(), audit.SecretsResealed, "", "", detail); err != nil {
		log.Warn("recording the audit event failed", "err", err)
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(n)
	}
	fmt.Fprintf(stdout, "re-sealed under TONEARM_SECRET: %d signing keys, %d connector client secrets, %d TOTP secrets, %d ListenBrainz tokens, %d sign-ins in progress, %d instance secrets (the pairwise subject key)\n",
		n.SigningKeys, n.ConnectorSecrets, n.TOTPSecrets, n.ListenBrainzTokens, n.Interactions, n.InstanceSecrets)
	fmt.Fprintln(stdout, "not moved here (keyed hashes): client secrets and registration tokens move when next used, recovery codes never; see \"Rotating TONEARM_SECRET\" in docs/production.md before dropping TONEARM_PREVIOUS_SECRETS")
	return nil
}
