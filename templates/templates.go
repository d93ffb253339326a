// Package templates holds tonearm's HTML pages and their stylesheet and
// logo, embedded in the binary. The pages are parsed once at start-up: a
// missing or broken page stops the server there, not in front of a user.
package templates

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/tonearm-idp/tonearm/locale"
)

//go:embed *.html static
var files embed.FS

// Required lists every page the server renders.
var Required = []string{
	"login.html", "consent.html", "error.html", "logout.html", "logged_out.html", "forgot.html", "reset.html", "verify_email.html",
	"notice.html", "device.html", "signup.html", "account.html", "admin.html", "admin_users.html", "admin_user.html", "admin_clients.html", "admin_client.html", "admin_apis.html", "admin_keys.html",
	"welcome.html", "choose_username.html", "admin_connectors.html", "second_factor.html", "developer.html",
	"form_post.html",
}

// Options brand the pages.
type Options struct {
	SiteName string // in every title and header
	Base     string // the issuer's path prefix ("" at the root)
	Theme    Theme
}

// Parse parses every page and checks that each required one exists; the
// result is one set of pages per language of cats, each printing its own
// words. Pages call {{site}} for the site name, {{base}} for the path
// prefix, {{asset "style.css"}} for a versioned static file URL, {{t "…"}}
// for a message ({{t "Hello {{.Name}}" "Name" .X}} with named
// placeholders; {{t .Field}} translates what Go code marked), {{tn "…" n}}
// for a plural, {{lang}} and {{dir}} for <html lang dir>, {{when t}} and
// {{day t}} for a date, and {{languages}} for the picker.
func Parse(o Options, cats *locale.Catalogs) (map[string]*template.Template, error) {
	if o.SiteName == "" {
		o.SiteName = "tonearm"
	}
	versions := map[string]string{"style.css": o.Theme.version(o.Theme.CSS), "logo.svg": o.Theme.version(o.Theme.Logo),
		"passkey.js": o.Theme.version(PasskeyScript()), "formpost.js": o.Theme.version(FormPostScript())}
	base, err := template.New("").Funcs(template.FuncMap{
		"base": func() string { return o.Base },
		"fieldOf": func(name, label, typ, value, autocomplete string, errs map[string]string) Field {
			return Field{Name: name, Label: label, Type: typ, Value: value, Autocomplete: autocomplete, Error: errs[name]}
		},
		"asset": func(name string) (string, error) {
			v, ok := versions[name]
			if !ok {
				return "", fmt.Errorf("no asset %q", name)
			}
			return o.Base + StaticPath + name + "?v=" + v, nil
		},
	}).Funcs(langFuncs(o.SiteName, cats.Default(), cats)).ParseFS(files, "*.html")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	for _, name := range Required {
		if base.Lookup(name) == nil {
			return nil, fmt.Errorf("templates: %s is missing", name)
		}
	}
	sets := map[string]*template.Template{}
	for _, tag := range cats.Tags() {
		l, _ := cats.Match(tag)
		c, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		sets[l.Tag] = c.Funcs(langFuncs(o.SiteName, l, cats))
	}
	return sets, nil
}

// Picked is one entry of the language picker.
type Picked struct {
	locale.Choice
	Selected bool
}

// langFuncs are the functions that print words of language l.
func langFuncs(site string, l *locale.Lang, cats *locale.Catalogs) template.FuncMap {
	picker := cats.Languages()
	pick := make([]Picked, len(picker))
	for i, c := range picker {
		pick[i] = Picked{Choice: c, Selected: c.Tag == l.Tag}
	}
	siteName := l.Site(site)
	return template.FuncMap{
		"site": func() string { return siteName },
		"t": func(v any, args ...any) (string, error) {
			if len(args) > 0 {
				id, ok := v.(string)
				if !ok {
					return "", fmt.Errorf("t: placeholders need a literal message, not a %T", v)
				}
				return l.T(id, args...)
			}
			return l.Text(v)
		},
		"tn":        func(id string, n int, args ...any) (string, error) { return l.N(id, n, args...) },
		"lang":      func() string { return l.Tag },
		"dir":       func() string { return l.Dir },
		"when":      func(t time.Time) string { return l.Time(t) },
		"day":       func(t time.Time) string { return l.Date(t) },
		"languages": func() []Picked { return pick },
	}
}

// Field is one labelled input with its error (the "field" template).
type Field struct{ Name, Label, Type, Value, Autocomplete, Error string }

// StaticPath is where the stylesheet and the logo are served.
const StaticPath = "/static/"

// Theme is the stylesheet and logo the pages use.
type Theme struct {
	CSS  []byte
	Logo []byte // SVG
}

func (Theme) version(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:6])
}

// PasskeyScript is the script of the pages that offer passkeys: the
// passkey ceremonies (not themeable).
func PasskeyScript() []byte { return staticFile("static/passkey.js") }

// FormPostScript submits the form_post response page's form (not
// themeable); the page works without it.
func FormPostScript() []byte { return staticFile("static/formpost.js") }

func staticFile(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	return b
}

// DefaultTheme is the built-in stylesheet and logo.
func DefaultTheme() Theme {
	css, err := files.ReadFile("static/style.css")
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	logo, err := files.ReadFile("static/logo.svg")
	if err != nil {
		panic(err)
	}
	return Theme{CSS: css, Logo: logo}
}

// LoadTheme reads TONEARM_THEME_DIR: its style.css and logo.svg, where
// present, replace the built-in ones. A folder that is missing or
// unreadable, or a file in it that cannot be read, is an error.
func LoadTheme(dir string) (Theme, error) {
	t := DefaultTheme()
	if dir == "" {
		return t, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return t, fmt.Errorf("TONEARM_THEME_DIR %q: %w", dir, unwrapPath(err))
	}
	found := false
	for _, e := range entries {
		var dst *[]byte
		switch e.Name() {
		case "style.css":
			dst = &t.CSS
		case "logo.svg":
			dst = &t.Logo
		default:
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return t, fmt.Errorf("TONEARM_THEME_DIR %q: cannot read %s: %w", dir, e.Name(), unwrapPath(err))
		}
		*dst, found = b, true
	}
	if !found && !hasLocales(dir) {
		return t, fmt.Errorf("TONEARM_THEME_DIR %q holds neither style.css, logo.svg nor locales/", dir)
	}
	return t, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// LocalesDir is the folder of the operator's catalogs in the theme folder
// dir (TONEARM_THEME_DIR/locales; "" when there is no theme folder), which
// locale.Load reads over the shipped ones.
func LocalesDir(dir string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "locales")
}

// hasLocales reports whether the theme folder holds a locales folder: a
// theme may change words only.
func hasLocales(dir string) bool {
	fi, err := os.Stat(LocalesDir(dir))
	return err == nil && fi.IsDir()
}
