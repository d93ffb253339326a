package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The YAML decoder names Go types ("field x not found in type
// main.fileClient", "cannot unmarshal !!str into []string"): an operator
// reading apply's error knows the file, not tonearm's source. plainYAMLError
// says the same in the file's words: the key, what it must hold, what it
// holds.

var (
	yamlUnknownField = regexp.MustCompile(`^line (\d+): field (.+) not found in type (\S+)$`)
	yamlWrongType    = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+)(?: `(.*)`)? into (\\S+)$")
	yamlKeyOnLine    = regexp.MustCompile(`^\s*(?:-\s+)?"?([A-Za-z_][A-Za-z0-9_]*)"?\s*:`)
)

// yamlTypeWords names the Go types of the file in its words.
var yamlTypeWords = map[string]string{
	"main.desired":      "a mapping with clients and apis",
	"main.fileClient":   "a client (a mapping of keys)",
	"main.fileAPI":      "an API (a mapping of keys)",
	"main.fileScope":    "a scope (a mapping with name and description)",
	"[]main.fileClient": "a list of clients",
	"[]main.fileAPI":    "a list of APIs",
	"[]main.fileScope":  "a list of scopes",
	"[]string":          "a list of strings",
	"string":            "a string",
	"bool":              "true or false",
}

var yamlTagWords = map[string]string{
	"str": "the string", "int": "the number", "float": "the number", "bool": "the boolean",
	"seq": "a list", "map": "a mapping", "null": "nothing", "timestamp": "the date",
}

var yamlOwnerWords = map[string]string{
	"main.desired": "at the top level", "main.fileClient": "in a client", "main.fileAPI": "in an API", "main.fileScope": "in a scope",
}

func plainYAMLError(err error, data []byte) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	lines := strings.Split(string(data), "\n")
	out := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		out = append(out, plainYAMLLine(e, lines))
	}
	return errors.New(strings.Join(out, "; "))
}

func plainYAMLLine(e string, lines []string) string {
	if m := yamlUnknownField.FindStringSubmatch(e); m != nil {
		where := yamlOwnerWords[m[3]]
		if where == "" {
			where = "here"
		}
		return fmt.Sprintf("line %s: unknown key %q %s", m[1], m[2], where)
	}
	if m := yamlWrongType.FindStringSubmatch(e); m != nil {
		want := yamlTypeWords[m[4]]
		if want == "" {
			want = "another kind of value"
		}
		got := yamlTagWords[m[2]]
		if got == "" {
			got = "this value"
		}
		if m[3] != "" {
			got += " " + strconv.Quote(m[3])
		}
		subject := "the value"
		if n, err := strconv.Atoi(m[1]); err == nil && n >= 1 && n <= len(lines) {
			if k := yamlKeyOnLine.FindStringSubmatch(lines[n-1]); k != nil {
				subject = k[1]
			}
		}
		switch {
		case m[4] == "main.desired":
			subject = "the file"
		case strings.HasPrefix(m[4], "main.") && subject != "the value":
			subject = "each item of " + subject // the key names the list
		}
		return fmt.Sprintf("line %s: %s must be %s, not %s", m[1], subject, want, got)
	}
	// Anything else: never a Go type name.
	if strings.Contains(e, "main.") || strings.Contains(e, "[]") {
		return "a value of the wrong kind"
	}
	return e
}
