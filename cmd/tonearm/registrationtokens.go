package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/clients"
)

const registrationTokensUsage = `usage: tonearm registration-tokens create [--description D] [--expires DURATION] [--json]
       tonearm registration-tokens list [--json]
       tonearm registration-tokens revoke ID [--json]`

// registrationTokenCommands are the rows of tonearm registration-tokens:
// initial access tokens for RFC 7591 registration made by the operator
// (apps registered with them have no owner).
var registrationTokenCommands = []command{
	{name: "registration-tokens create", needs: needRegistrationTokens, flags: registrationTokensCreate},
	{name: "registration-tokens list", needs: needRegistrationTokens, flags: jsonRun(registrationTokensList)},
	deleteRow("registration-tokens revoke", "ID", "the token's ID", needRegistrationTokens, func(ctx context.Context, s *services, id string) error {
		if err := s.initialTokens.Revoke(ctx, id, "", true); err != nil {
			if errors.Is(err, clients.ErrTokenUnknown) {
				return fmt.Errorf("no registration token %q", id)
			}
			return err
		}
		return nil
	}, "revoked registration token %s\n"),
}

func registrationTokensCreate(fs *flag.FlagSet, in *input) runFunc {
	var description string
	var expires time.Duration
	fs.StringVar(&description, "description", "", "what the token is for")
	fs.DurationVar(&expires, "expires", 30*24*time.Hour, "how long it is valid (0: until revoked; at most 8760h)")
	fs.BoolVar(&in.asJSON, "json", false, `print {"id": …, "token": …} (the id revokes it)`)
	return func(ctx context.Context, s *services, in *input) error {
		rec, value, err := s.initialTokens.Create(ctx, "", description, expires)
		if err != nil {
			return err
		}
		// The real endpoint (TONEARM_ISSUER, or the listen address when it
		// is unset), not a placeholder the reader has to fill in.
		return in.show(map[string]string{"id": rec.ID, "token": value}, "initial access token %s (shown once; send it as Authorization: Bearer to %s):\n%s\n",
			rec.ID, strings.TrimRight(s.issuer, "/")+provider.RegisterPath, value)
	}
}

// registrationTokenJSON is a token as registration-tokens list prints it.
type registrationTokenJSON struct {
	ID          string `json:"id"`
	Owner       string `json:"owner"`
	Description string `json:"description"`
	CreatedAt   string `json:"createdAt"`
	ExpiresAt   string `json:"expiresAt,omitempty"`
}

func registrationTokensList(ctx context.Context, s *services, in *input) error {
	list, err := s.initialTokens.List(ctx, "", true)
	if err != nil {
		return err
	}
	rows := make([]registrationTokenJSON, len(list))
	for i, t := range list {
		rows[i] = registrationTokenJSON{ID: t.ID, Owner: t.Owner, Description: t.Description, CreatedAt: t.CreatedAt.Format(time.RFC3339)}
		if !t.ExpiresAt.IsZero() {
			rows[i].ExpiresAt = t.ExpiresAt.Format(time.RFC3339)
		}
	}
	return printList(in, rows, func(r registrationTokenJSON) any { return r },
		[]string{"ID", "OWNER", "DESCRIPTION", "CREATED", "EXPIRES"}, func(r registrationTokenJSON) []string {
			owner, exp := r.Owner, r.ExpiresAt
			if owner == "" {
				owner = "(cli)"
			}
			if exp == "" {
				exp = "never"
			}
			return []string{r.ID, owner, r.Description, r.CreatedAt, exp}
		})
}
