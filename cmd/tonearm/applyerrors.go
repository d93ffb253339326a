package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
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
	"main.jwkSet":       "a mapping (a JWK Set)",
}

var yamlTagWords = map[string]string{
	"str": "the string", "int": "the number", "float": "the number", "bool": "the boolean",
	"seq": "a list", "map": "a mapping", "null": "nothing", "timestamp": "the date",
}

var yamlOwnerWords = map[string]string{
	"main.desired": "at the top level", "main.fileClient": "in a client", "main.fileAPI": "in an API", "main.fileScope": "in a scope",
}

// fileShape is what the file holds where: every value with its line, its
// YAML tag, the Go type it is read into and the key it is the value of.
// An error of the decoder gives only a line, and a line may hold several
// keys (clients: [{id: x, redirectUris: {a: 1}}]): the tag and the type
// the decoder names tell which of them is wrong.
type fileShape struct {
	lines  []string
	values []shapeValue
}

type shapeValue struct {
	line            int
	tag, goType, of string
}

// readShape reads the file as YAML nodes and refuses what decoding into
// desired would drop silently: a second document (the decoder reads only
// the first) and an empty item in a list of clients, APIs or scopes (it
// would become an item with every key left out).
func readShape(data []byte) (fileShape, error) {
	sh := fileShape{lines: strings.Split(string(data), "\n")}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return sh, nil
		}
		return sh, err // a syntax error: the parser's message names the line
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return sh, fmt.Errorf("line %d: a second YAML document (after ---): apply reads one; put every client and API in one document", next.Line)
	case !errors.Is(err, io.EOF):
		return sh, err
	}
	return sh, sh.walk(&root, reflect.TypeOf(desired{}), "the file")
}

// walk records n (read into t; of names it in the error) and what it holds.
func (sh *fileShape) walk(n *yaml.Node, t reflect.Type, of string) error {
	switch {
	case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
		return sh.walk(n.Content[0], t, of)
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := yamlField(t, k.Value)
			if !ok {
				continue // the decoder names the unknown key
			}
			sh.values = append(sh.values, shapeValue{v.Line, v.ShortTag(), f.Type.String(), k.Value})
			if err := sh.walk(v, f.Type, k.Value); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		elem := t.Elem()
		for _, item := range n.Content {
			if elem.Kind() == reflect.Struct && item.ShortTag() == "!!null" {
				return fmt.Errorf("line %d: an empty item in %s: each must be %s", item.Line, of, yamlTypeWords[elem.String()])
			}
			sh.values = append(sh.values, shapeValue{item.Line, item.ShortTag(), elem.String(), "each item of " + of})
			if err := sh.walk(item, elem, of); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlField is t's field read from the key name.
func yamlField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); strings.Split(f.Tag.Get("yaml"), ",")[0] == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// subject names the value on line that has tag and is read into goType.
func (sh fileShape) subject(line int, tag, goType string) string {
	for _, v := range sh.values {
		if v.line == line && v.tag == tag && v.goType == goType {
			return v.of
		}
	}
	return ""
}

func (sh fileShape) plainError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	out := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		out = append(out, sh.plainLine(e))
	}
	return errors.New(strings.Join(out, "; "))
}

func (sh fileShape) plainLine(e string) string {
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
		n, _ := strconv.Atoi(m[1])
		subject := sh.subject(n, "!!"+m[2], m[4])
		if subject == "" {
			// Not found in the nodes (it should be): the first key on the line.
			subject = "the value"
			if n >= 1 && n <= len(sh.lines) {
				if k := yamlKeyOnLine.FindStringSubmatch(sh.lines[n-1]); k != nil {
					subject = k[1]
					if strings.HasPrefix(m[4], "main.") {
						subject = "each item of " + subject // the key names the list
					}
				}
			}
		}
		if m[4] == "main.desired" {
			subject = "the file"
		}
		return fmt.Sprintf("line %s: %s must be %s, not %s", m[1], subject, want, got)
	}
	// Anything else: never a Go type name.
	if strings.Contains(e, "main.") || strings.Contains(e, "[]") {
		return "a value of the wrong kind"
	}
	return e
}
