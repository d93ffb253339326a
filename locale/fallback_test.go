package locale

import (
	"os"
	"path/filepath"
	"testing"
)

// Issue 35: a message a catalog lacks is English, with the English plural
// forms, and never fails the page that prints it.
func TestMissingMessageFallsBackToEnglish(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "eo.json"), []byte(`{"Sign in": "Ensaluti"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load("", dir)
	if err != nil {
		t.Fatal(err)
	}
	eo, ok := c.Match("eo")
	if !ok {
		t.Fatal("no eo")
	}
	if s, err := eo.T("Sign in"); err != nil || s != "Ensaluti" {
		t.Fatalf("T(Sign in) = %q, %v", s, err)
	}
	if s, err := eo.T("Password"); err != nil || s != "Password" {
		t.Fatalf("T(Password), missing in eo = %q, %v; want the English", s, err)
	}
	if s := eo.S("{{.Day}} {{.Month}} {{.Year}}", "Day", 7, "Month", "December", "Year", 2026); s != "7 December 2026" {
		t.Fatalf("S with placeholders, missing in eo = %q", s)
	}
}
