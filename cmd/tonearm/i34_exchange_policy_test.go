package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/storage"
)

// An API's exchange policy (the clients that may exchange a person's token
// for a token to it): tonearm apis create|update|show --exchange-from,
// apply and export, the console's API form; only registered clients; a
// change that touches only the policy is stored and audited.
func TestExchangePolicyCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startE2E(t, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), options{})
	env := envFunc(map[string]string{"TONEARM_DATABASE_URL": s.cfg.DatabaseURL, "TONEARM_SECRET": string(s.cfg.Secret), "TONEARM_ISSUER": s.issuer})
	cmd := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, env, strings.NewReader(""), &out, io.Discard)
		return out.String(), err
	}
	exchangeFrom := func(out string) []string {
		t.Helper()
		var api struct {
			ExchangeFrom []string `json:"exchangeFrom"`
		}
		if err := json.Unmarshal([]byte(out), &api); err != nil || api.ExchangeFrom == nil {
			t.Fatalf("no exchangeFrom in %q: %v", out, err)
		}
		return api.ExchangeFrom
	}
	cc := []string{"client_credentials"}
	s.client(clients.Spec{ID: "svc-a", GrantTypes: cc})
	s.client(clients.Spec{ID: "svc-b", GrantTypes: cc})
	const api = "https://x.example/api"

	if _, err := cmd("apis", "create", "--id", api, "--scope", "x:read", "--exchange-from", "nobody"); err == nil || !strings.Contains(err.Error(), `exchange-from client "nobody" is not a registered client`) {
		t.Fatalf("an unknown client: %v", err)
	}
	out, err := cmd("apis", "create", "--id", api, "--scope", "x:read", "--exchange-from", "svc-a,svc-b", "--json")
	if err != nil || !slices.Equal(exchangeFrom(out), []string{"svc-a", "svc-b"}) {
		t.Fatalf("apis create --exchange-from a comma list: %q %v", out, err)
	}
	// Only the policy changes: stored, and recorded as that field.
	out, err = cmd("apis", "update", api, "--exchange-from", "svc-b", "--json")
	if err != nil || !slices.Equal(exchangeFrom(out), []string{"svc-b"}) {
		t.Fatalf("apis update --exchange-from: %q %v", out, err)
	}
	if stored, err := s.app.store.GetAPI(ctx, api); err != nil || !slices.Equal(stored.ExchangeFrom, []string{"svc-b"}) {
		t.Fatalf("stored after update: %+v %v", stored, err)
	}
	events, err := s.app.store.ListEvents(ctx, storage.EventFilter{Type: audit.APIChanged, Limit: 5})
	if err != nil || len(events) != 1 || !strings.Contains(string(events[0].Detail), `"fields":["exchangeFrom"]`) {
		t.Fatalf("api.changed events: %+v %v", events, err)
	}
	if out, err := cmd("apis", "show", api); err != nil || !strings.Contains(out, "exchange_from:  svc-b\n") {
		t.Fatalf("apis show: %q %v", out, err)
	}
	if out, err := cmd("apis", "show", api, "--json"); err != nil || !slices.Equal(exchangeFrom(out), []string{"svc-b"}) {
		t.Fatalf("apis show --json: %q %v", out, err)
	}
	if out, err := cmd("apis", "list", "--json"); err != nil || !strings.Contains(out, `"exchangeFrom":["svc-b"]`) {
		t.Fatalf("apis list --json: %q %v", out, err)
	}

	// export prints it; apply sets it, with a client the file creates.
	exported, err := cmd("export")
	if err != nil || !strings.Contains(exported, "exchangeFrom:") || !strings.Contains(exported, "- svc-b") {
		t.Fatalf("export: %q %v", exported, err)
	}
	file := filepath.Join(t.TempDir(), "tonearm.yaml")
	yaml := `apis:
  - id: ` + api + `
    scopes:
      - name: x:read
    exchangeFrom: [svc-a, svc-new]
clients:
  - id: svc-a
    grantTypes: [client_credentials]
  - id: svc-b
    grantTypes: [client_credentials]
  - id: svc-new
    grantTypes: [client_credentials]
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := cmd("apply", "-f", file); err != nil || !strings.Contains(out, "exchange-from") {
		t.Fatalf("apply: %q %v", out, err)
	}
	if stored, err := s.app.store.GetAPI(ctx, api); err != nil || !slices.Equal(stored.ExchangeFrom, []string{"svc-a", "svc-new"}) {
		t.Fatalf("stored after apply: %+v %v", stored, err)
	}
	if out, err := cmd("apply", "-f", file); err != nil || strings.Contains(out, "update API") {
		t.Fatalf("a second apply changed the API: %q %v", out, err)
	}
	if out, err := cmd("apis", "update", api, "--exchange-from", "", "--json"); err != nil || len(exchangeFrom(out)) != 0 {
		t.Fatalf("apis update --exchange-from '': %q %v", out, err)
	}

	// The console's form.
	if _, err := s.app.accounts.Create(ctx, accounts.NewUser{Username: "boss", Password: e2ePassword, Role: storage.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	c := s.browser()
	s.signInPage(t, c, "boss")
	page := get(t, c, s.issuer+"/admin/apis")
	saved := submit(t, c, accountForm(t, page, "/admin/apis/update"), map[string]string{"scopes": "x:read=", "exchange_from": "svc-b\nsvc-new\n"})
	if saved.status != 200 || !strings.Contains(saved.body, "<code>svc-b</code>, <code>svc-new</code>") {
		t.Fatalf("console update: %d\n%s", saved.status, saved.body)
	}
	if stored, err := s.app.store.GetAPI(ctx, api); err != nil || !slices.Equal(stored.ExchangeFrom, []string{"svc-b", "svc-new"}) {
		t.Fatalf("stored after the console: %+v %v", stored, err)
	}
	if bad := submit(t, c, accountForm(t, saved, "/admin/apis/update"), map[string]string{"scopes": "x:read=", "exchange_from": "ghost"}); bad.status != 400 || !strings.Contains(bad.body, "ghost") {
		t.Fatalf("console with an unknown client: %d", bad.status)
	}
}
