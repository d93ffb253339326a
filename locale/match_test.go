package locale

import (
	"os"
	"path/filepath"
	"testing"
)

// Issue 35: a language no catalog has falls to the next preference and
// then to the default, never to English because x/text's matcher rates
// English "High" for languages it has no data on.
func TestMatchUnknownLanguages(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"de.json", "ja.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(`{"Sign in": "x"}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Load("ja", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prefs []string
		want  string
		ok    bool
	}{
		{[]string{"sw"}, "ja", false},
		{[]string{"tlh", "eo"}, "ja", false},
		{[]string{"zz-ZZ"}, "ja", false},
		{[]string{"*"}, "ja", false},
		{[]string{"xx de-CH"}, "ja", false}, // one tag per argument: not a list
		{[]string{"xx", "de-CH"}, "de", true},
		{[]string{"sw, de;q=0.5"}, "de", true},
		{[]string{"en-GB"}, "en", true},
		{[]string{"de-CH"}, "de", true},
	} {
		l, ok := c.Match(tc.prefs...)
		if l.Tag != tc.want || ok != tc.ok {
			t.Errorf("Match(%q) = %s, %v; want %s, %v", tc.prefs, l.Tag, ok, tc.want, tc.ok)
		}
	}
	if _, err := Load("sw", dir); err == nil {
		t.Error("Load(sw) accepted a default no catalog has")
	}
}

// The picker names a country's variant with its country.
func TestPickerNamesTheVariant(t *testing.T) {
	c, err := Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, ch := range c.Languages() {
		names[ch.Tag] = ch.Name
	}
	if names["pt-BR"] != "português (Brasil)" || names["de"] != "Deutsch" || names["ar"] != "العربية" {
		t.Fatalf("picker names: %v", names)
	}
}

// Found from outside: one tag x/text does not know ("xx") no longer throws
// away the rest of an Accept-Language header.
func TestAcceptLanguageSkipsUnknownTags(t *testing.T) {
	c, err := Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	for header, want := range map[string]string{"xx, de": "de", "zz, ar": "ar", "klingon, ja": "ja", "sv, ar-SA": "ar",
		"xx;q=0.9, fr;q=0.5, ja": "ja", "xx": "en"} {
		if l, _ := c.Match(header); l.Tag != want {
			t.Errorf("Accept-Language %q: %s, want %s", header, l.Tag, want)
		}
	}
}
