package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
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
