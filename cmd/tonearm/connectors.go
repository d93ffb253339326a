package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web/jsonapi"
)

const connectorsUsage = `usage: tonearm connectors create --id ID --kind musicbrainz|oidc --name "Shown name" --client-id C --client-secret-stdin [--issuer URL] [--base-url URL] [--scope S…] [--json]
       tonearm connectors update ID [--name N] [--client-id C] [--client-secret-stdin] [--issuer URL] [--base-url URL] [--scope S…] [--json]
       tonearm connectors list [--json]
       tonearm connectors delete ID [--json]`

func connectorsCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelpArg(args[0]) {
		return groupUsage(args, connectorsUsage, stdout)
	}
	// The flags create and update share.
	var spec connectors.Spec
	var scopes listFlag
	var secretStdin, asJSON bool
	specFlags := func(fs *flag.FlagSet) {
		fs.StringVar(&spec.Name, "name", "", `the name on the sign-in buttons ("Continue with {name}")`)
		fs.StringVar(&spec.ClientID, "client-id", "", "tonearm's client ID at the provider")
		fs.BoolVar(&secretStdin, "client-secret-stdin", false, "read tonearm's client secret at the provider from the first line of standard input")
		fs.StringVar(&spec.Issuer, "issuer", "", "oidc: the provider's issuer URL (https; http only on loopback)")
		fs.StringVar(&spec.BaseURL, "base-url", "", "musicbrainz: the server's base URL (default "+connectors.DefaultMusicBrainzURL+")")
		fs.Var(&scopes, "scope", "an extra scope to ask for (repeatable; musicbrainz: email to receive the address)")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	}
	readSecret := func() error {
		if !secretStdin {
			return nil
		}
		s, err := readPassword(stdin)
		if err != nil {
			return err
		}
		if s == "" {
			return errors.New("--client-secret-stdin: standard input is empty")
		}
		spec.ClientSecret = s
		return nil
	}
	switch args[0] {
	case "create":
		a, err := openApp(ctx, "connectors create", args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&spec.ID, "id", "", "the connector's ID (in its callback URL)")
			fs.StringVar(&spec.Kind, "kind", "", "musicbrainz or oidc")
			specFlags(fs)
		}, nil)
		if err != nil {
			return err
		}
		defer a.store.Close()
		if !secretStdin {
			return errors.New("a client secret is required: pass --client-secret-stdin and write it on standard input")
		}
		if err := readSecret(); err != nil {
			return err
		}
		spec.Scopes = scopes
		c, err := a.connectors.Create(ctx, spec)
		if err != nil {
			return err
		}
		a.cliEvent(ctx, audit.ConnectorCreated, "", map[string]any{"connector": c.ID, "kind": c.Kind})
		if asJSON {
			return json.NewEncoder(stdout).Encode(jsonapi.ToConnectorJSON(c, a.connectors.CallbackURL(c.ID)))
		}
		fmt.Fprintf(stdout, "created connector %s (%s)\nregister this callback URL at the provider: %s\n", c.ID, c.Kind, a.connectors.CallbackURL(c.ID))
		return nil
	case "update":
		var id string
		var given *flag.FlagSet
		a, err := openAppArg(ctx, "connectors update", posArg{"ID", &id}, args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			given = fs
			fs.StringVar(&id, "id", id, "the connector's ID")
			specFlags(fs)
		}, requireArg(&id, "usage: tonearm connectors update ID [--name N] [--client-id C] [--client-secret-stdin] [--issuer URL] [--base-url URL] [--scope S…]"))
		if err != nil {
			return err
		}
		defer a.store.Close()
		if err := readSecret(); err != nil {
			return err
		}
		set := map[string]bool{}
		given.Visit(func(f *flag.Flag) { set[f.Name] = true })
		c, err := a.connectors.Update(ctx, id, func(s *connectors.Spec) {
			if set["name"] {
				s.Name = spec.Name
			}
			if set["client-id"] {
				s.ClientID = spec.ClientID
			}
			if set["issuer"] {
				s.Issuer = spec.Issuer
			}
			if set["base-url"] {
				s.BaseURL = spec.BaseURL
			}
			if set["scope"] {
				s.Scopes = scopes
			}
			s.ClientSecret = spec.ClientSecret
		})
		if err != nil {
			return notFound(err, "connector", id)
		}
		a.cliEvent(ctx, audit.ConnectorChanged, "", map[string]any{"connector": c.ID})
		if asJSON {
			return json.NewEncoder(stdout).Encode(jsonapi.ToConnectorJSON(c, a.connectors.CallbackURL(c.ID)))
		}
		fmt.Fprintf(stdout, "updated connector %s\n", c.ID)
		return nil
	case "list":
		a, err := openApp(ctx, "connectors list", args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		}, nil)
		if err != nil {
			return err
		}
		defer a.store.Close()
		list, err := a.connectors.List(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			out := make([]jsonapi.ConnectorJSON, len(list))
			for i, c := range list {
				out[i] = jsonapi.ToConnectorJSON(c, a.connectors.CallbackURL(c.ID))
			}
			return json.NewEncoder(stdout).Encode(out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tNAME\tUPSTREAM\tCALLBACK")
		for _, c := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Kind, c.Name, c.Issuer+c.BaseURL, a.connectors.CallbackURL(c.ID))
		}
		return tw.Flush()
	case "delete":
		var id string
		var asJSON bool
		a, err := openAppArg(ctx, "connectors delete", posArg{"ID", &id}, args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&id, "id", id, "the connector's ID")
			jsonFlag(fs, &asJSON)
		}, requireArg(&id, "usage: tonearm connectors delete ID [--json]"))
		if err != nil {
			return err
		}
		defer a.store.Close()
		if err := a.connectors.Delete(ctx, id); err != nil {
			return notFound(err, "connector", id)
		}
		a.cliEvent(ctx, audit.ConnectorDeleted, "", map[string]any{"connector": id})
		if asJSON {
			return deletedJSON(stdout)
		}
		fmt.Fprintf(stdout, "deleted connector %s and every sign-in linked through it\n", id)
		return nil
	default:
		return groupUsage(args, connectorsUsage, stdout)
	}
}

// notFound words a missing record for the command line.
func notFound(err error, what, id string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("no %s %q", what, id)
	}
	return err
}
