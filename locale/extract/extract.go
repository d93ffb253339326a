// Package extract finds every message of tonearm's pages and mails: the
// literal first arguments of {{t}} and {{tn}} in the templates, and of
// locale.M, locale.MF, a Lang's T, N and S, and fault.New / Saying in the
// Go code. `make messages` writes them into the English catalog (the
// template translators start from); the catalog tests compare the two.
package extract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template/parse"
)

// Found is every message and whether it has plural forms.
type Found map[string]bool // id → plural

// Dir extracts the messages under root (the module's root): every .html
// template under root/templates and every non-test .go file.
func Dir(root string) (Found, error) {
	found := Found{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(name, ".html") && filepath.Base(filepath.Dir(path)) == "templates":
			return found.template(path)
		case strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go"):
			return found.goFile(path)
		}
		return nil
	})
	return found, err
}

// Template extracts the messages of one template file's text.
func (f Found) Template(name, text string) error {
	trees, err := parseTemplate(name, text)
	if err != nil {
		return err
	}
	for _, tr := range trees {
		walk(tr.Root, func(n *parse.CommandNode) {
			if len(n.Args) < 2 {
				return
			}
			id, ok := n.Args[0].(*parse.IdentifierNode)
			if !ok || (id.Ident != "t" && id.Ident != "tn") {
				return
			}
			if s, ok := n.Args[1].(*parse.StringNode); ok {
				f[s.Text] = f[s.Text] || id.Ident == "tn"
			}
		})
	}
	return nil
}

func (f Found) template(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return f.Template(filepath.Base(path), string(b))
}

func parseTemplate(name, text string) (map[string]*parse.Tree, error) {
	tr := parse.New(name)
	tr.Mode = parse.SkipFuncCheck | parse.ParseComments
	trees := map[string]*parse.Tree{}
	if _, err := tr.Parse(text, "{{", "}}", trees); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return trees, nil
}

// Trees parses a template file's text into its named trees (for the test
// that looks for literal text outside the catalog).
func Trees(name, text string) (map[string]*parse.Tree, error) { return parseTemplate(name, text) }

func walk(n parse.Node, fn func(*parse.CommandNode)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walk(c, fn)
		}
	case *parse.ActionNode:
		walk(n.Pipe, fn)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walk(c, fn)
		}
	case *parse.CommandNode:
		fn(n)
		for _, a := range n.Args {
			walk(a, fn)
		}
	case *parse.IfNode:
		walk(n.Pipe, fn)
		walk(n.List, fn)
		walk(n.ElseList, fn)
	case *parse.RangeNode:
		walk(n.Pipe, fn)
		walk(n.List, fn)
		walk(n.ElseList, fn)
	case *parse.WithNode:
		walk(n.Pipe, fn)
		walk(n.List, fn)
		walk(n.ElseList, fn)
	case *parse.TemplateNode:
		walk(n.Pipe, fn)
	}
}

// Walk calls fn for every node of a tree, depth first (for tests).
func Walk(n parse.Node, fn func(parse.Node)) {
	fn(n)
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			Walk(c, fn)
		}
	case *parse.IfNode:
		Walk(n.List, fn)
		Walk(n.ElseList, fn)
	case *parse.RangeNode:
		Walk(n.List, fn)
		Walk(n.ElseList, fn)
	case *parse.WithNode:
		Walk(n.List, fn)
		Walk(n.ElseList, fn)
	}
}

// goFile extracts the marked messages of a Go file: locale.M("…"),
// locale.MF("…", …), x.T("…", …), x.N("…", n, …), x.S("…", …) in a file
// that imports locale, and fault.New(kind, "…") and x.Saying("…").
func (f Found) goFile(path string) error {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return err
	}
	usesLocale, usesFault := false, false
	for _, im := range file.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		usesLocale = usesLocale || strings.HasSuffix(p, "/tonearm/locale")
		usesFault = usesFault || strings.HasSuffix(p, "/tonearm/fault")
	}
	if !usesLocale && !usesFault && file.Name.Name != "locale" {
		return nil
	}
	var bad error
	ast.Inspect(file, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		name, pkg := callee(call)
		arg := 0
		plural := false
		switch {
		case (pkg == "locale" || (pkg == "" && file.Name.Name == "locale")) && (name == "M" || name == "MF"):
		case (pkg == "locale" || (pkg == "" && file.Name.Name == "locale")) && name == "MN":
			plural = true
		case pkg == "fault" && name == "New" && len(call.Args) == 2:
			arg = 1
		case name == "Saying" && usesFault:
		case (name == "T" || name == "S") && (usesLocale || file.Name.Name == "locale") && pkg != "locale":
		case name == "N" && (usesLocale || file.Name.Name == "locale") && pkg != "locale" && len(call.Args) >= 2:
			plural = true
		default:
			return true
		}
		lit, ok := call.Args[arg].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			if pkg == "locale" && (name == "M" || name == "MF" || name == "MN") {
				bad = fmt.Errorf("%s: locale.%s needs a string literal", fset.Position(call.Pos()), name)
			}
			return true
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			return true
		}
		f[s] = f[s] || plural
		return true
	})
	return bad
}

func callee(call *ast.CallExpr) (name, pkg string) {
	switch fn := call.Fun.(type) {
	case *ast.Ident:
		return fn.Name, ""
	case *ast.SelectorExpr:
		if x, ok := fn.X.(*ast.Ident); ok {
			return fn.Sel.Name, x.Name
		}
		return fn.Sel.Name, "."
	}
	return "", ""
}

// Catalog is the English catalog for found, keeping the plural forms and
// texts old (the current file) has for the IDs still found.
func Catalog(found Found, old map[string]json.RawMessage) ([]byte, error) {
	out := map[string]json.RawMessage{}
	for id, plural := range found {
		if v, ok := old[id]; ok {
			var forms map[string]string
			isForms := json.Unmarshal(v, &forms) == nil
			if isForms == plural {
				out[id] = v
				continue
			}
		}
		var v any = id
		if plural {
			v = map[string]string{"one": id, "other": id}
		}
		b, err := marshal(v)
		if err != nil {
			return nil, err
		}
		out[id] = b
	}
	return Encode(out)
}

// Encode writes a catalog file: keys sorted, two-space indent, no HTML
// escaping (translators read it).
func Encode(m map[string]json.RawMessage) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("{\n")
	for i, k := range keys {
		kb, err := marshal(k)
		if err != nil {
			return nil, err
		}
		var v bytes.Buffer
		if err := json.Indent(&v, m[k], "  ", "  "); err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "  %s: %s", kb, v.Bytes())
		if i < len(keys)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
