package web

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Every named limit has a positive limit and window, a message, and a key
// prefix of its own; no window outlives the housekeeping's sweep
// (LoginWindow), which would forget a live counter; and docs/security.md
// lists each with its numbers.
func TestEveryLimitIsWellFormedAndDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	prefixes := map[string]string{}
	for _, l := range Limits {
		t.Run(l.Name, func(t *testing.T) {
			if l.Name == "" || l.Reason == "" {
				t.Errorf("%+v: needs a name and a message", l)
			}
			if l.Max <= 0 || l.Window <= 0 || l.Window > LoginWindow {
				t.Errorf("%+v: needs a positive limit and a window of at most %s", l, LoginWindow)
			}
			if !strings.HasSuffix(l.Prefix, ":") {
				t.Errorf("%+v: the prefix must end in a colon, so that no key of one limit is a key of another", l)
			}
			if other, ok := prefixes[l.Prefix]; ok {
				t.Errorf("%s and %s share the prefix %q", l.Name, other, l.Prefix)
			}
			prefixes[l.Prefix] = l.Name
			row := fmt.Sprintf("| %s | %d | %d minutes |", l.Name, l.Max, int(l.Window.Minutes()))
			if !strings.Contains(string(doc), row) {
				t.Errorf("docs/security.md has no row %q", row)
			}
		})
	}
}
