package main

import (
	"context"
	"flag"
	"strings"

	"github.com/tonearm-idp/tonearm/provider/apis"
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

const apisUsage = `usage: tonearm apis create --id URI --scope NAME[=description]… [--name N] [--claim C…] [--introspector CLIENT…] [--exchange-from CLIENT…] [--open-to-apps] [--json]
       tonearm apis update URI [--name N] [--scope NAME[=description]…] [--claim C…] [--introspector CLIENT…] [--exchange-from CLIENT…] [--json]
       tonearm apis list [--json]
       tonearm apis show URI [--json]
       tonearm apis delete URI [--json]
(flags and URI in any order)`

// apiCommands are the rows of tonearm apis.
var apiCommands = []command{
	{name: "apis create", needs: needAPIs, flags: apisCreate},
	{name: "apis update", pos: "URI", missing: "usage: tonearm apis update URI [--name N] [--scope NAME[=description]…] [--claim C…] [--introspector CLIENT…] [--exchange-from CLIENT…]", needs: needAPIs, flags: apisUpdate},
	{name: "apis show", pos: "URI", missing: "usage: tonearm apis show URI [--json]", needs: needAPIs, flags: func(fs *flag.FlagSet, in *input) runFunc {
		idFlag(fs, in, "the API's identifier")
		jsonFlag(fs, &in.asJSON)
		return apisShow
	}},
	{name: "apis list", needs: needAPIs, flags: jsonRun(func(ctx context.Context, s *services, in *input) error {
		list, err := s.apis.List(ctx)
		if err != nil {
			return err
		}
		return printList(in, list, func(api storage.API) any { return jsonapi.ToAPIJSON(api) },
			[]string{"ID", "NAME", "SCOPES", "CLAIMS", "INTROSPECTORS"}, func(api storage.API) []string {
				return []string{api.ID, api.Name, scopeNames(api), strings.Join(api.Claims, " "), strings.Join(api.Introspectors, " ")}
			})
	})},
	deleteRow("apis delete", "URI", "the API's identifier", needAPIs, func(ctx context.Context, s *services, id string) error {
		if err := s.apis.Delete(ctx, id); err != nil {
			return err
		}
		return nil
	}, "deleted API %s\n"),
}

func apisCreate(fs *flag.FlagSet, in *input) runFunc {
	var spec apis.Spec
	var scopes, claims, introspectors listFlag
	var exchangeFrom commaListFlag
	fs.StringVar(&spec.ID, "id", "", "the API's identifier, an absolute URI (what its tokens carry in aud)")
	fs.StringVar(&spec.Name, "name", "", "display name")
	fs.Var(&scopes, "scope", `a scope it defines, NAME or NAME=description shown on the consent page (repeatable)`)
	fs.Var(&claims, "claim", "a user claim its access tokens carry: role, listenbrainz_name or a custom claim key (repeatable)")
	fs.Var(&introspectors, "introspector", "a client (the API's resource server) that may introspect tokens meant for it (repeatable)")
	fs.Var(&exchangeFrom, "exchange-from", "a client that may exchange a person's token for a token to this API (RFC 8693; repeatable, or a comma list)")
	fs.BoolVar(&spec.OpenToApps, "open-to-apps", false, "apps registered by developers (on /developer or RFC 7591) may ask for its scopes")
	fs.BoolVar(&in.asJSON, "json", false, "print JSON")
	in.check = func() error {
		if spec.ID == "" {
			return usageError{"--id is required (tonearm apis create -h lists the flags)"}
		}
		return nil
	}
	return func(ctx context.Context, s *services, in *input) error {
		spec.Scopes, spec.Claims, spec.Introspectors, spec.ExchangeFrom = parseScopeFlags(scopes), claims, introspectors, exchangeFrom
		api, err := s.apis.Create(ctx, spec)
		if err != nil {
			return err
		}
		return in.show(jsonapi.ToAPIJSON(api), "registered API %s with scopes %s\n", api.ID, scopeNames(api))
	}
}

func apisUpdate(fs *flag.FlagSet, in *input) runFunc {
	var name string
	var scopes, claims, introspectors listFlag
	var exchangeFrom commaListFlag
	var openToApps bool
	idFlag(fs, in, "the API's identifier")
	fs.StringVar(&name, "name", "", "display name")
	fs.Var(&scopes, "scope", "the scopes it defines, replacing the current ones: NAME or NAME=description (repeatable)")
	fs.Var(&claims, "claim", "the user claims its access tokens carry, replacing the current ones (repeatable)")
	fs.Var(&introspectors, "introspector", "the clients that may introspect tokens meant for it, replacing the current ones (repeatable)")
	fs.Var(&exchangeFrom, "exchange-from", "the clients that may exchange a person's token for a token to it, replacing the current ones (RFC 8693; repeatable, or a comma list; --exchange-from '' for none)")
	fs.BoolVar(&openToApps, "open-to-apps", false, "whether apps registered by developers may ask for its scopes (--open-to-apps=false closes it)")
	fs.BoolVar(&in.asJSON, "json", false, "print JSON")
	return func(ctx context.Context, s *services, in *input) error {
		// Only the flags given change the API.
		var u apis.Update
		in.given.Visit(func(f *flag.Flag) {
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
			case "exchange-from":
				e := []string(exchangeFrom)
				u.ExchangeFrom = &e
			case "open-to-apps":
				u.OpenToApps = &openToApps
			}
		})
		api, err := s.apis.Update(ctx, in.id, u)
		if err != nil {
			return err
		}
		return in.show(jsonapi.ToAPIJSON(api), "updated API %s: scopes %s; introspectors %s; exchange-from %s\n", api.ID, scopeNames(api),
			strings.Join(api.Introspectors, " "), strings.Join(api.ExchangeFrom, " "))
	}
}

// apisShow prints one API.
func apisShow(ctx context.Context, s *services, in *input) error {
	api, err := s.apis.Get(ctx, in.id)
	if err != nil {
		return err
	}
	return in.show(jsonapi.ToAPIJSON(api), "id:             %s\nname:           %s\nscopes:         %s\nclaims:         %s\nintrospectors:  %s\nexchange_from:  %s\nopen_to_apps:   %t\n",
		api.ID, api.Name, scopeNames(api), strings.Join(api.Claims, " "), strings.Join(api.Introspectors, " "), strings.Join(api.ExchangeFrom, " "), api.OpenToApps)
}

// commaListFlag is a repeatable flag whose values may also be comma lists
// (--exchange-from a,b --exchange-from c); empty items are dropped, so
// --exchange-from ” names nobody.
type commaListFlag []string

func (l *commaListFlag) String() string { return strings.Join(*l, ",") }
func (l *commaListFlag) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

func scopeNames(a storage.API) string {
	names := make([]string, len(a.Scopes))
	for i, s := range a.Scopes {
		names[i] = s.Name
	}
	return strings.Join(names, " ")
}
