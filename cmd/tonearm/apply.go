package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// Configuration as code: tonearm apply -f FILE makes the clients and APIs
// match a file (YAML or JSON) and tonearm export prints that file.

// desired is the file apply reads and export writes.
type desired struct {
	Clients []fileClient `json:"clients" yaml:"clients"`
	APIs    []fileAPI    `json:"apis" yaml:"apis"`
}

type fileClient struct {
	ID                     string   `json:"id" yaml:"id"`
	Name                   string   `json:"name,omitempty" yaml:"name,omitempty"`
	Public                 bool     `json:"public,omitempty" yaml:"public,omitempty"`
	FirstParty             bool     `json:"firstParty,omitempty" yaml:"firstParty,omitempty"`
	RedirectURIs           []string `json:"redirectUris,omitempty" yaml:"redirectUris,omitempty"`
	PostLogoutRedirectURIs []string `json:"postLogoutRedirectUris,omitempty" yaml:"postLogoutRedirectUris,omitempty"`
	GrantTypes             []string `json:"grantTypes,omitempty" yaml:"grantTypes,omitempty"`
	Scope                  string   `json:"scope,omitempty" yaml:"scope,omitempty"`
	AllowNoPKCE            bool     `json:"allowNoPkce,omitempty" yaml:"allowNoPkce,omitempty"`
	RequirePAR             bool     `json:"requirePar,omitempty" yaml:"requirePar,omitempty"`
	BackchannelLogoutURI   string   `json:"backchannelLogoutUri,omitempty" yaml:"backchannelLogoutUri,omitempty"`
	LogoURI                string   `json:"logoUri,omitempty" yaml:"logoUri,omitempty"`
	ClientURI              string   `json:"clientUri,omitempty" yaml:"clientUri,omitempty"`
	PolicyURI              string   `json:"policyUri,omitempty" yaml:"policyUri,omitempty"`
	TosURI                 string   `json:"tosUri,omitempty" yaml:"tosUri,omitempty"`
	IDTokenAlg             string   `json:"idTokenAlg,omitempty" yaml:"idTokenAlg,omitempty"`
	// SecretEnv names the environment variable holding the secret of a
	// confidential client (secrets never sit in the file). Without it a
	// new client's secret is generated and printed once.
	SecretEnv string `json:"secretEnv,omitempty" yaml:"secretEnv,omitempty"`
}

type fileAPI struct {
	ID            string      `json:"id" yaml:"id"`
	Name          string      `json:"name,omitempty" yaml:"name,omitempty"`
	Scopes        []fileScope `json:"scopes" yaml:"scopes"`
	Claims        []string    `json:"claims,omitempty" yaml:"claims,omitempty"`
	Introspectors []string    `json:"introspectors,omitempty" yaml:"introspectors,omitempty"`
	// OpenToApps: apps registered by developers may ask for its scopes.
	OpenToApps bool `json:"openToApps,omitempty" yaml:"openToApps,omitempty"`
}

type fileScope struct {
	Name        string `json:"name" yaml:"name"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
}

func (c fileClient) spec() clients.Spec {
	return clients.Spec{
		ID: c.ID, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, GrantTypes: c.GrantTypes,
		Scopes: strings.Fields(c.Scope), Public: c.Public, FirstParty: c.FirstParty, AllowNoPKCE: c.AllowNoPKCE, RequirePAR: c.RequirePAR,
		BackchannelLogoutURI: c.BackchannelLogoutURI, IDTokenAlg: c.IDTokenAlg,
		Display: clients.Display{Name: c.Name, LogoURI: c.LogoURI, ClientURI: c.ClientURI, PolicyURI: c.PolicyURI, TosURI: c.TosURI},
	}
}

func (a fileAPI) spec() apis.Spec {
	s := apis.Spec{ID: a.ID, Name: a.Name, Claims: a.Claims, Introspectors: a.Introspectors, OpenToApps: a.OpenToApps}
	for _, sc := range a.Scopes {
		s.Scopes = append(s.Scopes, storage.APIScope{Name: sc.Name, Description: sc.Description})
	}
	return s
}

// readDesired parses a file as YAML (JSON is YAML too), refusing unknown
// fields: a misspelt key must not be silently ignored.
func readDesired(data []byte) (desired, error) {
	var d desired
	shape, err := readShape(data)
	if err != nil {
		return d, fmt.Errorf("reading the file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil && !errors.Is(err, io.EOF) {
		return d, fmt.Errorf("reading the file: %w", shape.plainError(err))
	}
	seen := map[string]bool{}
	for _, c := range d.Clients {
		if c.ID == "" || seen["client "+c.ID] {
			return d, fmt.Errorf("every client needs an id, once (%q)", c.ID)
		}
		seen["client "+c.ID] = true
	}
	for _, a := range d.APIs {
		if a.ID == "" || seen["api "+a.ID] {
			return d, fmt.Errorf("every API needs an id, once (%q)", a.ID)
		}
		seen["api "+a.ID] = true
	}
	return d, nil
}

func sameClient(a, b storage.Client) bool {
	x, y := toClientJSON(a, ""), toClientJSON(b, "")
	x.CreatedAt, y.CreatedAt = "", ""
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return bytes.Equal(xs, ys)
}

func sameAPI(a, b storage.API) bool {
	a.CreatedAt = b.CreatedAt
	as, _ := json.Marshal(a)
	bs, _ := json.Marshal(b)
	return bytes.Equal(as, bs)
}

// applyCommand is tonearm apply -f FILE [--dry-run] [--prune].
func applyCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	var file string
	var dryRun, prune bool
	a, err := openApp(ctx, "apply", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&file, "f", "", "the file: YAML or JSON with clients and apis (- for standard input)")
		fs.BoolVar(&dryRun, "dry-run", false, "print what would change and change nothing")
		fs.BoolVar(&prune, "prune", false, "also delete the clients and APIs the file does not name")
	}, requireArg(&file, "usage: tonearm apply -f FILE [--dry-run] [--prune]"))
	if err != nil {
		return err
	}
	defer a.store.Close()
	var data []byte
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, 4<<20))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return err
	}
	want, err := readDesired(data)
	if err != nil {
		return err
	}
	ctx = audit.WithOrigin(ctx, audit.Origin{Actor: "cli"})
	if dryRun {
		// The dry run is the real run in a transaction that is rolled
		// back: it validates against the state the file's earlier items
		// produce (a client holding a scope an API of the file creates or
		// changes) and refuses what the real run refuses, because it runs
		// the same code, writes included.
		txCtx, err := a.store.BeginTx(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = a.store.RollbackTx(txCtx) }()
		ctx = txCtx
	}
	changes := 0
	say := func(format string, args ...any) {
		changes++
		prefix := ""
		if dryRun {
			prefix = "would "
		}
		fmt.Fprintf(stdout, prefix+format+"\n", args...)
	}
	existingClients := map[string]storage.Client{}
	list, err := a.clients.List(ctx)
	if err != nil {
		return err
	}
	for _, c := range list {
		existingClients[c.ID] = c
	}
	knownClient := func(id string) bool {
		if _, ok := existingClients[id]; ok {
			return true
		}
		return slices.ContainsFunc(want.Clients, func(c fileClient) bool { return c.ID == id })
	}

	// 0. Prune the clients the file does not name first: they may hold
	// scopes an API loses below. Apps registered by their developers are
	// theirs, not the operator's file's: never pruned.
	if prune {
		for _, c := range list {
			if c.Registration == "" && !slices.ContainsFunc(want.Clients, func(f fileClient) bool { return f.ID == c.ID }) {
				say("delete client %s", c.ID)
				delete(existingClients, c.ID)
				if err := a.clients.Delete(ctx, c.ID); err != nil {
					return fmt.Errorf("client %s: %w", c.ID, err)
				}
				a.cliEvent(ctx, audit.ClientDeleted, c.ID, nil)
			}
		}
	}

	// 1. APIs first (clients may hold their scopes); introspectors that are
	// clients of this file not yet created wait for step 3.
	for _, fa := range want.APIs {
		spec := fa.spec()
		for _, id := range spec.Introspectors {
			if !knownClient(id) {
				return fmt.Errorf("API %s: introspector %q is neither a registered client nor in the file", fa.ID, id)
			}
		}
		now := spec
		now.Introspectors = slices.DeleteFunc(slices.Clone(spec.Introspectors), func(id string) bool { _, ok := existingClients[id]; return !ok })
		cur, err := a.apis.Get(ctx, fa.ID)
		switch {
		case errors.Is(err, apis.ErrNotFound):
			if _, err := a.apis.Check(ctx, now); err != nil { // introspectors created later by this file are set in step 3
				return fmt.Errorf("API %s: %w", fa.ID, err)
			}
			say("create API %s", fa.ID)
			if _, err := a.apis.Create(ctx, now); err != nil {
				return fmt.Errorf("API %s: %w", fa.ID, err)
			}
			a.cliEvent(ctx, audit.APICreated, "", map[string]any{"api": fa.ID})
		case err != nil:
			return err
		default:
			checked, err := a.apis.Check(ctx, now)
			if err != nil {
				return fmt.Errorf("API %s: %w", fa.ID, err)
			}
			checked.CreatedAt = cur.CreatedAt
			full := checked
			full.Introspectors = spec.Introspectors
			if full.Introspectors == nil {
				full.Introspectors = []string{}
			}
			if sameAPI(cur, full) {
				continue
			}
			say("update API %s", fa.ID)
			if _, err := a.apis.Update(ctx, fa.ID, apis.Update{Name: &now.Name, Scopes: &checked.Scopes, Claims: &checked.Claims, Introspectors: &checked.Introspectors,
				OpenToApps: &now.OpenToApps}); err != nil {
				return fmt.Errorf("API %s: %w", fa.ID, err)
			}
			a.cliEvent(ctx, audit.APIChanged, "", map[string]any{"api": fa.ID})
		}
	}

	// 2. Clients.
	for _, fc := range want.Clients {
		spec := fc.spec()
		secret := ""
		if fc.SecretEnv != "" {
			if secret = getenv(fc.SecretEnv); secret == "" {
				return fmt.Errorf("client %s: the variable %s named by secretEnv is unset", fc.ID, fc.SecretEnv)
			}
			if fc.Public {
				return fmt.Errorf("client %s: a public client has no secret (drop secretEnv)", fc.ID)
			}
		}
		cur, exists := existingClients[fc.ID]
		if !exists {
			if _, err := a.clients.Check(ctx, spec); err != nil {
				return fmt.Errorf("client %s: %w", fc.ID, err)
			}
			say("create client %s", fc.ID)
			spec.Secret = secret
			c, generated, err := a.clients.Create(ctx, spec)
			if err != nil {
				return fmt.Errorf("client %s: %w", fc.ID, err)
			}
			existingClients[c.ID] = c
			a.cliEvent(ctx, audit.ClientCreated, c.ID, nil)
			if generated != "" && secret == "" && !dryRun { // the dry run's client is rolled back: its secret is nobody's
				fmt.Fprintf(stdout, "  client_secret of %s: %s (shown once; put it in a variable and name it with secretEnv)\n", c.ID, generated)
			}
			continue
		}
		if cur.Public != fc.Public {
			return fmt.Errorf("client %s: it cannot change between public and confidential; delete it first", fc.ID)
		}
		checked, err := a.clients.Check(ctx, spec)
		if err != nil {
			return fmt.Errorf("client %s: %w", fc.ID, err)
		}
		checked.CreatedAt = cur.CreatedAt
		if !sameClient(cur, checked) {
			say("update client %s", fc.ID)
			if _, err := a.clients.Update(ctx, fc.ID, func(s *clients.Spec) { *s = spec }); err != nil {
				return fmt.Errorf("client %s: %w", fc.ID, err)
			}
			a.cliEvent(ctx, audit.ClientChanged, fc.ID, nil)
		}
		if secret != "" && !a.clients.SecretMatches(ctx, cur, secret) {
			say("set the secret of client %s from %s", fc.ID, fc.SecretEnv)
			if err := a.clients.SetSecret(ctx, fc.ID, secret); err != nil {
				return fmt.Errorf("client %s: %w", fc.ID, err)
			}
			a.cliEvent(ctx, audit.ClientChanged, fc.ID, map[string]any{"secret": "set"})
		}
	}

	// 3. Introspectors that waited for their clients.
	for _, fa := range want.APIs {
		cur, err := a.apis.Get(ctx, fa.ID)
		if err != nil {
			return err
		}
		if len(fa.Introspectors) > 0 && !slices.Equal(cur.Introspectors, fa.Introspectors) {
			intro := fa.Introspectors
			if _, err := a.apis.Update(ctx, fa.ID, apis.Update{Introspectors: &intro}); err != nil {
				return fmt.Errorf("API %s: %w", fa.ID, err)
			}
		}
	}

	// 4. Prune the APIs the file does not name (their clients went first).
	if prune {
		all, err := a.apis.List(ctx)
		if err != nil {
			return err
		}
		for _, api := range all {
			if api.ID == a.apis.Builtin().ID || slices.ContainsFunc(want.APIs, func(f fileAPI) bool { return f.ID == api.ID }) {
				continue
			}
			say("delete API %s", api.ID)
			if err := a.apis.Delete(ctx, api.ID); err != nil {
				return fmt.Errorf("API %s: %w", api.ID, err)
			}
			a.cliEvent(ctx, audit.APIDeleted, "", map[string]any{"api": api.ID})
		}
	}
	if changes == 0 {
		fmt.Fprintln(stdout, "nothing to change")
	}
	return nil
}

// exportCommand prints the clients and APIs as apply reads them, without
// secrets (secretEnv is left for the operator to fill in).
func exportCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var asJSON bool
	a, err := openApp(ctx, "export", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of YAML")
	}, nil)
	if err != nil {
		return err
	}
	defer a.store.Close()
	var d desired
	list, err := a.clients.List(ctx)
	if err != nil {
		return err
	}
	for _, c := range list {
		if c.Registration != "" {
			continue // an app registered by its developer (not configuration)
		}
		d.Clients = append(d.Clients, fileClient{
			ID: c.ID, Name: c.Name, Public: c.Public, FirstParty: c.FirstParty, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
			GrantTypes: c.GrantTypes, Scope: strings.Join(c.Scopes, " "), AllowNoPKCE: c.AllowNoPKCE, RequirePAR: c.RequirePAR,
			BackchannelLogoutURI: c.BackchannelLogoutURI, LogoURI: c.LogoURI, ClientURI: c.ClientURI, PolicyURI: c.PolicyURI, TosURI: c.TosURI,
		})
		if c.IDTokenAlg != "RS256" {
			d.Clients[len(d.Clients)-1].IDTokenAlg = c.IDTokenAlg
		}
	}
	all, err := a.apis.List(ctx)
	if err != nil {
		return err
	}
	for _, api := range all {
		if api.ID == a.apis.Builtin().ID {
			continue
		}
		fa := fileAPI{ID: api.ID, Name: api.Name, Claims: api.Claims, Introspectors: api.Introspectors, OpenToApps: api.OpenToApps}
		for _, s := range api.Scopes {
			fa.Scopes = append(fa.Scopes, fileScope{Name: s.Name, Description: s.Description})
		}
		d.APIs = append(d.APIs, fa)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	fmt.Fprintln(stdout, "# tonearm export: clients and APIs as tonearm apply -f reads them (no secrets: name a variable with secretEnv).")
	enc := yaml.NewEncoder(stdout)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return err
	}
	return enc.Close()
}
