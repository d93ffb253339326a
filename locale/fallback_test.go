package locale_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tonearm-idp/tonearm/locale"
)

// A language whose catalog lacks a message shows it in English: go-i18n
// answers the English text with a MessageNotFoundErr, which is the
// fallback, not a failure (a page printing it used to stop mid-way).
func TestMissingMessageFallsBackToEnglish(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fa.json"), []byte(`{"Sign in": "ورود"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cats, err := locale.Load("en", dir)
	if err != nil {
		t.Fatal(err)
	}
	l, ok := cats.Match("fa")
	if !ok || l.Dir != "rtl" {
		t.Fatalf("Match(fa) = %s %s, %v", l.Tag, l.Dir, ok)
	}
	if got, err := l.T("Sign in"); err != nil || got != "ورود" {
		t.Fatalf("T(Sign in) = %q, %v", got, err)
	}
	if got, err := l.T("Password"); err != nil || got != "Password" {
		t.Fatalf("T(Password), missing in the catalog = %q, %v; want the English, no error", got, err)
	}
}
