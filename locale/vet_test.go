package locale

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Found from outside (issue 35): an operator's catalog is checked at
// start-up like the shipped ones: one clear line for anything a page must
// not print, or a file that is no catalog.
func TestOperatorCatalogsAreVetted(t *testing.T) {
	cases := []struct{ name, file, body, want string }{
		{"template code", "de.json", `{"Sign in": "{{.Secret}}"}`, "not a placeholder of this message"},
		{"a function", "de.json", `{"Continue with {{.Name}}": "{{printf \"%s\" 1}}"}`, "only named placeholders"},
		{"the dot", "de.json", `{"Sign in": "{{.}}"}`, "only named placeholders"},
		{"another name", "de.json", `{"Continue with {{.Name}}": "Weiter mit {{.Nom}}"}`, "{{.Nom}} is not a placeholder"},
		{"a placeholder in an unknown message", "de.json", `{"Archive": "{{.Name}}"}`, "not a placeholder"},
		{"empty", "de.json", ``, "empty"},
		{"an unclosed action", "de.json", `{"Sign in": "{{"}`, "no named placeholder"},
		{"half a placeholder", "de.json", `{"Continue with {{.Name}}": "A {{ .Name"}`, "no named placeholder"},
		{"braces the wrong way", "de.json", `{"Sign in": "}}{{"}`, "no named placeholder"},
		{"an empty message", "de.json", `{"Sign in": ""}`, "an empty message"},
		{"null", "de.json", `{"Sign in": null}`, "an empty message"},
		{"an array", "de.json", `[1, 2]`, "a catalog is a JSON object of messages"},
		{"a number", "de.json", `{"Sign in": 5}`, "a message is a string or an object of plural forms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, c.file), []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load("", dir)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Load: %v; want one line with %q", err, c.want)
			}
		})
	}
	dir := t.TempDir()
	for _, f := range []string{"de.json", "DE.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(`{"Sign in": "Einloggen"}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Load("", dir); err == nil || !strings.Contains(err.Error(), "both catalogs of de") {
		t.Fatalf("two catalogs of one language: %v", err)
	}
	ok := t.TempDir()
	if err := os.WriteFile(filepath.Join(ok, "de.json"), []byte(`{"Continue with {{.Name}}": "Mit {{.Name}} fortfahren", "tonearm": "Tonarm"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load("", ok); err != nil {
		t.Fatalf("a good catalog: %v", err)
	}
}

// A message built at run time from a catalogued template is recognised and
// translated with its values; anything else stays as it is.
func TestLenientRecognisesFilledTemplates(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "de.json"), []byte(`{"Continue with {{.Name}}": "Mit {{.Name}} fortfahren"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load("", dir)
	if err != nil {
		t.Fatal(err)
	}
	de, _ := c.Match("de")
	en := Fill("Continue with {{.Name}}", "Name", "MusicBrainz")
	if en != "Continue with MusicBrainz" {
		t.Fatalf("Fill: %q", en)
	}
	if got := de.Lenient(en); got != "Mit MusicBrainz fortfahren" {
		t.Fatalf("Lenient(%q) = %q", en, got)
	}
	if got := de.Lenient("Something nobody wrote"); got != "Something nobody wrote" {
		t.Fatalf("an unknown text: %q", got)
	}
}
