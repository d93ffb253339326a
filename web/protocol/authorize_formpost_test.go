package protocol

import (
	"net/url"
	"testing"
)

// The form_post page names the redirect URI's origin in its
// Content-Security-Policy: nothing that could end the source expression or
// add a directive gets there, and only http(s) can be posted to.
func TestFormPostOrigin(t *testing.T) {
	for raw, want := range map[string]string{
		"https://app.example/cb?x=1#f":             "https://app.example",
		"http://127.0.0.1:5555/callback":           "http://127.0.0.1:5555",
		"https://[::1]:8443/cb":                    "https://[::1]:8443",
		"HTTPS://App.Example/cb":                   "https://App.Example",
		"com.example.app:/oauth/callback":          "",
		"javascript://app.example/%0aalert(1)":     "",
		"https://a.example%3B%20script-src%20*/cb": "",
		"https://a.example,b.example/cb":           "",
		"https://user:pw@app.example/cb":           "https://app.example",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			if want != "" {
				t.Fatalf("%s: %v", raw, err)
			}
			continue
		}
		got, ok := formPostOrigin(u)
		if got != want || ok != (want != "") {
			t.Errorf("formPostOrigin(%s) = %q, %v; want %q", raw, got, ok, want)
		}
	}
}
