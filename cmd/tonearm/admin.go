package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/storage"
)

// cliEvent records what an operator did on the command line (actor
// "cli"); a failure is reported, the action stands.
func (a *app) cliEvent(ctx context.Context, typ, client string, detail map[string]any) {
	if recordedByRegistry[typ] {
		return // TODO(issue 32): drop these calls; the registry recorded the event with the change
	}
	ctx = audit.WithOrigin(ctx, audit.Origin{Actor: "cli"})
	if err := audit.Record(ctx, a.store, time.Now(), typ, "", client, detail); err != nil {
		fmt.Fprintln(os.Stderr, "tonearm: recording the audit event failed:", err)
	}
}

// recordedByRegistry are the events provider/clients, apis and connectors
// record themselves, in the transaction of the change.
var recordedByRegistry = map[string]bool{
	audit.ClientCreated: true, audit.ClientChanged: true, audit.ClientDeleted: true,
	audit.APICreated: true, audit.APIChanged: true, audit.APIDeleted: true,
	audit.ConnectorCreated: true, audit.ConnectorChanged: true, audit.ConnectorDeleted: true,
	audit.RegistrationTokens: true,
}

// openApp reads a command's configuration (with its own flags), checks its
// arguments (ready, optional) before anything is opened, and builds the
// app; the caller closes a.store.
func openApp(ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer, flags func(*flag.FlagSet), ready func() error) (*app, error) {
	return openAppArg(ctx, name, posArg{}, args, getenv, stderr, flags, ready)
}

// openAppArg is openApp for a command with a positional argument, given
// before, between or after the flags.
func openAppArg(ctx context.Context, name string, pos posArg, args []string, getenv func(string) string, stderr io.Writer, flags func(*flag.FlagSet), ready func() error) (*app, error) {
	cfg, err := loadConfigWith(name, pos, args, getenv, stderr, flags, ready, config.DatabaseSettings)
	if err != nil {
		return nil, err
	}
	return build(ctx, cfg, commandLogger(cfg, stderr))
}

// requireArg refuses an empty argument (read once the flags are parsed:
// it may come from a flag) with the usage line.
func requireArg(v *string, usage string) func() error {
	return func() error {
		if *v == "" {
			return usageError{usage}
		}
		return nil
	}
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type clientJSON struct {
	ClientID               string   `json:"client_id"`
	ClientSecret           string   `json:"client_secret,omitempty"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	GrantTypes             []string `json:"grant_types"`
	Scope                  string   `json:"scope"`
	Public                 bool     `json:"public"`
	FirstParty             bool     `json:"first_party"`
	AllowNoPKCE            bool     `json:"allow_no_pkce"`
	RequirePAR             bool     `json:"require_pushed_authorization_requests"`
	BackchannelLogoutURI   string   `json:"backchannel_logout_uri,omitempty"`
	TokenEndpointAuth      string   `json:"token_endpoint_auth_method"`
	Name                   string   `json:"client_name,omitempty"`
	LogoURI                string   `json:"logo_uri,omitempty"`
	ClientURI              string   `json:"client_uri,omitempty"`
	PolicyURI              string   `json:"policy_uri,omitempty"`
	TosURI                 string   `json:"tos_uri,omitempty"`
	IDTokenAlg             string   `json:"id_token_signed_response_alg"`
	CreatedAt              string   `json:"created_at"`
}

func toClientJSON(c storage.Client, secret string) clientJSON {
	auth := "client_secret_basic"
	if c.Public {
		auth = "none"
	}
	return clientJSON{
		ClientID: c.ID, ClientSecret: secret, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		GrantTypes: c.GrantTypes, Scope: strings.Join(c.Scopes, " "), Public: c.Public, FirstParty: c.FirstParty, AllowNoPKCE: c.AllowNoPKCE, RequirePAR: c.RequirePAR,
		BackchannelLogoutURI: c.BackchannelLogoutURI, TokenEndpointAuth: auth, CreatedAt: c.CreatedAt.UTC().Format(time.RFC3339),
		Name: c.Name, LogoURI: c.LogoURI, ClientURI: c.ClientURI, PolicyURI: c.PolicyURI, TosURI: c.TosURI, IDTokenAlg: c.IDTokenAlg,
	}
}

func clientsCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	const usage = `usage: tonearm clients create --id ID [--public] [--secret S] [--redirect-uri URI…] [flags]
       tonearm clients update ID [flags]
       tonearm clients rotate-secret ID [--keep-old DURATION] [--json]
       tonearm clients list [--json]
       tonearm clients delete ID [--json]
(flags and ID in any order; "tonearm clients SUBCOMMAND -h" shows its flags)`
	if len(args) == 0 || isHelpArg(args[0]) {
		return groupUsage(args, usage, stdout)
	}
	switch args[0] {
	case "create":
		var f clientFlagValues
		a, err := openApp(ctx, "clients create", args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			f.register(fs, true)
		}, func() error {
			// Checked here: the validation of an empty ID speaks of the
			// client, not of the flag the operator left out.
			if f.spec.ID == "" {
				return usageError{"--id is required (tonearm clients create -h lists the flags)"}
			}
			return nil
		})
		if err != nil {
			return err
		}
		defer a.store.Close()
		spec := f.spec
		spec.RedirectURIs, spec.PostLogoutRedirectURIs, spec.GrantTypes, spec.Scopes = f.redirects, f.postLogout, f.grants, f.scopes
		c, secret, err := a.clients.Create(ctx, spec)
		if err != nil {
			return err
		}
		a.cliEvent(ctx, audit.ClientCreated, c.ID, nil)
		if f.asJSON {
			return json.NewEncoder(stdout).Encode(toClientJSON(c, secret))
		}
		fmt.Fprintf(stdout, "client_id:     %s\n", c.ID)
		if secret != "" && spec.Secret == "" {
			fmt.Fprintf(stdout, "client_secret: %s\n(shown once: it is stored only as a hash)\n", secret)
		}
		return nil
	case "update":
		var id string
		var f clientFlagValues
		var given *flag.FlagSet
		a, err := openAppArg(ctx, "clients update", posArg{"ID", &id}, args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			given = fs
			f.register(fs, false)
		}, requireArg(&id, "usage: tonearm clients update ID [any flag of clients create but --id and --public]"))
		if err != nil {
			return err
		}
		defer a.store.Close()
		c, err := a.clients.Update(ctx, id, func(spec *clients.Spec) { given.Visit(func(fl *flag.Flag) { f.apply(fl.Name, spec) }) })
		if err != nil {
			return err
		}
		var detail map[string]any
		if f.spec.Secret != "" {
			detail = map[string]any{"secret": "set"}
		}
		a.cliEvent(ctx, audit.ClientChanged, c.ID, detail)
		if f.asJSON {
			return json.NewEncoder(stdout).Encode(toClientJSON(c, ""))
		}
		fmt.Fprintf(stdout, "updated client %s\n", c.ID)
		return nil
	case "rotate-secret":
		var id string
		var keepOld time.Duration
		var asJSON bool
		a, err := openAppArg(ctx, "clients rotate-secret", posArg{"ID", &id}, args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			fs.DurationVar(&keepOld, "keep-old", 0, "keep the old secret valid this long (e.g. 24h, at most 720h) while the app switches over; 0: it ends now")
			fs.BoolVar(&asJSON, "json", false, `print JSON: {"secret": …}`)
		}, requireArg(&id, "usage: tonearm clients rotate-secret ID [--keep-old DURATION] [--json]"))
		if err != nil {
			return err
		}
		defer a.store.Close()
		secret, err := a.clients.RotateSecret(ctx, id, keepOld)
		if err != nil {
			return err
		}
		a.cliEvent(ctx, audit.ClientChanged, id, map[string]any{"secret": "rotated", "keep_old": keepOld.String()})
		if asJSON {
			return json.NewEncoder(stdout).Encode(map[string]string{"secret": secret})
		}
		fmt.Fprintf(stdout, "client_secret: %s\n(shown once: it is stored only as a hash)\n", secret)
		if keepOld > 0 {
			fmt.Fprintf(stdout, "the old secret stays valid for %s\n", keepOld)
		} else {
			// A running server keeps clients for ClientCacheTTL: it accepts
			// the new secret at once (a refused secret re-reads the
			// client) but may take the old one until its copy expires.
			fmt.Fprintf(stdout, "the new secret works at once; the old one stops now, or within %s on a server that read this client just before (its client cache)\n",
				fositestore.ClientCacheTTL)
		}
		return nil
	case "list":
		var asJSON bool
		a, err := openApp(ctx, "clients list", args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		}, nil)
		if err != nil {
			return err
		}
		defer a.store.Close()
		list, err := a.clients.List(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			out := make([]clientJSON, len(list))
			for i, c := range list {
				out[i] = toClientJSON(c, "")
			}
			return json.NewEncoder(stdout).Encode(out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTYPE\tGRANTS\tSCOPES\tREDIRECT URIS")
		for _, c := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, clients.Kind(c), strings.Join(c.GrantTypes, ","), strings.Join(c.Scopes, " "), strings.Join(c.RedirectURIs, " "))
		}
		return tw.Flush()
	case "delete":
		var id string
		var asJSON bool
		a, err := openAppArg(ctx, "clients delete", posArg{"ID", &id}, args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&id, "id", id, "client ID")
			jsonFlag(fs, &asJSON)
		}, requireArg(&id, "usage: tonearm clients delete ID [--json]"))
		if err != nil {
			return err
		}
		defer a.store.Close()
		if err := a.clients.Delete(ctx, id); err != nil {
			return err
		}
		a.cliEvent(ctx, audit.ClientDeleted, id, nil)
		if asJSON {
			return deletedJSON(stdout)
		}
		fmt.Fprintf(stdout, "deleted client %s and every token issued to it\n", id)
		return nil
	default:
		return groupUsage(args, usage, stdout)
	}
}

// clientFlagValues are the flags of clients create and update.
type clientFlagValues struct {
	spec                                  clients.Spec
	redirects, postLogout, grants, scopes listFlag
	asJSON                                bool
}

// register adds the flags; withID: create's --id and --secret.
func (f *clientFlagValues) register(fs *flag.FlagSet, withID bool) {
	if withID {
		fs.StringVar(&f.spec.ID, "id", "", "client ID")
		fs.StringVar(&f.spec.Secret, "secret", "", "client secret (≥ 32 characters); omitted: one is generated and printed once")
		fs.BoolVar(&f.spec.Public, "public", false, "public client: no secret, PKCE required")
	} else {
		// The client's secret, as on create: the server's own secret
		// comes from TONEARM_SECRET only, never from a flag.
		fs.StringVar(&f.spec.Secret, "secret", "", "set the client's secret (≥ 32 characters); the old one stops at once (tonearm clients rotate-secret generates one and can keep the old one a while)")
	}
	fs.Var(&f.redirects, "redirect-uri", "redirect URI (repeatable)")
	fs.Var(&f.postLogout, "post-logout-redirect-uri", "post-logout redirect URI (repeatable)")
	fs.Var(&f.grants, "grant-type", "authorization_code, refresh_token, client_credentials or urn:ietf:params:oauth:grant-type:device_code (repeatable)")
	fs.Var(&f.scopes, "scope", `allowed scopes, e.g. "openid profile email listenbrainz offline_access"`)
	fs.BoolVar(&f.spec.FirstParty, "first-party", false, "first-party client: no consent screen")
	fs.StringVar(&f.spec.BackchannelLogoutURI, "backchannel-logout-uri", "", "receives a logout token when a session it holds tokens from ends (OpenID Connect Back-Channel Logout)")
	fs.BoolVar(&f.spec.AllowNoPKCE, "allow-no-pkce", false, "a legacy confidential client that cannot send PKCE (every other client must)")
	fs.BoolVar(&f.spec.RequirePAR, "require-par", false, "authorization requests must be pushed to /oauth2/par first (RFC 9126)")
	fs.StringVar(&f.spec.Name, "name", "", "display name shown on the login and consent pages")
	fs.StringVar(&f.spec.LogoURI, "logo-uri", "", "logo shown on the login and consent pages: an https URL or a data:image/ URI")
	fs.StringVar(&f.spec.ClientURI, "client-uri", "", "the app's home page")
	fs.StringVar(&f.spec.PolicyURI, "policy-uri", "", "the app's privacy policy")
	fs.StringVar(&f.spec.TosURI, "tos-uri", "", "the app's terms of service")
	fs.StringVar(&f.spec.IDTokenAlg, "id-token-alg", "RS256", "the algorithm of its ID tokens: RS256, or ES256 (about 20× cheaper to sign; the app's library must accept it)")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
}

// apply copies the flag name, given on the command line, onto spec (an
// update changes what it is given, lists as a whole).
func (f *clientFlagValues) apply(name string, spec *clients.Spec) {
	switch name {
	case "redirect-uri":
		spec.RedirectURIs = f.redirects
	case "post-logout-redirect-uri":
		spec.PostLogoutRedirectURIs = f.postLogout
	case "grant-type":
		spec.GrantTypes = f.grants
	case "scope":
		spec.Scopes = f.scopes
	case "first-party":
		spec.FirstParty = f.spec.FirstParty
	case "backchannel-logout-uri":
		spec.BackchannelLogoutURI = f.spec.BackchannelLogoutURI
	case "allow-no-pkce":
		spec.AllowNoPKCE = f.spec.AllowNoPKCE
	case "require-par":
		spec.RequirePAR = f.spec.RequirePAR
	case "name":
		spec.Name = f.spec.Name
	case "logo-uri":
		spec.LogoURI = f.spec.LogoURI
	case "client-uri":
		spec.ClientURI = f.spec.ClientURI
	case "policy-uri":
		spec.PolicyURI = f.spec.PolicyURI
	case "tos-uri":
		spec.TosURI = f.spec.TosURI
	case "id-token-alg":
		spec.IDTokenAlg = f.spec.IDTokenAlg
	case "secret":
		spec.Secret = f.spec.Secret
	}
}

func keysCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "rotate") {
		return groupUsage(args, "usage: tonearm keys list|rotate [--json]", stdout)
	}
	var asJSON bool
	a, err := openApp(ctx, "keys "+args[0], args[1:], getenv, stderr, func(fs *flag.FlagSet) { jsonFlag(fs, &asJSON) }, nil)
	if err != nil {
		return err
	}
	defer a.store.Close()
	if args[0] == "rotate" {
		added, err := a.keys.Rotate(ctx)
		if err != nil {
			return err
		}
		kids := make([]string, len(added))
		for i, k := range added {
			kids[i] = k.KID
		}
		a.cliEvent(ctx, audit.KeysRotated, "", map[string]any{"added": kids})
		if asJSON {
			// The keys the rotation added (one per algorithm).
			out := make([]keyJSON, len(added))
			for i, k := range added {
				out[i] = toKeyJSON(k)
			}
			return printJSON(stdout, out)
		}
		for _, k := range added {
			fmt.Fprintf(stdout, "new %s signing key %s\n", k.Alg, k.KID)
		}
		fmt.Fprintln(stdout, "previous keys stay published until every token they signed has expired")
		return nil
	}
	if asJSON {
		out := []keyJSON{}
		for _, k := range a.keys.Published() {
			out = append(out, toKeyJSON(k))
		}
		return printJSON(stdout, out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tCREATED\tSTATUS")
	for _, k := range a.keys.Published() {
		status := "signing"
		if !k.RetiredAt.IsZero() {
			status = "retired " + k.RetiredAt.UTC().Format(time.RFC3339) + ", verifying only"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.KID, k.Alg, k.CreatedAt.UTC().Format(time.RFC3339), status)
	}
	return tw.Flush()
}
