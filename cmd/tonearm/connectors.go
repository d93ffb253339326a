package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web/jsonapi"
)

const connectorsUsage = `usage: tonearm connectors create --id ID --kind musicbrainz|oidc --name "Shown name" --client-id C --client-secret-stdin [--issuer URL] [--base-url URL] [--scope S…] [--json]
       tonearm connectors update ID [--name N] [--client-id C] [--client-secret-stdin] [--issuer URL] [--base-url URL] [--scope S…] [--json]
       tonearm connectors list [--json]
       tonearm connectors delete ID [--json]`

// connectorCommands are the rows of tonearm connectors.
var connectorCommands = []command{
	{name: "connectors create", needs: needConnectors, flags: connectorsCreate},
	{name: "connectors update", pos: "ID", missing: "usage: tonearm connectors update ID [--name N] [--client-id C] [--client-secret-stdin] [--issuer URL] [--base-url URL] [--scope S…]",
		needs: needConnectors, flags: connectorsUpdate},
	{name: "connectors list", needs: needConnectors, flags: jsonRun(func(ctx context.Context, s *services, in *input) error {
		list, err := s.connectors.List(ctx)
		if err != nil {
			return err
		}
		return printList(in, list, func(c storage.Connector) any { return jsonapi.ToConnectorJSON(c, s.connectors.CallbackURL(c.ID)) },
			[]string{"ID", "KIND", "NAME", "UPSTREAM", "CALLBACK"}, func(c storage.Connector) []string {
				return []string{c.ID, c.Kind, c.Name, c.Issuer + c.BaseURL, s.connectors.CallbackURL(c.ID)}
			})
	})},
	deleteRow("connectors delete", "ID", "the connector's ID", needConnectors, func(ctx context.Context, s *services, id string) error {
		if err := s.connectors.Delete(ctx, id); err != nil {
			return notFound(err, "connector", id)
		}
		return nil
	}, "deleted connector %s and every sign-in linked through it\n"),
}

// connectorFlags are the flags connectors create and update share.
type connectorFlags struct {
	spec        connectors.Spec
	scopes      listFlag
	secretStdin bool
}

func (f *connectorFlags) register(fs *flag.FlagSet, in *input) {
	fs.StringVar(&f.spec.Name, "name", "", `the name on the sign-in buttons ("Continue with {name}")`)
	fs.StringVar(&f.spec.ClientID, "client-id", "", "tonearm's client ID at the provider")
	fs.BoolVar(&f.secretStdin, "client-secret-stdin", false, "read tonearm's client secret at the provider from the first line of standard input")
	fs.StringVar(&f.spec.Issuer, "issuer", "", "oidc: the provider's issuer URL (https; http only on loopback)")
	fs.StringVar(&f.spec.BaseURL, "base-url", "", "musicbrainz: the server's base URL (default "+connectors.DefaultMusicBrainzURL+")")
	fs.Var(&f.scopes, "scope", "an extra scope to ask for (repeatable; musicbrainz: email to receive the address)")
	fs.BoolVar(&in.asJSON, "json", false, "print JSON")
}

// readSecret reads the client secret from standard input when
// --client-secret-stdin asks for it.
func (f *connectorFlags) readSecret(stdin io.Reader) error {
	if !f.secretStdin {
		return nil
	}
	s, err := readPassword(stdin)
	if err != nil {
		return err
	}
	if s == "" {
		return errors.New("--client-secret-stdin: standard input is empty")
	}
	f.spec.ClientSecret = s
	return nil
}

// showConnector prints a connector created or changed.
func showConnector(s *services, in *input, c storage.Connector, format string, args ...any) error {
	return in.show(jsonapi.ToConnectorJSON(c, s.connectors.CallbackURL(c.ID)), format, args...)
}

func connectorsCreate(fs *flag.FlagSet, in *input) runFunc {
	var f connectorFlags
	fs.StringVar(&f.spec.ID, "id", "", "the connector's ID (in its callback URL)")
	fs.StringVar(&f.spec.Kind, "kind", "", "musicbrainz or oidc")
	f.register(fs, in)
	return func(ctx context.Context, s *services, in *input) error {
		if !f.secretStdin {
			return errors.New("a client secret is required: pass --client-secret-stdin and write it on standard input")
		}
		if err := f.readSecret(in.stdin); err != nil {
			return err
		}
		spec := f.spec
		spec.Scopes = f.scopes
		c, err := s.connectors.Create(ctx, spec)
		if err != nil {
			return err
		}
		return showConnector(s, in, c, "created connector %s (%s)\nregister this callback URL at the provider: %s\n", c.ID, c.Kind, s.connectors.CallbackURL(c.ID))
	}
}

func connectorsUpdate(fs *flag.FlagSet, in *input) runFunc {
	var f connectorFlags
	idFlag(fs, in, "the connector's ID")
	f.register(fs, in)
	return func(ctx context.Context, s *services, in *input) error {
		if err := f.readSecret(in.stdin); err != nil {
			return err
		}
		set := map[string]bool{}
		in.given.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
		c, err := s.connectors.Update(ctx, in.id, func(spec *connectors.Spec) {
			if set["name"] {
				spec.Name = f.spec.Name
			}
			if set["client-id"] {
				spec.ClientID = f.spec.ClientID
			}
			if set["issuer"] {
				spec.Issuer = f.spec.Issuer
			}
			if set["base-url"] {
				spec.BaseURL = f.spec.BaseURL
			}
			if set["scope"] {
				spec.Scopes = f.scopes
			}
			spec.ClientSecret = f.spec.ClientSecret
		})
		if err != nil {
			return notFound(err, "connector", in.id)
		}
		return showConnector(s, in, c, "updated connector %s\n", c.ID)
	}
}

// notFound words a missing record for the command line.
func notFound(err error, what, id string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("no %s %q", what, id)
	}
	return err
}
