package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tonearm-idp/tonearm/provider/apis"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// applier makes the clients and APIs match a file (tonearm apply), in
// steps: prune the clients, the clients of the file that are valid as
// things stand (they may drop scopes their APIs drop next), the APIs, the
// other clients (they may hold scopes the APIs just made), the
// introspectors that waited for their clients, prune the APIs. It runs in
// one transaction its caller commits only when every step succeeded (and
// never in a dry run): a file is applied whole or not at all.
type applier struct {
	*services
	in     *input
	want   desired
	dryRun bool
	// done are the changes made (in a dry run, that would be made), each
	// noted once its write succeeded: printed only when the whole file is.
	done []applyChange
	// existing are the registered clients as the steps change them.
	existing map[string]storage.Client
}

// applyChange is one change apply made, as --json prints it: action
// (create, update, delete, set-secret), kind (client or api) and id; a
// generated secret comes with its client's create (real runs only).
type applyChange struct {
	Action       string `json:"action"`
	Kind         string `json:"kind"`
	ID           string `json:"id"`
	ClientSecret string `json:"client_secret,omitempty"`
	// text is the line printed without --json (after "would " in a dry run).
	text string
}

func (a *applier) run(ctx context.Context, prune bool) error {
	list, err := a.clients.List(ctx)
	if err != nil {
		return err
	}
	a.existing = map[string]storage.Client{}
	for _, c := range list {
		a.existing[c.ID] = c
	}
	if prune {
		if err := a.pruneClients(ctx, list); err != nil {
			return err
		}
	}
	later, err := a.applyClientsFirst(ctx)
	if err != nil {
		return err
	}
	for _, fa := range a.want.APIs {
		if err := a.applyAPI(ctx, fa); err != nil {
			return err
		}
	}
	for _, fc := range later {
		if err := a.applyClient(ctx, fc); err != nil {
			return err
		}
	}
	if err := a.applyIntrospectors(ctx); err != nil {
		return err
	}
	if prune {
		return a.pruneAPIs(ctx)
	}
	return nil
}

// applyClientsFirst applies, before the APIs, the registered clients of
// the file that are valid against the APIs as they stand, so that a file
// dropping a scope from a client and from its API applies in one run (the
// API could not drop a scope a client still holds). It returns the other
// clients, which wait for the APIs (they may hold scopes the file adds).
func (a *applier) applyClientsFirst(ctx context.Context) ([]fileClient, error) {
	var later []fileClient
	for _, fc := range a.want.Clients {
		cur, exists := a.existing[fc.ID]
		if !exists || cur.Public != fc.Public {
			later = append(later, fc)
			continue
		}
		if _, err := a.clients.Check(ctx, fc.spec()); err != nil {
			later = append(later, fc) // refused after the APIs if still invalid then
			continue
		}
		if err := a.applyClient(ctx, fc); err != nil {
			return nil, err
		}
	}
	return later, nil
}

// say notes a change whose write succeeded.
func (a *applier) say(action, kind, id, text string) {
	a.done = append(a.done, applyChange{Action: action, Kind: kind, ID: id, text: text})
}

// print prints the changes: a JSON object with --json ({"dryRun",
// "changes": [{"action", "kind", "id"}…]}), else one line each ("would …"
// in a dry run) or "nothing to change".
func (a *applier) print() error {
	if a.in.asJSON {
		changes := a.done
		if changes == nil {
			changes = []applyChange{}
		}
		return printJSON(a.in.stdout, struct {
			DryRun  bool          `json:"dryRun"`
			Changes []applyChange `json:"changes"`
		}{a.dryRun, changes})
	}
	if len(a.done) == 0 {
		_, err := fmt.Fprintln(a.in.stdout, "nothing to change")
		return err
	}
	prefix := ""
	if a.dryRun {
		prefix = "would "
	}
	for _, c := range a.done {
		if _, err := fmt.Fprintln(a.in.stdout, prefix+c.text); err != nil {
			return err
		}
		if c.ClientSecret != "" {
			fmt.Fprintf(a.in.stdout, "  client_secret of %s: %s (shown once; put it in a variable and name it with secretEnv)\n", c.ID, c.ClientSecret)
		}
	}
	return nil
}

func (a *applier) knownClient(id string) bool {
	if _, ok := a.existing[id]; ok {
		return true
	}
	return slices.ContainsFunc(a.want.Clients, func(c fileClient) bool { return c.ID == id })
}

// pruneClients deletes the clients the file does not name, first: they
// may hold scopes an API loses below. Apps registered by their developers
// are theirs, not the operator's file's: never pruned.
func (a *applier) pruneClients(ctx context.Context, list []storage.Client) error {
	for _, c := range list {
		if c.Registration == "" && !slices.ContainsFunc(a.want.Clients, func(f fileClient) bool { return f.ID == c.ID }) {
			if err := a.clients.Delete(ctx, c.ID); err != nil {
				return fmt.Errorf("client %s: %w", c.ID, err)
			}
			delete(a.existing, c.ID)
			a.say("delete", "client", c.ID, "delete client "+c.ID)
		}
	}
	return nil
}

// applyAPI creates or updates an API of the file, before the clients (they
// may hold its scopes); introspectors and exchange-from clients that are
// clients of this file not yet created wait for applyIntrospectors.
func (a *applier) applyAPI(ctx context.Context, fa fileAPI) error {
	spec := fa.spec()
	for _, id := range spec.Introspectors {
		if !a.knownClient(id) {
			return fmt.Errorf("API %s: introspector %q is neither a registered client nor in the file", fa.ID, id)
		}
	}
	for _, id := range spec.ExchangeFrom {
		if !a.knownClient(id) {
			return fmt.Errorf("API %s: exchange-from client %q is neither a registered client nor in the file", fa.ID, id)
		}
	}
	now := spec
	now.Introspectors = slices.DeleteFunc(slices.Clone(spec.Introspectors), func(id string) bool { _, ok := a.existing[id]; return !ok })
	now.ExchangeFrom = slices.DeleteFunc(slices.Clone(spec.ExchangeFrom), func(id string) bool { _, ok := a.existing[id]; return !ok })
	cur, err := a.apis.Get(ctx, fa.ID)
	switch {
	case errors.Is(err, apis.ErrNotFound):
		if _, err := a.apis.Check(ctx, now); err != nil { // introspectors created later by this file are set by applyIntrospectors
			return fmt.Errorf("API %s: %w", fa.ID, err)
		}
		if _, err := a.apis.Create(ctx, now); err != nil {
			return fmt.Errorf("API %s: %w", fa.ID, err)
		}
		a.say("create", "api", fa.ID, "create API "+fa.ID)
		return nil
	case err != nil:
		return err
	}
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
	full.ExchangeFrom = spec.ExchangeFrom
	if full.ExchangeFrom == nil {
		full.ExchangeFrom = []string{}
	}
	if sameAPI(cur, full) {
		return nil
	}
	if _, err := a.apis.Update(ctx, fa.ID, apis.Update{Name: &now.Name, Scopes: &checked.Scopes, Claims: &checked.Claims, Introspectors: &checked.Introspectors,
		ExchangeFrom: &checked.ExchangeFrom, OpenToApps: &now.OpenToApps}); err != nil {
		return fmt.Errorf("API %s: %w", fa.ID, err)
	}
	a.say("update", "api", fa.ID, "update API "+fa.ID)
	return nil
}

// applyClient creates or updates a client of the file, and sets its
// secret from the variable secretEnv names.
func (a *applier) applyClient(ctx context.Context, fc fileClient) error {
	spec := fc.spec()
	secret := ""
	if fc.SecretEnv != "" {
		if secret = a.in.getenv(fc.SecretEnv); secret == "" {
			return fmt.Errorf("client %s: the variable %s named by secretEnv is unset", fc.ID, fc.SecretEnv)
		}
		if fc.Public || fc.TokenEndpointAuthMethod == clients.AuthPrivateKeyJWT {
			return fmt.Errorf("client %s: a public or private_key_jwt client has no secret (drop secretEnv)", fc.ID)
		}
	}
	cur, exists := a.existing[fc.ID]
	if exists && (cur.Owner != "" || cur.Registration != "") {
		// Apps registered by their developers are theirs, not the
		// operator's file's: apply neither exports, prunes nor changes them.
		return fmt.Errorf("client %s is the app %q registered by its developer: apply does not manage developers' apps; leave it out of the file", fc.ID, cur.Name)
	}
	if !exists {
		if _, err := a.clients.Check(ctx, spec); err != nil {
			return fmt.Errorf("client %s: %w", fc.ID, err)
		}
		spec.Secret = secret
		c, generated, err := a.clients.Create(ctx, spec)
		if err != nil {
			return fmt.Errorf("client %s: %w", fc.ID, err)
		}
		a.existing[c.ID] = c
		a.say("create", "client", c.ID, "create client "+c.ID)
		if generated != "" && secret == "" && !a.dryRun { // the dry run's client is rolled back: its secret is nobody's
			a.done[len(a.done)-1].ClientSecret = generated
		}
		return nil
	}
	if cur.Public != fc.Public {
		return fmt.Errorf("client %s: it cannot change between public and confidential; delete it first", fc.ID)
	}
	if spec.SubjectType == "" {
		spec.SubjectType = cur.SubjectType // left out: as it is (it cannot change)
	}
	checked, err := a.clients.Check(ctx, spec)
	if err != nil {
		return fmt.Errorf("client %s: %w", fc.ID, err)
	}
	checked.CreatedAt = cur.CreatedAt
	if !sameClient(cur, checked) {
		c, err := a.clients.Update(ctx, fc.ID, func(s *clients.Spec) { *s = spec })
		if err != nil {
			return fmt.Errorf("client %s: %w", fc.ID, err)
		}
		a.existing[fc.ID] = c
		a.say("update", "client", fc.ID, "update client "+fc.ID)
	}
	if secret != "" && !a.clients.SecretMatches(ctx, cur, secret) {
		if err := a.clients.SetSecret(ctx, fc.ID, secret); err != nil {
			return fmt.Errorf("client %s: %w", fc.ID, err)
		}
		a.say("set-secret", "client", fc.ID, "set the secret of client "+fc.ID+" from "+fc.SecretEnv)
	}
	return nil
}

// applyIntrospectors sets the introspectors and exchange-from clients that
// waited for their clients.
func (a *applier) applyIntrospectors(ctx context.Context) error {
	for _, fa := range a.want.APIs {
		cur, err := a.apis.Get(ctx, fa.ID)
		if err != nil {
			return err
		}
		if len(fa.Introspectors) > 0 && !slices.Equal(cur.Introspectors, fa.Introspectors) {
			intro := fa.Introspectors
			if _, err := a.apis.Update(ctx, fa.ID, apis.Update{Introspectors: &intro}); err != nil {
				return fmt.Errorf("API %s: %w", fa.ID, err)
			}
			// Its own line: a second change (and event) of the API.
			a.say("update", "api", fa.ID, "update API "+fa.ID+" (introspectors: clients this file created)")
		}
		if len(fa.ExchangeFrom) > 0 && !slices.Equal(cur.ExchangeFrom, fa.ExchangeFrom) {
			from := fa.ExchangeFrom
			if _, err := a.apis.Update(ctx, fa.ID, apis.Update{ExchangeFrom: &from}); err != nil {
				return fmt.Errorf("API %s: %w", fa.ID, err)
			}
			a.say("update", "api", fa.ID, "update API "+fa.ID+" (exchange-from: clients this file created)")
		}
	}
	return nil
}

// pruneAPIs deletes the APIs the file does not name (their clients went
// first).
func (a *applier) pruneAPIs(ctx context.Context) error {
	all, err := a.apis.List(ctx)
	if err != nil {
		return err
	}
	for _, api := range all {
		if api.ID == a.apis.Builtin().ID || slices.ContainsFunc(a.want.APIs, func(f fileAPI) bool { return f.ID == api.ID }) {
			continue
		}
		if err := a.apis.Delete(ctx, api.ID); err != nil {
			return fmt.Errorf("API %s: %w", api.ID, err)
		}
		a.say("delete", "api", api.ID, "delete API "+api.ID)
	}
	return nil
}
