package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// applyServer is a server on dbURL and the environment of the command
// line on the same database.
func applyServer(t *testing.T, dbURL string) (*server, func(string) string) {
	t.Helper()
	s := startE2E(t, dbURL, options{})
	return s, envFunc(map[string]string{"TONEARM_DATABASE_URL": dbURL, "TONEARM_SECRET": e2eSecret})
}

// eventCount is how many audit events are on record.
func eventCount(t *testing.T, s *server) int {
	t.Helper()
	evs, err := s.app.store.ListEvents(context.Background(), storage.EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// Outside report A, items 1 and 2: apply is all or nothing. A refused
// item leaves nothing changed (not the items before it, not an API whose
// introspectors waited for it), prints no line for anything, and the
// lines of a run that succeeds are the changes made, one per event.
func TestRound4ApplyWholeOrNothing(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s, env := applyServer(t, dbURL)
		api := "apis:\n  - id: https://api.example.org/rs7\n    scopes: [{name: rs7:read}]\n    introspectors: [rs7-intro]\n"
		bad := api + "clients:\n  - id: rs7-intro\n    grantTypes: [client_credentials]\n    scope: rs7:read nosuch:scope\n"
		events := eventCount(t, s)
		for _, mode := range [][]string{{"--dry-run"}, nil} {
			out, code, err := applyFile(t, env, bad, mode...)
			if err == nil || code != 1 || out != "" || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("apply %v of a file with a refused client: %v (exit %d), printed %q; want exit 1, nothing printed", mode, err, code, out)
			}
			if exp := exportOf(t, env); strings.Contains(exp, "rs7") {
				t.Fatalf("apply %v of a refused file stored its API:\n%s", mode, exp)
			}
			if n := eventCount(t, s); n != events {
				t.Fatalf("apply %v of a refused file recorded %d events", mode, n-events)
			}
		}
		good := api + "clients:\n  - id: rs7-intro\n    grantTypes: [client_credentials]\n    scope: rs7:read\n"
		out, _, err := applyFile(t, env, good)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var changes []string
		for _, l := range lines {
			if !strings.HasPrefix(l, "  client_secret of ") {
				changes = append(changes, l)
			}
		}
		if len(changes) != 3 || !strings.HasPrefix(changes[2], "update API https://api.example.org/rs7") {
			t.Fatalf("apply printed\n%s\nwant the API's create, the client's create and the API's update (its introspector)", out)
		}
		if n := eventCount(t, s) - events; n != len(changes) {
			t.Fatalf("apply printed %d changes and recorded %d events", len(changes), n)
		}
		if got, _ := s.app.apis.Get(context.Background(), "https://api.example.org/rs7"); strings.Join(got.Introspectors, ",") != "rs7-intro" {
			t.Fatalf("introspectors %v", got.Introspectors)
		}

		// An update before a refused item is undone, and not printed.
		events = eventCount(t, s)
		before := exportOf(t, env)
		renamed := strings.Replace(good, "rs7:read}]", "rs7:read, description: Read}]", 1) +
			"  - id: later\n    grantTypes: [client_credentials]\n    scope: nosuch:scope\n"
		if out, code, err := applyFile(t, env, renamed); err == nil || code != 1 || out != "" {
			t.Fatalf("apply of an update then a refused client: %v (exit %d), printed %q", err, code, out)
		}
		if after := exportOf(t, env); after != before || eventCount(t, s) != events {
			t.Fatalf("a refused file changed the state:\n%s\nwas\n%s", after, before)
		}
	})
}

// Outside report A, item 2: a file dropping a scope from a client and
// from its API applies in one run, whichever order the file lists them.
func TestRound4ApplyDropsAScopeInOneRun(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		_, env := applyServer(t, dbURL)
		start := "clients:\n  - id: c\n    grantTypes: [client_credentials]\n    scope: m:read m:write\n" +
			"apis:\n  - id: https://api.example.org/music\n    scopes: [{name: m:read}, {name: m:write}]\n"
		if _, _, err := applyFile(t, env, start); err != nil {
			t.Fatal(err)
		}
		drop := strings.Replace(strings.Replace(start, "m:read m:write", "m:read", 1), ", {name: m:write}", "", 1)
		for _, mode := range [][]string{{"--dry-run"}, nil} {
			out, code, err := applyFile(t, env, drop, mode...)
			if err != nil || code != 0 || !strings.Contains(out, "update client c") || !strings.Contains(out, "update API https://api.example.org/music") {
				t.Fatalf("apply %v dropping a scope from a client and its API: %v (exit %d)\n%s", mode, err, code, out)
			}
		}
		if exp := exportOf(t, env); strings.Contains(exp, "m:write") {
			t.Fatalf("the scope is still there:\n%s", exp)
		}
	})
}

// Outside report A, item 3: an app registered by its developer is theirs:
// apply refuses a file naming it (both modes), naming the app, and
// changes nothing.
func TestRound4ApplyLeavesDevelopersAppsAlone(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dbURL string) {
		s, env := applyServer(t, dbURL)
		dev := s.user("dev")
		app, err := s.app.clients.RegisterApp(context.Background(), clients.AppSpec{Type: clients.AppWeb, RedirectURIs: []string{"https://dev.example/cb"},
			Display: clients.Display{Name: "Dev's scrobbler"}}, dev.ID, storage.RegisteredByDeveloper)
		if err != nil {
			t.Fatal(err)
		}
		file := "clients:\n  - id: " + app.Client.ID + "\n    redirectUris: [https://evil.example/cb]\n"
		for _, mode := range [][]string{{"--dry-run"}, nil} {
			out, code, err := applyFile(t, env, file, mode...)
			if err == nil || code != 1 || out != "" || !strings.Contains(err.Error(), app.Client.ID) || !strings.Contains(err.Error(), "Dev's scrobbler") {
				t.Fatalf("apply %v naming a developer's app: %v (exit %d), printed %q; want exit 1 naming the app", mode, err, code, out)
			}
		}
		if got, _ := s.app.clients.Get(context.Background(), app.Client.ID); strings.Join(got.RedirectURIs, " ") != "https://dev.example/cb" {
			t.Fatalf("the developer's app now redirects to %v", got.RedirectURIs)
		}
	})
}

// Outside report A, item 4: apply and migrate take --json.
func TestRound4ApplyAndMigrateJSON(t *testing.T) {
	env := migratedEnv(t)
	out, _, code, err := cliRun(t, env, "migrate", "--json")
	var migrated struct {
		Applied []int `json:"applied"`
	}
	if err != nil || code != 0 || json.Unmarshal([]byte(out), &migrated) != nil || migrated.Applied == nil {
		t.Fatalf("migrate --json: %v (exit %d) %q; want {\"applied\": []}", err, code, out)
	}
	file := "clients:\n  - id: j\n    grantTypes: [client_credentials]\n    scope: openid\n"
	for i, mode := range [][]string{{"--dry-run"}, nil, nil} {
		out, code, err := applyFile(t, env, file, append(mode, "--json")...)
		var got struct {
			DryRun  bool `json:"dryRun"`
			Changes []struct {
				Action, Kind, ID string
				Secret           string `json:"client_secret"`
			} `json:"changes"`
		}
		if err != nil || code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Changes == nil || got.DryRun != (mode != nil) {
			t.Fatalf("apply %v --json: %v (exit %d) %q", mode, err, code, out)
		}
		if want := []int{1, 1, 0}[i]; len(got.Changes) != want {
			t.Fatalf("apply %v --json, run %d: %q, want %d changes", mode, i, out, want)
		}
		if len(got.Changes) == 1 {
			c := got.Changes[0]
			if c.Action != "create" || c.Kind != "client" || c.ID != "j" || (c.Secret == "") != (mode != nil) {
				t.Fatalf("apply %v --json: %q", mode, out)
			}
		}
	}
}
