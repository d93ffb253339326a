package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/config"
)

// The reference cannot drift: every configuration variable and every
// subcommand the binary knows is in docs/configuration.md, and every
// relative link in README.md and docs/ leads to a file that exists.
func TestDocsReference(t *testing.T) {
	root := filepath.Join("..", "..")
	ref, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Variables() {
		if !strings.Contains(string(ref), v) {
			t.Errorf("docs/configuration.md does not describe %s", v)
		}
	}
	for _, line := range strings.Split(usage, "\n") {
		if !strings.HasPrefix(line, "  tonearm ") {
			continue // the title and the notes
		}
		synopsis := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), 2)[0] // then the description
		f := strings.Fields(synopsis)
		subs := []string{""}
		if len(f) > 2 && !strings.HasPrefix(f[2], "[") && !strings.HasPrefix(f[2], "-") && strings.ToLower(f[2]) == f[2] {
			subs = strings.Split(f[2], "|")
		}
		for _, sub := range subs {
			cmd := strings.TrimSpace("tonearm " + f[1] + " " + sub)
			if !strings.Contains(string(ref), "`"+cmd) {
				t.Errorf("docs/configuration.md does not describe %q", cmd)
			}
		}
	}
	link := regexp.MustCompile(`\]\(([^)#:]+)(#[^)]*)?\)`)
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"))
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(body), -1) {
			if _, err := os.Stat(filepath.Join(filepath.Dir(file), m[1])); err != nil {
				t.Errorf("%s links to %s, which does not exist", file, m[1])
			}
		}
	}
}
