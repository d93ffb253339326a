package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The map cannot fall behind the code: every package directory under
// cmd/, web/, provider/ and storage/ is named (in backquotes) in
// docs/architecture.md, and README.md links to it, so a new package
// arrives with its line in the map.
func TestArchitectureMapNamesEveryPackage(t *testing.T) {
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "(docs/architecture.md)") {
		t.Error("README.md does not link docs/architecture.md")
	}
	packages := map[string]bool{}
	for _, top := range []string{"cmd", "web", "provider", "storage"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") {
				return nil
			}
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			packages[filepath.ToSlash(rel)] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(packages) < 20 {
		t.Fatalf("found only %d package directories: the walk looked in the wrong place", len(packages))
	}
	for dir := range packages {
		if !strings.Contains(string(doc), "`"+dir+"`") {
			t.Errorf("docs/architecture.md does not name the package `%s`", dir)
		}
	}
}
