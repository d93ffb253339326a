package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web/jsonapi"
)

// parseScopeFlags reads --scope NAME[=description] values.
func parseScopeFlags(values []string) []storage.APIScope {
	out := make([]storage.APIScope, 0, len(values))
	for _, v := range values {
		name, desc, _ := strings.Cut(v, "=")
		out = append(out, storage.APIScope{Name: strings.TrimSpace(name), Description: strings.TrimSpace(desc)})
	}
	return out
}

func apisCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	const usage = `usage: tonearm apis create --id URI --scope NAME[=description]… [--name N] [--claim C…] [--introspector CLIENT…] [--open-to-apps] [--json]
       tonearm apis update URI [--name N] [--scope NAME[=description]…] [--claim C…] [--introspector CLIENT…] [--json]
       tonearm apis list [--json]
       tonearm apis delete URI [--json]
(flags and URI in any order)`
	if len(args) == 0 || isHelpArg(args[0]) {
		return groupUsage(args, usage, stdout)
	}
	switch args[0] {
	case "create":
		var spec apis.Spec
		var scopes, claims, introspectors listFlag
		var asJSON bool
		a, err := openApp(ctx, "apis create", args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&spec.ID, "id", "", "the API's identifier, an absolute URI (what its tokens carry in aud)")
			fs.StringVar(&spec.Name, "name", "", "display name")
			fs.Var(&scopes, "scope", `a scope it defines, NAME or NAME=description shown on the consent page (repeatable)`)
			fs.Var(&claims, "claim", "a user claim its access tokens carry: role, listenbrainz_name or a custom claim key (repeatable)")
			fs.Var(&introspectors, "introspector", "a client (the API's resource server) that may introspect tokens meant for it (repeatable)")
			fs.BoolVar(&spec.OpenToApps, "open-to-apps", false, "apps registered by developers (on /developer or RFC 7591) may ask for its scopes")
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		}, func() error {
			if spec.ID == "" {
				return usageError{"--id is required (tonearm apis create -h lists the flags)"}
			}
			return nil
		})
		if err != nil {
			return err
		}
		defer a.store.Close()
		spec.Scopes, spec.Claims, spec.Introspectors = parseScopeFlags(scopes), claims, introspectors
		api, err := a.apis.Create(ctx, spec)
		if err != nil {
			return err
		}
		a.cliEvent(ctx, audit.APICreated, "", map[string]any{"api": api.ID})
		if asJSON {
			return json.NewEncoder(stdout).Encode(jsonapi.ToAPIJSON(api))
		}
		fmt.Fprintf(stdout, "registered API %s with scopes %s\n", api.ID, scopeNames(api))
		return nil
	case "update":
		var id string
		var name string
		var scopes, claims, introspectors listFlag
		var asJSON, openToApps bool
		var given *flag.FlagSet
		a, err := openAppArg(ctx, "apis update", posArg{"URI", &id}, args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			given = fs
			fs.StringVar(&id, "id", id, "the API's identifier")
			fs.StringVar(&name, "name", "", "display name")
			fs.Var(&scopes, "scope", "the scopes it defines, replacing the current ones: NAME or NAME=description (repeatable)")
			fs.Var(&claims, "claim", "the user claims its access tokens carry, replacing the current ones (repeatable)")
			fs.Var(&introspectors, "introspector", "the clients that may introspect tokens meant for it, replacing the current ones (repeatable)")
			fs.BoolVar(&openToApps, "open-to-apps", false, "whether apps registered by developers may ask for its scopes (--open-to-apps=false closes it)")
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		}, requireArg(&id, "usage: tonearm apis update URI [--name N] [--scope NAME[=description]…] [--claim C…] [--introspector CLIENT…]"))
		if err != nil {
			return err
		}
		defer a.store.Close()
		// Only the flags given change the API.
		var u apis.Update
		given.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "name":
				u.Name = &name
			case "scope":
				s := parseScopeFlags(scopes)
				u.Scopes = &s
			case "claim":
				c := []string(claims)
				u.Claims = &c
			case "introspector":
				i := []string(introspectors)
				u.Introspectors = &i
			case "open-to-apps":
				u.OpenToApps = &openToApps
			}
		})
		api, err := a.apis.Update(ctx, id, u)
		if err != nil {
			return err
		}
		a.cliEvent(ctx, audit.APIChanged, "", map[string]any{"api": api.ID})
		if asJSON {
			return json.NewEncoder(stdout).Encode(jsonapi.ToAPIJSON(api))
		}
		fmt.Fprintf(stdout, "updated API %s: scopes %s; introspectors %s\n", api.ID, scopeNames(api), strings.Join(api.Introspectors, " "))
		return nil
	case "list":
		var asJSON bool
		a, err := openApp(ctx, "apis list", args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		}, nil)
		if err != nil {
			return err
		}
		defer a.store.Close()
		list, err := a.apis.List(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			out := make([]jsonapi.APIJSON, len(list))
			for i, api := range list {
				out[i] = jsonapi.ToAPIJSON(api)
			}
			return json.NewEncoder(stdout).Encode(out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCLAIMS\tINTROSPECTORS")
		for _, api := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", api.ID, api.Name, scopeNames(api), strings.Join(api.Claims, " "), strings.Join(api.Introspectors, " "))
		}
		return tw.Flush()
	case "delete":
		var id string
		var asJSON bool
		a, err := openAppArg(ctx, "apis delete", posArg{"URI", &id}, args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&id, "id", id, "the API's identifier")
			jsonFlag(fs, &asJSON)
		}, requireArg(&id, "usage: tonearm apis delete URI [--json]"))
		if err != nil {
			return err
		}
		defer a.store.Close()
		if err := a.apis.Delete(ctx, id); err != nil {
			return err
		}
		a.cliEvent(ctx, audit.APIDeleted, "", map[string]any{"api": id})
		if asJSON {
			return deletedJSON(stdout)
		}
		fmt.Fprintf(stdout, "deleted API %s\n", id)
		return nil
	default:
		return groupUsage(args, usage, stdout)
	}
}

func scopeNames(a storage.API) string {
	names := make([]string, len(a.Scopes))
	for i, s := range a.Scopes {
		names[i] = s.Name
	}
	return strings.Join(names, " ")
}
