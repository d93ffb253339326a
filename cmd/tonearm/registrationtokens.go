package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

const registrationTokensUsage = `usage: tonearm registration-tokens create [--description D] [--expires DURATION] [--json]
       tonearm registration-tokens list [--json]
       tonearm registration-tokens revoke ID [--json]`

// registrationTokensCommand manages initial access tokens for RFC 7591
// registration made by the operator (apps registered with them have no
// owner).
func registrationTokensCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelpArg(args[0]) {
		return groupUsage(args, registrationTokensUsage, stdout)
	}
	switch args[0] {
	case "create":
		var description string
		var expires time.Duration
		var asJSON bool
		a, err := openApp(ctx, "registration-tokens create", args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&description, "description", "", "what the token is for")
			fs.DurationVar(&expires, "expires", 30*24*time.Hour, "how long it is valid (0: until revoked; at most 8760h)")
			fs.BoolVar(&asJSON, "json", false, `print {"id": …, "token": …} (the id revokes it)`)
		}, nil)
		if err != nil {
			return err
		}
		defer a.store.Close()
		rec, value, err := a.initialTokens.Create(ctx, "", description, expires)
		if err != nil {
			return err
		}
		a.cliEvent(ctx, audit.RegistrationTokens, "", map[string]any{"action": "created", "id": rec.ID})
		if asJSON {
			return json.NewEncoder(stdout).Encode(map[string]string{"id": rec.ID, "token": value})
		}
		// The real endpoint (TONEARM_ISSUER, or the listen address when it
		// is unset), not a placeholder the reader has to fill in.
		fmt.Fprintf(stdout, "initial access token %s (shown once; send it as Authorization: Bearer to %s):\n%s\n",
			rec.ID, strings.TrimRight(a.provider.Issuer(), "/")+provider.RegisterPath, value)
		return nil
	case "list":
		var asJSON bool
		a, err := openApp(ctx, "registration-tokens list", args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		}, nil)
		if err != nil {
			return err
		}
		defer a.store.Close()
		list, err := a.initialTokens.List(ctx, "", true)
		if err != nil {
			return err
		}
		type row struct {
			ID          string `json:"id"`
			Owner       string `json:"owner"`
			Description string `json:"description"`
			CreatedAt   string `json:"createdAt"`
			ExpiresAt   string `json:"expiresAt,omitempty"`
		}
		rows := []row{}
		for _, t := range list {
			r := row{ID: t.ID, Owner: t.Owner, Description: t.Description, CreatedAt: t.CreatedAt.Format(time.RFC3339)}
			if !t.ExpiresAt.IsZero() {
				r.ExpiresAt = t.ExpiresAt.Format(time.RFC3339)
			}
			rows = append(rows, r)
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(rows)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tOWNER\tDESCRIPTION\tCREATED\tEXPIRES")
		for _, r := range rows {
			owner, exp := r.Owner, r.ExpiresAt
			if owner == "" {
				owner = "(cli)"
			}
			if exp == "" {
				exp = "never"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, owner, r.Description, r.CreatedAt, exp)
		}
		return tw.Flush()
	case "revoke":
		var id string
		var asJSON bool
		a, err := openAppArg(ctx, "registration-tokens revoke", posArg{"ID", &id}, args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&id, "id", id, "the token's ID")
			jsonFlag(fs, &asJSON)
		}, requireArg(&id, "usage: tonearm registration-tokens revoke ID [--json]"))
		if err != nil {
			return err
		}
		defer a.store.Close()
		if err := a.initialTokens.Revoke(ctx, id, "", true); err != nil {
			if errors.Is(err, clients.ErrTokenUnknown) {
				return fmt.Errorf("no registration token %q", id)
			}
			return err
		}
		a.cliEvent(ctx, audit.RegistrationTokens, "", map[string]any{"action": "revoked", "id": id})
		if asJSON {
			return deletedJSON(stdout)
		}
		fmt.Fprintf(stdout, "revoked registration token %s\n", id)
		return nil
	default:
		return groupUsage(args, registrationTokensUsage, stdout)
	}
}
