package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tonearm-idp/tonearm/provider/apis"
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
	RequireDPoP            bool     `json:"requireDpop,omitempty" yaml:"requireDpop,omitempty"`
	BackchannelLogoutURI   string   `json:"backchannelLogoutUri,omitempty" yaml:"backchannelLogoutUri,omitempty"`
	LogoURI                string   `json:"logoUri,omitempty" yaml:"logoUri,omitempty"`
	ClientURI              string   `json:"clientUri,omitempty" yaml:"clientUri,omitempty"`
	PolicyURI              string   `json:"policyUri,omitempty" yaml:"policyUri,omitempty"`
	TosURI                 string   `json:"tosUri,omitempty" yaml:"tosUri,omitempty"`
	IDTokenAlg             string   `json:"idTokenAlg,omitempty" yaml:"idTokenAlg,omitempty"`
	// How it authenticates and its keys: jwks is the JWK Set itself, a
	// mapping (a string, even one holding JSON, is a value of the wrong
	// kind, as in the admin API and RFC 7591).
	TokenEndpointAuthMethod string   `json:"tokenEndpointAuthMethod,omitempty" yaml:"tokenEndpointAuthMethod,omitempty"`
	JWKS                    jwkSet   `json:"jwks,omitempty" yaml:"jwks,omitempty"`
	JWKSURI                 string   `json:"jwksUri,omitempty" yaml:"jwksUri,omitempty"`
	RequestURIs             []string `json:"requestUris,omitempty" yaml:"requestUris,omitempty"`
	RequestObjectSigningAlg string   `json:"requestObjectSigningAlg,omitempty" yaml:"requestObjectSigningAlg,omitempty"`
	SubjectType             string   `json:"subjectType,omitempty" yaml:"subjectType,omitempty"`
	SectorIdentifierURI     string   `json:"sectorIdentifierUri,omitempty" yaml:"sectorIdentifierUri,omitempty"`
	// SecretEnv names the environment variable holding the secret of a
	// confidential client (secrets never sit in the file). Without it a
	// new client's secret is generated and printed once.
	SecretEnv string `json:"secretEnv,omitempty" yaml:"secretEnv,omitempty"`
}

// jwkSet is a client's JWK Set in the file: a mapping (its own type, so
// an error names it in the file's words).
type jwkSet map[string]any

type fileAPI struct {
	ID            string      `json:"id" yaml:"id"`
	Name          string      `json:"name,omitempty" yaml:"name,omitempty"`
	Scopes        []fileScope `json:"scopes" yaml:"scopes"`
	Claims        []string    `json:"claims,omitempty" yaml:"claims,omitempty"`
	Introspectors []string    `json:"introspectors,omitempty" yaml:"introspectors,omitempty"`
	ExchangeFrom  []string    `json:"exchangeFrom,omitempty" yaml:"exchangeFrom,omitempty"`
	// OpenToApps: apps registered by developers may ask for its scopes.
	OpenToApps bool `json:"openToApps,omitempty" yaml:"openToApps,omitempty"`
}

type fileScope struct {
	Name        string `json:"name" yaml:"name"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
}

func (c fileClient) spec() clients.Spec {
	jwks := ""
	if c.JWKS != nil {
		// A mapping read from YAML: the registry reads (and refuses) it as JSON.
		b, _ := json.Marshal(c.JWKS)
		jwks = string(b)
	}
	return clients.Spec{
		Keys: clients.Keys{TokenEndpointAuthMethod: c.TokenEndpointAuthMethod, JWKS: jwks, JWKSURI: c.JWKSURI, RequestURIs: c.RequestURIs,
			RequestObjectSigningAlg: c.RequestObjectSigningAlg, SubjectType: c.SubjectType, SectorIdentifierURI: c.SectorIdentifierURI},
		ID: c.ID, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, GrantTypes: c.GrantTypes,
		Scopes: strings.Fields(c.Scope), Public: c.Public, FirstParty: c.FirstParty, AllowNoPKCE: c.AllowNoPKCE, RequirePAR: c.RequirePAR, RequireDPoP: c.RequireDPoP,
		BackchannelLogoutURI: c.BackchannelLogoutURI, IDTokenAlg: c.IDTokenAlg,
		Display: clients.Display{Name: c.Name, LogoURI: c.LogoURI, ClientURI: c.ClientURI, PolicyURI: c.PolicyURI, TosURI: c.TosURI},
	}
}

func (a fileAPI) spec() apis.Spec {
	s := apis.Spec{ID: a.ID, Name: a.Name, Claims: a.Claims, Introspectors: a.Introspectors, ExchangeFrom: a.ExchangeFrom, OpenToApps: a.OpenToApps}
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

// configCommands are tonearm apply and tonearm export.
var configCommands = []command{
	{name: "apply", needs: needClients, flags: applyFlags},
	{name: "export", needs: needClients, flags: func(fs *flag.FlagSet, in *input) runFunc {
		fs.BoolVar(&in.asJSON, "json", false, "print JSON instead of YAML")
		return exportRun
	}},
}

// applyFlags are the flags of tonearm apply -f FILE [--dry-run] [--prune] [--json].
// maxApplyFile bounds the file apply reads.
const maxApplyFile = 4 << 20

func applyFlags(fs *flag.FlagSet, in *input) runFunc {
	var file string
	var dryRun, prune bool
	fs.StringVar(&file, "f", "", "the file: YAML or JSON with clients and apis (- for standard input)")
	fs.BoolVar(&dryRun, "dry-run", false, "print what would change and change nothing")
	fs.BoolVar(&prune, "prune", false, "also delete the clients and APIs the file does not name")
	jsonFlag(fs, &in.asJSON)
	in.check = requireArg(&file, "usage: tonearm apply -f FILE [--dry-run] [--prune] [--json]")
	return func(ctx context.Context, s *services, in *input) error {
		data, err := readFileFlag("-f", file, in.stdin, maxApplyFile+1)
		if err != nil {
			return err
		}
		if len(data) > maxApplyFile {
			// Never a file cut short: its first part may be valid YAML.
			return errors.New("-f: the file is larger than 4 MiB: apply reads at most that")
		}
		want, err := readDesired(data)
		if err != nil {
			return err
		}
		// One transaction: the dry run rolls it back, the real run commits
		// it only when every item succeeded, so a refused item leaves
		// nothing changed (not the items before it) and both runs do the
		// same writes, checked against the state the file's earlier items
		// produce. The registries join it (audit.Apply), events included.
		txCtx, err := s.store.BeginTx(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = s.store.RollbackTx(txCtx) }() // after a commit it does nothing
		ap := &applier{services: s, in: in, want: want, dryRun: dryRun}
		if err := ap.run(txCtx, prune); err != nil {
			return fmt.Errorf("%w (nothing was changed: apply applies the whole file or none of it)", err)
		}
		if !dryRun {
			if err := s.store.CommitTx(txCtx); err != nil {
				return err
			}
		}
		return ap.print()
	}
}

// exportCommand prints the clients and APIs as apply reads them, without
// secrets (secretEnv is left for the operator to fill in).
func exportRun(ctx context.Context, a *services, in *input) error {
	stdout := in.stdout
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
			GrantTypes: c.GrantTypes, Scope: strings.Join(c.Scopes, " "), AllowNoPKCE: c.AllowNoPKCE, RequirePAR: c.RequirePAR, RequireDPoP: c.RequireDPoP,
			BackchannelLogoutURI: c.BackchannelLogoutURI, LogoURI: c.LogoURI, ClientURI: c.ClientURI, PolicyURI: c.PolicyURI, TosURI: c.TosURI,
		})
		fc := &d.Clients[len(d.Clients)-1]
		if c.IDTokenAlg != "RS256" {
			fc.IDTokenAlg = c.IDTokenAlg
		}
		exportKeys(fc, c)
	}
	all, err := a.apis.List(ctx)
	if err != nil {
		return err
	}
	for _, api := range all {
		if api.ID == a.apis.Builtin().ID {
			continue
		}
		fa := fileAPI{ID: api.ID, Name: api.Name, Claims: api.Claims, Introspectors: api.Introspectors, ExchangeFrom: api.ExchangeFrom, OpenToApps: api.OpenToApps}
		for _, s := range api.Scopes {
			fa.Scopes = append(fa.Scopes, fileScope{Name: s.Name, Description: s.Description})
		}
		d.APIs = append(d.APIs, fa)
	}
	if in.asJSON {
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

// exportKeys writes c's keys, request objects and subject type into fc as
// apply reads them back: jwks inline, as a mapping.
func exportKeys(fc *fileClient, c storage.Client) {
	fc.TokenEndpointAuthMethod, fc.JWKSURI, fc.RequestURIs = c.TokenEndpointAuthMethod, c.JWKSURI, c.RequestURIs
	fc.RequestObjectSigningAlg, fc.SectorIdentifierURI = c.RequestObjectSigningAlg, c.SectorIdentifierURI
	if c.SubjectType == storage.SubjectPairwise {
		fc.SubjectType = c.SubjectType
	}
	if c.JWKS != "" {
		var set map[string]any
		if json.Unmarshal([]byte(c.JWKS), &set) == nil {
			fc.JWKS = set
		}
	}
}
