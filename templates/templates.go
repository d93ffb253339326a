// Package templates holds tonearm's HTML pages, embedded in the binary and
// parsed once at start-up: a missing or broken page stops the server there,
// not in front of a user.
package templates

import (
	"embed"
	"fmt"
	"html/template"
)

//go:embed *.html
var files embed.FS

// Required lists every page the server renders.
var Required = []string{"login.html", "consent.html", "error.html", "logout.html", "logged_out.html", "forgot.html", "reset.html", "verify_email.html"}

// Parse parses every page and checks that each required one exists.
func Parse() (*template.Template, error) {
	t, err := template.New("").ParseFS(files, "*.html")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	for _, name := range Required {
		if t.Lookup(name) == nil {
			return nil, fmt.Errorf("templates: %s is missing", name)
		}
	}
	return t, nil
}
