package locale_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"text/template/parse"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/locale/extract"
)

// TestEnglishCatalogIsUpToDate fails when a page or Go code prints a
// message the English catalog (the translators' template) lacks, or the
// catalog keeps one nothing prints: run `make messages`.
func TestEnglishCatalogIsUpToDate(t *testing.T) {
	found, err := extract.Dir("..")
	if err != nil {
		t.Fatal(err)
	}
	en := shippedEntries(t, "en")
	var missing, stale []string
	for id, plural := range found {
		e, ok := en[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		if plural != (e.Plural != nil) {
			t.Errorf("%q: plural in the code is %v, in the catalog %v", id, plural, e.Plural != nil)
		}
	}
	for id := range en {
		if _, ok := found[id]; !ok {
			stale = append(stale, id)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing)+len(stale) > 0 {
		t.Fatalf("locale/catalogs/en.json is out of date (run make messages):\nmissing %q\nunused %q", missing, stale)
	}
}

func shippedEntries(t *testing.T, tag string) map[string]locale.Entry {
	t.Helper()
	b, err := locale.ShippedFile(tag)
	if err != nil {
		t.Fatalf("no catalog for %s: %v", tag, err)
	}
	m, err := locale.ReadFile(b)
	if err != nil {
		t.Fatalf("%s.json: %v", tag, err)
	}
	return m
}

var placeholder = regexp.MustCompile(`\{\{\s*\.(\w+)\s*\}\}`)

func names(s string) string {
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
		if m[1] == "MonthNumber" { // a date may name the month by number or by name
			m[1] = "Month"
		}
		out = append(out, m[1])
	}
	sort.Strings(out)
	return strings.Join(uniq(out), ",")
}

func uniq(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// TestShippedCatalogsAreComplete fails when a shipped language lacks a
// message, leaves one empty, or names other placeholders than the English;
// and when a plural cannot be written for some count.
func TestShippedCatalogsAreComplete(t *testing.T) {
	en := shippedEntries(t, "en")
	cats, err := locale.Load("en", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range locale.Shipped {
		t.Run(tag, func(t *testing.T) {
			cat := shippedEntries(t, tag)
			l, ok := cats.Match(tag)
			if !ok || l.Tag != tag {
				t.Fatalf("%s matches %s", tag, l.Tag)
			}
			var missing []string
			for id, e := range en {
				tr, ok := cat[id]
				if !ok || strings.TrimSpace(tr.Other) == "" {
					missing = append(missing, id)
					continue
				}
				want := names(e.Other)
				if e.Plural != nil {
					want = names(e.Other + " {{.Count}}")
					for form, text := range tr.Plural {
						if got := names(text + " {{.Count}}"); got != want {
							t.Errorf("%q (%s): placeholders %s, English has %s", id, form, got, want)
						}
					}
					for _, n := range []int{0, 1, 2, 3, 5, 11, 21, 100, 101, 1000000} {
						if _, err := l.N(id, n); err != nil {
							t.Errorf("%q for %d: %v", id, n, err)
						}
					}
					continue
				}
				if got := names(tr.Other); got != want {
					t.Errorf("%q: placeholders %s, English has %s", id, got, want)
				}
			}
			for id := range cat {
				if _, ok := en[id]; !ok {
					t.Errorf("%q is not in the English catalog (run make messages)", id)
				}
			}
			sort.Strings(missing)
			if len(missing) > 0 {
				t.Errorf("%d messages missing, the first: %q", len(missing), missing[:min(5, len(missing))])
			}
		})
	}
}

var (
	tag     = regexp.MustCompile(`(?s)<[^>]*>`)
	attr    = regexp.MustCompile(`\b(?:alt|aria-label|title|placeholder|label)="([^"]*)"`)
	letters = regexp.MustCompile(`\pL`)
	entity  = regexp.MustCompile(`&\w+;|&#\d+;`)
)

// TestTemplatesPrintNoLiteralText fails when a page prints English outside
// the catalog: text between tags, or an alt, aria-label, title or
// placeholder attribute, that is not a {{t}}.
func TestTemplatesPrintNoLiteralText(t *testing.T) {
	files, err := filepath.Glob("../templates/*.html")
	if err != nil || len(files) == 0 {
		t.Fatalf("no templates: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		trees, err := extract.Trees(filepath.Base(f), string(b))
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range trees {
			// The text of the tree, each action a neutral mark, so that a
			// tag split by an action is still one tag.
			var b strings.Builder
			extract.Walk(tr.Root, func(n parse.Node) {
				switch n := n.(type) {
				case *parse.TextNode:
					b.Write(n.Text)
				case *parse.ListNode:
				default:
					b.WriteString("\x00")
				}
			})
			s := b.String()
			for _, m := range attr.FindAllStringSubmatch(s, -1) {
				if letters.MatchString(m[1]) {
					t.Errorf("%s: literal attribute %s", filepath.Base(f), m[0])
				}
			}
			for _, piece := range strings.Split(entity.ReplaceAllString(tag.ReplaceAllString(s, "\x00"), " "), "\x00") {
				if letters.MatchString(piece) {
					t.Errorf("%s: literal text %q", filepath.Base(f), strings.TrimSpace(piece))
				}
			}
		}
	}
}
