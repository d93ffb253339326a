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
// steps: prune the clients, the APIs, the clients, the introspectors that
// waited for their clients, prune the APIs.
type applier struct {
	*services
	in     *input
	want   desired
	dryRun bool
	// changes counts what was (or, in a dry run, would be) changed.
	changes int
	// existing are the registered clients as the steps change them.
	existing map[string]storage.Client
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
	for _, fa := range a.want.APIs {
		if err := a.applyAPI(ctx, fa); err != nil {
			return err
		}
	}
	for _, fc := range a.want.Clients {
		if err := a.applyClient(ctx, fc); err != nil {
			return err
		}
	}
	if err := a.applyIntrospectors(ctx); err != nil {
		return err
	}
	if prune {
		if err := a.pruneAPIs(ctx); err != nil {
			return err
		}
	}
	if a.changes == 0 {
		fmt.Fprintln(a.in.stdout, "nothing to change")
	}
	return nil
}

// say prints a change ("would …" in a dry run).
func (a *applier) say(format string, args ...any) {
	a.changes++
	prefix := ""
	if a.dryRun {
		prefix = "would "
	}
	fmt.Fprintf(a.in.stdout, prefix+format+"\n", args...)
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
			a.say("delete client %s", c.ID)
			delete(a.existing, c.ID)
			if err := a.clients.Delete(ctx, c.ID); err != nil {
				return fmt.Errorf("client %s: %w", c.ID, err)
			}
		}
	}
	return nil
}

// applyAPI creates or updates an API of the file, before the clients (they
// may hold its scopes); introspectors that are clients of this file not
// yet created wait for applyIntrospectors.
func (a *applier) applyAPI(ctx context.Context, fa fileAPI) error {
	spec := fa.spec()
	for _, id := range spec.Introspectors {
		if !a.knownClient(id) {
			return fmt.Errorf("API %s: introspector %q is neither a registered client nor in the file", fa.ID, id)
		}
	}
	now := spec
	now.Introspectors = slices.DeleteFunc(slices.Clone(spec.Introspectors), func(id string) bool { _, ok := a.existing[id]; return !ok })
	cur, err := a.apis.Get(ctx, fa.ID)
	switch {
	case errors.Is(err, apis.ErrNotFound):
		if _, err := a.apis.Check(ctx, now); err != nil { // introspectors created later by this file are set by applyIntrospectors
			return fmt.Errorf("API %s: %w", fa.ID, err)
		}
		a.say("create API %s", fa.ID)
		if _, err := a.apis.Create(ctx, now); err != nil {
			return fmt.Errorf("API %s: %w", fa.ID, err)
		}
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
	if sameAPI(cur, full) {
		return nil
	}
	a.say("update API %s", fa.ID)
	if _, err := a.apis.Update(ctx, fa.ID, apis.Update{Name: &now.Name, Scopes: &checked.Scopes, Claims: &checked.Claims, Introspectors: &checked.Introspectors,
		OpenToApps: &now.OpenToApps}); err != nil {
		return fmt.Errorf("API %s: %w", fa.ID, err)
	}
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
		if fc.Public {
			return fmt.Errorf("client %s: a public client has no secret (drop secretEnv)", fc.ID)
		}
	}
	cur, exists := a.existing[fc.ID]
	if !exists {
		if _, err := a.clients.Check(ctx, spec); err != nil {
			return fmt.Errorf("client %s: %w", fc.ID, err)
		}
		a.say("create client %s", fc.ID)
		spec.Secret = secret
		c, generated, err := a.clients.Create(ctx, spec)
		if err != nil {
			return fmt.Errorf("client %s: %w", fc.ID, err)
		}
		a.existing[c.ID] = c
		if generated != "" && secret == "" && !a.dryRun { // the dry run's client is rolled back: its secret is nobody's
			fmt.Fprintf(a.in.stdout, "  client_secret of %s: %s (shown once; put it in a variable and name it with secretEnv)\n", c.ID, generated)
		}
		return nil
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
		a.say("update client %s", fc.ID)
		if _, err := a.clients.Update(ctx, fc.ID, func(s *clients.Spec) { *s = spec }); err != nil {
			return fmt.Errorf("client %s: %w", fc.ID, err)
		}
	}
	if secret != "" && !a.clients.SecretMatches(ctx, cur, secret) {
		a.say("set the secret of client %s from %s", fc.ID, fc.SecretEnv)
		if err := a.clients.SetSecret(ctx, fc.ID, secret); err != nil {
			return fmt.Errorf("client %s: %w", fc.ID, err)
		}
	}
	return nil
}

// applyIntrospectors sets the introspectors that waited for their clients.
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
		a.say("delete API %s", api.ID)
		if err := a.apis.Delete(ctx, api.ID); err != nil {
			return fmt.Errorf("API %s: %w", api.ID, err)
		}
	}
	return nil
}
