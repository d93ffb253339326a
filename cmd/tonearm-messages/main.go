// Command tonearm-messages regenerates the English catalog,
// locale/catalogs/en.json, from the templates and the Go code (`make
// messages`), and drops from the other catalogs the messages no longer
// used. It prints how many messages each language still lacks.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tonearm-idp/tonearm/locale/extract"
)

func main() {
	if err := run("."); err != nil {
		fmt.Fprintln(os.Stderr, "tonearm-messages:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	found, err := extract.Dir(root)
	if err != nil {
		return err
	}
	dir := filepath.Join(root, "locale", "catalogs")
	en := filepath.Join(dir, "en.json")
	old, err := readRaw(en)
	if err != nil {
		return err
	}
	out, err := extract.Catalog(found, old)
	if err != nil {
		return err
	}
	if err := os.WriteFile(en, out, 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: %d messages\n", en, len(found))
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	sort.Strings(files)
	for _, f := range files {
		if f == en {
			continue
		}
		cat, err := readRaw(f)
		if err != nil {
			return err
		}
		for id := range cat {
			if _, ok := found[id]; !ok {
				delete(cat, id)
			}
		}
		b, err := extract.Encode(cat)
		if err != nil {
			return err
		}
		if err := os.WriteFile(f, b, 0o644); err != nil {
			return err
		}
		missing := 0
		for id := range found {
			if _, ok := cat[id]; !ok {
				missing++
			}
		}
		fmt.Printf("%s: %d translated, %d missing\n", f, len(cat), missing)
	}
	return nil
}

func readRaw(path string) (map[string]json.RawMessage, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return map[string]json.RawMessage{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", strings.TrimPrefix(path, "./"), err)
	}
	return m, nil
}
