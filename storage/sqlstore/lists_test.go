package sqlstore

import (
	"encoding/json"
	"reflect"
	"testing"
)

// decodeList's hand-split fast path must read back exactly what encodeList
// wrote, and fall back to encoding/json for anything it cannot split.
func TestListRoundTrip(t *testing.T) {
	lists := [][]string{
		{},
		{""},
		{"", ""},
		{"openid"},
		{"openid", "profile", "offline_access"},
		{"a", ""},
		{`say "hi"`, "x"},
		{`a","b`},
		{`back\slash`},
		{"<script>&"},
		{"tab\there", "line\nbreak"},
		{"ünïcödé", "日本"},
		{"https://app.example/cb?x=1&y=2"},
		{"[", "]", `"`},
	}
	for _, l := range lists {
		enc := encodeList(l)
		if got := decodeList(enc); !reflect.DeepEqual(got, l) {
			t.Errorf("decodeList(%s) = %q, want %q", enc, got, l)
		}
	}
	for _, bad := range []string{"", "[", `["a"`, `["a",]`, "null", `{"a":1}`, `[1,2]`} {
		if got := decodeList(bad); len(got) != 0 {
			t.Errorf("decodeList(%q) = %q, want empty", bad, got)
		}
	}
}

// FuzzListRoundTrip compares the fast path with encoding/json's reading of
// the same stored text (invalid UTF-8 is stored as U+FFFD, so the input
// itself is not always what comes back).
func FuzzListRoundTrip(f *testing.F) {
	f.Add("openid", "profile")
	f.Add(`a","b`, "")
	f.Add("\xff", `\`)
	f.Fuzz(func(t *testing.T, a, b string) {
		enc := encodeList([]string{a, b})
		var want []string
		if err := json.Unmarshal([]byte(enc), &want); err != nil {
			t.Fatal(err)
		}
		if got := decodeList(enc); !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeList(%s) = %q, encoding/json reads %q", enc, got, want)
		}
	})
}
