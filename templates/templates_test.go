package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/locale"
)

func TestParse(t *testing.T) {
	cats, err := locale.Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	sets, err := Parse(Options{SiteName: "Groove <ID>", Base: "/idp", Theme: DefaultTheme()}, cats)
	if err != nil {
		t.Fatal(err)
	}
	tpl := sets["en"]
	var b strings.Builder
	// A value in a message (a name someone typed) is escaped like any other.
	err = tpl.ExecuteTemplate(&b, "error.html", struct {
		Title   string
		Message locale.Message
		Detail  string
	}{"Sign in", locale.MF("Welcome, {{.Username}}", "Username", `<script>alert(1)</script>`), ""})
	if err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if strings.Contains(page, "<script>") {
		t.Fatal("page content is not escaped")
	}
	if !strings.Contains(page, "Sign in · Groove &lt;ID&gt;</title>") || !strings.Contains(page, `href="/idp/static/style.css?v=`) {
		t.Fatalf("the site name and stylesheet are not in the page:\n%s", page)
	}
}

func TestLoadTheme(t *testing.T) {
	if th, err := LoadTheme(""); err != nil || string(th.CSS) != string(DefaultTheme().CSS) {
		t.Fatalf("no folder: %v", err)
	}
	dir := t.TempDir()
	if _, err := LoadTheme(dir); err == nil || !strings.Contains(err.Error(), "neither style.css, logo.svg nor locales/") {
		t.Fatalf("empty folder: %v", err)
	}
	// A theme may change words only (issue 35): a folder with locales/ alone.
	words := t.TempDir()
	if err := os.Mkdir(filepath.Join(words, "locales"), 0o755); err != nil {
		t.Fatal(err)
	}
	if th, err := LoadTheme(words); err != nil || string(th.CSS) != string(DefaultTheme().CSS) {
		t.Fatalf("locales/ only: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "style.css"), []byte("body{color:red}"), 0o644); err != nil {
		t.Fatal(err)
	}
	th, err := LoadTheme(dir)
	if err != nil || string(th.CSS) != "body{color:red}" || string(th.Logo) != string(DefaultTheme().Logo) {
		t.Fatalf("style.css only: %q, %v", th.CSS, err)
	}
	if _, err := LoadTheme(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("missing folder: %v", err)
	}
	if os.Getuid() != 0 { // root reads anything
		if err := os.Chmod(filepath.Join(dir, "style.css"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadTheme(dir); err == nil || !strings.Contains(err.Error(), "cannot read style.css") {
			t.Fatalf("unreadable file: %v", err)
		}
	}
}
