package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func envFunc(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var listenRe = regexp.MustCompile(`"msg":"tonearm serving","listen":"([^"]+)"`)

// startServer runs "tonearm serve" and returns its base URL and a stop
// function that cancels it (as SIGTERM does) and returns run's error.
func startServer(t *testing.T, env map[string]string) (string, *lockedBuffer, func() error) {
	t.Helper()
	if env["TONEARM_LISTEN"] == "" {
		env["TONEARM_LISTEN"] = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, envFunc(env), strings.NewReader(""), io.Discard, logs) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := listenRe.FindStringSubmatch(logs.String()); m != nil {
			stop := func() error {
				cancel()
				select {
				case err := <-done:
					return err
				case <-time.After(30 * time.Second):
					t.Fatal("serve did not stop after cancel")
					return nil
				}
			}
			t.Cleanup(func() { cancel() })
			return "http://" + m[1], logs, stop
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func postJSON(t *testing.T, url string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestServeZeroConfigSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(dir, "tonearm.db")}
	base, logs, stop := startServer(t, env)
	status, body := postJSON(t, base+"/api/User/createUser", map[string]string{"username": "zoe", "password": "password-zoe"})
	if status != http.StatusOK || body["user"] == nil {
		t.Fatalf("createUser = %d %v", status, body)
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz = %v, %v", resp, err)
	}
	resp.Body.Close()
	if err := stop(); err != nil {
		t.Fatalf("graceful shutdown returned %v", err)
	}
	out := logs.String()
	for _, want := range []string{`"level":"WARN","msg":"development setup`, `"msg":"stopped"`, `"request_id":`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "password-zoe") {
		t.Fatal("the password reached the log")
	}
	// The secret file is reused: a restart opens the same data.
	secret, err := os.ReadFile(filepath.Join(dir, "tonearm.db.secret"))
	if err != nil {
		t.Fatal(err)
	}
	base, _, stop = startServer(t, env)
	status, _ = postJSON(t, base+"/api/User/startSession", map[string]string{"username": "zoe", "password": "password-zoe"})
	if status != http.StatusOK {
		t.Fatalf("after restart startSession = %d", status)
	}
	_ = stop()
	again, _ := os.ReadFile(filepath.Join(dir, "tonearm.db.secret"))
	if !bytes.Equal(secret, again) {
		t.Fatal("restart replaced the development secret")
	}
}

func TestServePostgres(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TONEARM_DATABASE_URL": pgtest.URL(t), "TONEARM_SECRET": strings.Repeat("s", 40)}
	base, logs, stop := startServer(t, env)
	status, body := postJSON(t, base+"/api/User/createUser", map[string]string{"username": "pat", "password": "password-pat"})
	if status != http.StatusOK {
		t.Fatalf("createUser on PostgreSQL = %d %v", status, body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "development setup") {
		t.Fatal("development warning with PostgreSQL and a secret")
	}
}

func TestStartupErrors(t *testing.T) {
	cases := []struct {
		env     map[string]string
		mention string
	}{
		{map[string]string{"TONEARM_DATABASE_URL": "postgres://u:pw@127.0.0.1:1/db"}, "TONEARM_SECRET is required"},
		{map[string]string{"TONEARM_DATABASE_URL": "postgres://u:hunter2hunter2@127.0.0.1:1/db?connect_timeout=2", "TONEARM_SECRET": strings.Repeat("s", 32)}, "TONEARM_DATABASE_URL"},
		{map[string]string{"TONEARM_DATABASE_URL": "oracle://x"}, "TONEARM_DATABASE_URL"},
	}
	for _, c := range cases {
		err := run(context.Background(), []string{"serve"}, envFunc(c.env), nil, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.mention) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("serve with %v: %v, want an error naming %s without the password", c.env, err, c.mention)
		}
	}
	if err := run(context.Background(), []string{"bogus"}, envFunc(nil), nil, io.Discard, io.Discard); err == nil {
		t.Error("unknown command accepted")
	}
}

func TestMigrateAndUsersCreate(t *testing.T) {
	t.Parallel()
	env := envFunc(map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "t.db")})
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate"}, env, nil, &out, io.Discard); err != nil || !strings.Contains(out.String(), "applied migrations [1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29]") {
		t.Fatalf("first migrate: %v %q", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"migrate"}, env, nil, &out, io.Discard); err != nil || !strings.Contains(out.String(), "up to date") {
		t.Fatalf("second migrate: %v %q", err, out.String())
	}

	out.Reset()
	err := run(context.Background(), []string{"users", "create", "--username", "root", "--password-stdin", "--role", "admin"},
		env, strings.NewReader("admin-password-1\n"), &out, io.Discard)
	id := strings.TrimSpace(out.String())
	if err != nil || len(id) != 36 {
		t.Fatalf("users create: %v, printed %q", err, id)
	}
	store, err := sqlstore.Open(context.Background(), env("TONEARM_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if u, err := store.GetUserByUsername(context.Background(), "root"); err != nil || u.ID != id || u.Role != "admin" {
		t.Fatalf("created user = %+v, %v; want role admin", u, err)
	}
	for _, c := range []struct {
		args  []string
		stdin string
	}{
		{[]string{"users", "create", "--username", "root2"}, "admin-password-1\n"},
		{[]string{"users", "create", "--password-stdin"}, "admin-password-1\n"},
		{[]string{"users", "create", "--username", "root2", "--password-stdin", "--role", "king"}, "admin-password-1\n"},
		{[]string{"users", "create", "--username", "root2", "--password-stdin"}, "short\n"},
		{[]string{"users", "create", "--username", "ROOT", "--password-stdin"}, "admin-password-1\n"},
	} {
		if err := run(context.Background(), c.args, env, strings.NewReader(c.stdin), io.Discard, io.Discard); err == nil {
			t.Errorf("%v accepted", c.args)
		}
	}
}

// tonearm apis create|list|delete, as an operator types them.
func TestAPIsCommand(t *testing.T) {
	t.Parallel()
	env := envFunc(map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "t.db")})
	ctx := context.Background()
	cmd := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, env, nil, &out, io.Discard)
		return out.String(), err
	}
	out, err := cmd("apis", "create", "--id", "https://api.example.org/listens", "--name", "Listens",
		"--scope", "listens:read=Read your listens", "--scope", "listens:write", "--claim", "role", "--json")
	var created map[string]any
	if err != nil || json.Unmarshal([]byte(out), &created) != nil || created["id"] != "https://api.example.org/listens" {
		t.Fatalf("apis create: %v %q", err, out)
	}
	if scopes := created["scopes"].([]any); len(scopes) != 2 || scopes[0].(map[string]any)["description"] != "Read your listens" {
		t.Fatalf("created scopes = %v", scopes)
	}
	if _, err := cmd("apis", "create", "--id", "https://other.example", "--scope", "listens:read"); err == nil || !strings.Contains(err.Error(), "https://api.example.org/listens") {
		t.Fatalf("a scope defined twice: %v", err)
	}
	if _, err := cmd("clients", "create", "--id", "machine", "--grant-type", "client_credentials", "--scope", "listens:read"); err != nil {
		t.Fatalf("a client with the API's scope: %v", err)
	}
	if _, err := cmd("clients", "create", "--id", "machine2", "--grant-type", "client_credentials", "--scope", "api:read"); err == nil || !strings.Contains(err.Error(), "tonearm apis create") {
		t.Fatalf("a client with an undefined scope: %v", err)
	}
	out, err = cmd("apis", "list")
	if err != nil || !strings.Contains(out, "https://api.example.org/listens") || !strings.Contains(out, "listens:read listens:write") || !strings.Contains(out, "/api") {
		t.Fatalf("apis list: %v\n%s", err, out)
	}
	if _, err := cmd("apis", "delete", "https://api.example.org/listens"); err == nil || !strings.Contains(err.Error(), "machine") {
		t.Fatalf("deleting an API a client uses: %v", err)
	}
	// update changes only what it is given; an introspector must be a client.
	if _, err := cmd("apis", "update", "https://api.example.org/listens", "--introspector", "nobody"); err == nil || !strings.Contains(err.Error(), "not a registered client") {
		t.Fatalf("an unknown introspector: %v", err)
	}
	out, err = cmd("apis", "update", "https://api.example.org/listens", "--introspector", "machine", "--json")
	var updated map[string]any
	if err != nil || json.Unmarshal([]byte(out), &updated) != nil || fmt.Sprint(updated["introspectors"]) != "[machine]" || updated["name"] != "Listens" ||
		len(updated["scopes"].([]any)) != 2 || fmt.Sprint(updated["claims"]) != "[role]" {
		t.Fatalf("apis update --introspector: %v %q", err, out)
	}
	if _, err := cmd("apis", "update", "https://api.example.org/listens", "--scope", "listens:write"); err == nil || !strings.Contains(err.Error(), "machine") {
		t.Fatalf("dropping a scope a client holds: %v", err)
	}
	if _, err := cmd("apis", "delete"); err == nil || !strings.Contains(err.Error(), "usage: tonearm apis delete URI") {
		t.Fatalf("apis delete without an identifier: %v", err)
	}
	if _, err := cmd("clients", "delete", "--id", "machine"); err != nil {
		t.Fatalf("clients delete --id: %v", err)
	}
	if out, err := cmd("apis", "delete", "https://api.example.org/listens"); err != nil || !strings.Contains(out, "deleted API") {
		t.Fatalf("apis delete: %v %q", err, out)
	}
	if _, err := cmd("keys", "rotate"); err != nil {
		t.Fatal(err)
	}
	// What the operator did is on record, by "cli".
	store, err := sqlstore.Open(ctx, env("TONEARM_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	events, err := store.ListEvents(ctx, storage.EventFilter{Limit: 20})
	var types []string
	for _, e := range events {
		if e.Actor != "cli" {
			t.Errorf("event %s by %q, want cli", e.Type, e.Actor)
		}
		types = append(types, e.Type)
	}
	if err != nil || strings.Join(types, " ") != "keys.rotated api.deleted client.deleted api.changed client.created api.created" {
		t.Fatalf("events = %v, %v", types, err)
	}
}

// On SIGTERM /readyz answers 503 while requests are still served, so a load
// balancer takes the replica out before it stops.
func TestServeGoesUnreadyBeforeDraining(t *testing.T) {
	env := map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "t.db")}
	base, _, stop := startServer(t, env)
	ready := func() int {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := ready(); st != http.StatusOK {
		t.Fatalf("/readyz = %d before stopping", st)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	sawDraining := false
	for i := 0; i < 200 && !sawDraining; i++ {
		sawDraining = ready() == http.StatusServiceUnavailable
		time.Sleep(10 * time.Millisecond)
	}
	if !sawDraining {
		t.Fatal("/readyz never answered 503 while the server was draining")
	}
	if resp, err := http.Get(base + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("requests were refused during the drain: %v", err)
	} else {
		resp.Body.Close()
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}
