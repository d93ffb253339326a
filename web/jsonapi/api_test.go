package jsonapi

import (
	"encoding/json"
	"testing"
)

func TestFlexString(t *testing.T) {
	for in, want := range map[string]string{`"012345"`: "012345", `12345`: "012345", `999999`: "999999", `"abc"`: "abc"} {
		var f flexString
		if err := json.Unmarshal([]byte(in), &f); err != nil || string(f) != want {
			t.Errorf("%s → %q, %v; want %q", in, f, err, want)
		}
	}
	for _, bad := range []string{`-1`, `1000000`, `1.5`, `true`, `[]`} {
		var f flexString
		if err := json.Unmarshal([]byte(bad), &f); err == nil {
			t.Errorf("%s accepted as %q", bad, f)
		}
	}
}
