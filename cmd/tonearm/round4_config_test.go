package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/templates"
)

// TONEARM_THEME_DIR is checked when the configuration loads (config only
// knows the folder) and read when the pages are built: the served
// stylesheet is the folder's, the logo the built-in one it left alone.
func TestConfigThemeDirServed(t *testing.T) {
	dir := t.TempDir()
	const css = "body{color:#123456}"
	if err := os.WriteFile(filepath.Join(dir, "style.css"), []byte(css), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startE2EConfig(t, sqliteURL(t), options{}, func(c *config.Config) { c.ThemeDir = dir })
	get := func(name string) string {
		t.Helper()
		resp, err := http.Get(s.issuer + templates.StaticPath + name)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", name, resp.Status)
		}
		return string(b)
	}
	if got := get("style.css"); got != css {
		t.Fatalf("style.css = %.60q, want the theme folder's", got)
	}
	if got := get("logo.svg"); got != string(templates.DefaultTheme().Logo) {
		t.Fatalf("logo.svg = %.60q, want the built-in one", got)
	}
}

// TONEARM_PPROF_LISTEN is in the settings table: a value that is not
// host:port stops serve when the configuration loads, with a message that
// says what is wanted (it used to reach net.Listen and come back as the
// kernel's "missing port in address"), before any port is held or the
// development secret is stored.
func TestConfigPprofListenCheckedAtLoad(t *testing.T) {
	dir := t.TempDir()
	env := envFunc(map[string]string{
		"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(dir, "t.db"),
		"TONEARM_LISTEN":       "127.0.0.1:0",
		"TONEARM_PPROF_LISTEN": "6060",
	})
	err := run(context.Background(), []string{"serve"}, env, nil, io.Discard, io.Discard)
	if err == nil || err.Error() != "TONEARM_PPROF_LISTEN must be host:port, for example 127.0.0.1:6060" {
		t.Fatalf("serve with TONEARM_PPROF_LISTEN=6060: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "t.db.secret")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused start stored the development secret: %v", err)
	}
}

// tonearm health reads TONEARM_LISTEN, and its default, from the settings
// table: it finds a server from the variable alone, and without it names
// the default listen address.
func TestConfigHealthListen(t *testing.T) {
	s := startE2E(t, sqliteURL(t), options{})
	var out bytes.Buffer
	env := envFunc(map[string]string{"TONEARM_LISTEN": s.srv.Listener.Addr().String()})
	if err := run(context.Background(), []string{"health"}, env, nil, &out, io.Discard); err != nil || strings.TrimSpace(out.String()) != "ready" {
		t.Fatalf("health from TONEARM_LISTEN: %v %q", err, out.String())
	}
	err := run(context.Background(), []string{"health", "--url", "ftp://x"}, envFunc(nil), nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "http://"+config.DefaultListen+readyzPath) {
		t.Fatalf("health without TONEARM_LISTEN: %v", err)
	}
}
