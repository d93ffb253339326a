package locale

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The checks every catalog passes when it is read, and the reading back of
// English text built at run time from a catalogued message (Fill, then
// Lenient), so that a page can translate it.

var (
	action      = regexp.MustCompile(`\{\{(.*?)\}\}`)
	placeholder = regexp.MustCompile(`^\s*\.(\w+)\s*$`)
	aLetter     = regexp.MustCompile(`\pL`)
)

// vet refuses a catalog go-i18n would take but a page must not print: a
// file that is not a JSON object of messages, a message that is neither
// text nor plural forms, template code other than a named placeholder, or
// a placeholder its English message does not have (an operator's catalog
// is read at start-up, so these stop it there with one line).
func (c *Catalogs) vet(buf []byte, template bool) error {
	if len(bytes.TrimSpace(buf)) == 0 {
		return errors.New("empty: a catalog is a JSON object of messages")
	}
	entries, err := ReadFile(buf)
	if err != nil {
		return err
	}
	for id, e := range entries {
		allowed := map[string]bool{}
		if template || c.known[id] {
			for _, m := range action.FindAllStringSubmatch(id, -1) {
				if n := placeholder.FindStringSubmatch(m[1]); n != nil {
					allowed[n[1]] = true
				}
			}
		}
		if e.Plural != nil {
			allowed["Count"] = true
		}
		if allowed["Month"] {
			allowed["MonthNumber"] = true
		}
		texts := []string{e.Other}
		for _, t := range e.Plural {
			texts = append(texts, t)
		}
		for _, t := range texts {
			if strings.TrimSpace(t) == "" {
				return fmt.Errorf("%q: an empty message (leave it out to show the English)", id)
			}
			if rest := action.ReplaceAllString(t, ""); strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
				return fmt.Errorf("%q: a {{ or }} that is no named placeholder such as {{.Name}}", id)
			}
			for _, m := range action.FindAllStringSubmatch(t, -1) {
				n := placeholder.FindStringSubmatch(m[1])
				if n == nil {
					return fmt.Errorf("%q: only named placeholders such as {{.Name}} may appear in a message, not %s", id, m[0])
				}
				if !allowed[n[1]] {
					return fmt.Errorf("%q: {{.%s}} is not a placeholder of this message", id, n[1])
				}
			}
		}
	}
	return nil
}

// pattern recognises a message with placeholders once its values are
// filled in (English text built at run time, such as a validation error
// naming a length), so that a page can still translate it.
type pattern struct {
	id, text string // the message and the English form the pattern reads
	plural   bool   // a plural message: its Count is read back as a number
	re       *regexp.Regexp
	names    []string
}

func (c *Catalogs) addPattern(id, text string, plural bool) {
	parts := action.FindAllStringSubmatchIndex(text, -1)
	if len(parts) == 0 {
		return
	}
	var expr strings.Builder
	var names []string
	literal, last := "", 0
	expr.WriteString("^")
	for _, p := range parts {
		n := placeholder.FindStringSubmatch(text[p[2]:p[3]])
		if n == nil {
			return
		}
		literal += text[last:p[0]]
		expr.WriteString(regexp.QuoteMeta(text[last:p[0]]))
		if plural && n[1] == "Count" {
			expr.WriteString(`(\d+)`)
		} else {
			expr.WriteString("(.+?)")
		}
		names = append(names, n[1])
		last = p[1]
	}
	literal += text[last:]
	expr.WriteString(regexp.QuoteMeta(text[last:]))
	expr.WriteString("$")
	// Only a message with words of its own: "{{.Message}}." would match
	// anything.
	// A plural's count is a number, so its words may be few ("2 seconds").
	minLetters := 8
	if plural {
		minLetters = 3
	}
	if len(aLetter.FindAllString(literal, -1)) < minLetters {
		return
	}
	c.patterns = append(c.patterns, pattern{id: id, text: text, plural: plural, re: regexp.MustCompile(expr.String()), names: names})
}

// Fill is template (a message with named placeholders) in English with
// args (name, value pairs) filled in: for messages Go code builds for
// people, which a page then translates (Lenient recognises them).
func Fill(template string, args ...any) string {
	values := pairs(args)
	return action.ReplaceAllStringFunc(template, func(a string) string {
		n := placeholder.FindStringSubmatch(a[2 : len(a)-2])
		if n == nil {
			return a
		}
		v, ok := values[n[1]]
		if !ok {
			return a
		}
		return fmt.Sprint(v)
	})
}

// Lenient is text in this language when a catalog has it, else text: for
// messages built at run time.
func (l *Lang) Lenient(text string) string { return l.lenient(text, 2) }

// lenient is Lenient; the values read back from a message are translated
// in turn, depth levels deep ("Too many {{.What}}; try again in
// {{.Wait}}": What and Wait are messages too).
func (l *Lang) lenient(text string, depth int) string {
	if l.c.known[text] {
		return l.S(text)
	}
	if depth == 0 {
		return text
	}
	for _, p := range l.c.patterns {
		m := p.re.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		args := make([]any, 0, 2*len(p.names))
		count := -1
		for i, n := range p.names {
			if p.plural && n == "Count" {
				if c, err := strconv.Atoi(m[i+1]); err == nil {
					count = c
					continue
				}
			}
			args = append(args, n, l.lenient(m[i+1], depth-1))
		}
		if p.plural {
			if count < 0 {
				continue
			}
			s, err := l.N(p.id, count, args...)
			if err != nil {
				return text
			}
			return s
		}
		return l.S(p.id, args...)
	}
	return text
}
