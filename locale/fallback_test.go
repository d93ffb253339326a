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
	if err := os.WriteFile(filepath.Join(dir, "ja.json"), []byte(`{"Sign in": "サインイン"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load("", dir)
	if err != nil {
		t.Fatal(err)
	}
	ja, ok := c.Match("ja")
	if !ok {
		t.Fatal("no ja")
	}
	if s, err := ja.T("Sign in"); err != nil || s != "サインイン" {
		t.Fatalf("T(Sign in) = %q, %v", s, err)
	}
	if s, err := ja.T("Password"); err != nil || s != "Password" {
		t.Fatalf("T(Password), missing in ja = %q, %v; want the English", s, err)
	}
	if s := ja.S("{{.Day}} {{.Month}} {{.Year}}", "Day", 7, "Month", "December", "Year", 2026); s != "7 December 2026" {
		t.Fatalf("S with placeholders, missing in ja = %q", s)
	}
}
