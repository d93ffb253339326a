package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Outside report A, item 5: a flag that takes a value, followed by another
// flag of the command, is a usage error (exit 2) naming the flag: it does
// not take the next flag as its value.
func TestRound4CLIFlagWithoutItsValue(t *testing.T) {
	env := migratedEnv(t)
	if _, _, _, err := cliRun(t, env, "clients", "create", "--id", "my-app", "--redirect-uri", "https://app.example/cb"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"users", "create", "--username", "--json", "--password-stdin"}, "--username"},
		{[]string{"clients", "update", "my-app", "--name", "--json"}, "--name"},
		{[]string{"clients", "update", "my-app", "-name", "-json"}, "--name"},
		{[]string{"apply", "-f", "--dry-run"}, "-f"},
		// Found from outside: -h, --help and "--" are not values either.
		{[]string{"users", "create", "--username", "--help", "--password-stdin"}, "--username"},
		{[]string{"users", "create", "--username", "-h", "--password-stdin"}, "--username"},
		{[]string{"clients", "update", "my-app", "--name", "--", "--json"}, "--name"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), c.args, env, strings.NewReader("a-long-password-1\n"), &out, &errOut)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), "flag "+c.flag+" needs a value") {
			t.Errorf("%v: %v (exit %d), printed %q; want exit 2, \"flag %s needs a value\"", c.args, err, exitCode(err), out.String(), c.flag)
		}
	}
	if out, _, _, _ := cliRun(t, env, "users", "list"); strings.Contains(out, "--json") {
		t.Fatalf("a user named --json was created:\n%s", out)
	}
	if out, _, _, _ := cliRun(t, env, "clients", "list", "--json"); strings.Contains(out, `"client_name":"--json"`) {
		t.Fatalf("a client was named --json:\n%s", out)
	}
	// A value starting with "-" that names no flag is a value; --name=--json says it is meant.
	for _, name := range []string{"-x-", "--json"} {
		arg := []string{"--name", name}
		if name == "--json" {
			arg = []string{"--name=--json"}
		}
		out, _, _, err := cliRun(t, env, append([]string{"clients", "update", "my-app", "--json"}, arg...)...)
		if err != nil || !strings.Contains(out, `"client_name":"`+name+`"`) {
			t.Fatalf("clients update --name %s: %v %q", name, err, out)
		}
	}
}

// Outside report A, doc point: -h is the answer (standard output, exit 0)
// for a command as for its group.
func TestRound4CLIHelpOnStandardOutput(t *testing.T) {
	for _, args := range [][]string{{"clients", "-h"}, {"clients", "list", "-h"}, {"users", "create", "-h"}, {"version", "-h"}, {"migrate", "-h"}} {
		stdout, stderr, code, err := cliRun(t, envFunc(nil), args...)
		if !errors.Is(err, flag.ErrHelp) || code != 0 || !strings.Contains(stdout, "usage: tonearm") || stderr != "" {
			t.Errorf("%v: %v (exit %d), stdout %q, stderr %q; want the help on standard output, exit 0", args, err, code, stdout, stderr)
		}
	}
}

// Outside report A, doc point: a SQLite file named in TONEARM_DATABASE_URL
// or --database-url, even with the default's name, is created by any
// command (only the default, unnamed, is refused when missing).
func TestRound4CLINamedSQLiteFileIsCreated(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	named := envFunc(map[string]string{"TONEARM_DATABASE_URL": "sqlite://tonearm.db"})
	if _, _, code, err := cliRun(t, named, "keys", "list"); err != nil || code != 0 {
		t.Fatalf("TONEARM_DATABASE_URL=sqlite://tonearm.db tonearm keys list: %v (exit %d); want the named file created", err, code)
	}
	if _, err := os.Stat(filepath.Join(dir, "tonearm.db")); err != nil {
		t.Fatalf("the named database: %v", err)
	}
	other := t.TempDir()
	t.Chdir(other)
	if _, _, code, err := cliRun(t, envFunc(nil), "clients", "list", "--database-url", "sqlite://tonearm.db"); err != nil || code != 0 {
		t.Fatalf("clients list --database-url sqlite://tonearm.db: %v (exit %d)", err, code)
	}
}

// Outside report A, doc point: version --json has every key the docs list,
// empty when the build does not know it.
func TestRound4CLIVersionJSONHasEveryKey(t *testing.T) {
	out, _, _, err := cliRun(t, envFunc(nil), "version", "--json")
	var v map[string]any
	if err != nil || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("version --json: %v %q", err, out)
	}
	for _, k := range []string{"version", "commit", "time", "modified", "goVersion"} {
		if _, ok := v[k]; !ok {
			t.Errorf("version --json has no %q: %s", k, out)
		}
	}
}

// Outside report A, doc point: the CLI's client JSON says
// backchannel_logout_session_required with a back-channel URI, as RFC
// 7591 registration does (Back-Channel Logout 1.0 §2.2).
func TestRound4CLIBackchannelSessionRequired(t *testing.T) {
	env := migratedEnv(t)
	out, _, _, err := cliRun(t, env, "clients", "create", "--id", "bcl", "--redirect-uri", "https://bcl.example/cb", "--backchannel-logout-uri", "https://bcl.example/logout", "--json")
	var c map[string]any
	if err != nil || json.Unmarshal([]byte(out), &c) != nil || c["backchannel_logout_session_required"] != true {
		t.Fatalf("clients create --backchannel-logout-uri --json: %v %q; want backchannel_logout_session_required: true", err, out)
	}
	out, _, _, _ = cliRun(t, env, "clients", "list", "--json")
	if !strings.Contains(out, `"backchannel_logout_session_required":true`) {
		t.Fatalf("clients list --json: %q", out)
	}
}
