package clients

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tonearm-idp/tonearm/fault"
)

// The URI rule's details (issue 31, followups): the 2,000 are characters,
// not bytes; a quoted URI is cut on a character; the back-channel logout
// URI's refusal names the rule; a private-use scheme is for native apps,
// for redirect and post-logout redirect URIs alike, on every path.
func TestURIRuleDetails(t *testing.T) {
	r, _ := newRegistry(t)
	ctx := context.Background()
	base := "https://app.example/cb?"
	accented := base + strings.Repeat("é", MaxURILength-len(base)) // 2,000 characters, 3,977 bytes
	if _, err := r.Check(ctx, Spec{ID: "ok", Public: true, RedirectURIs: []string{accented}, PostLogoutRedirectURIs: []string{accented}}); err != nil {
		t.Errorf("2,000 characters of é refused: %v", err)
	}
	if _, err := r.Check(ctx, Spec{ID: "ok", RedirectURIs: []string{"https://app.example/cb"}, BackchannelLogoutURI: accented}); err != nil {
		t.Errorf("2,000 characters of é refused as the back-channel URI: %v", err)
	}
	over := accented + "é"
	for name, spec := range map[string]Spec{
		"redirect":     {ID: "c", Public: true, RedirectURIs: []string{over}},
		"post-logout":  {ID: "c", Public: true, RedirectURIs: []string{"https://app.example/cb"}, PostLogoutRedirectURIs: []string{over}},
		"back-channel": {ID: "c", RedirectURIs: []string{"https://app.example/cb"}, BackchannelLogoutURI: over},
		// 59 ASCII characters then é: a byte cut at 60 splits it.
		"split rune": {ID: "c", Public: true, RedirectURIs: []string{"https://app.example/" + strings.Repeat("a", 39) + strings.Repeat("é", MaxURILength)}},
	} {
		_, err := r.Check(ctx, spec)
		var ve *fault.Error
		if !errors.As(err, &ve) || ve.Kind() != fault.Invalid || !strings.Contains(ve.Message(), "characters: at most 2000") || !utf8.ValidString(ve.Message()) ||
			strings.Contains(ve.Message(), `\x`) || strings.ContainsRune(ve.Message(), utf8.RuneError) {
			t.Errorf("%s over the cap: %v", name, err)
		}
		if name != "split rune" && !strings.Contains(ve.Message(), "2001 characters") {
			t.Errorf("%s: %q does not count characters", name, ve.Message())
		}
	}

	// The back-channel URI's refusal says which rule.
	for uri, rule := range map[string]string{
		"https://*.example.com/logout":     "wildcard host",
		"https://user:pw@app.example/bye":  "user name or password",
		"https://app.example/logout#frag":  "fragment",
		"http://app.example/logout":        "https (http only on loopback)",
		"/logout":                          "absolute URI",
		"https://app.example/" + accented:  "at most 2000",
		"https://app.example/logout?x=1#y": "fragment",
	} {
		_, err := r.Check(ctx, Spec{ID: "c", RedirectURIs: []string{"https://app.example/cb"}, BackchannelLogoutURI: uri})
		var ve *fault.Error
		if !errors.As(err, &ve) || ve.Kind() != fault.Invalid || ve.Field() != "backchannel_logout_uri" || !strings.Contains(ve.Message(), rule) {
			t.Errorf("back-channel %.40q: %v, want the rule %q named", uri, err, rule)
		}
	}

	// A private-use scheme: native (public) apps only, for both kinds of
	// redirect URI, on the operators' path and the developers'.
	const private = "com.example.app:/logout"
	for name, spec := range map[string]Spec{
		"confidential redirect":    {ID: "c", RedirectURIs: []string{private}},
		"confidential post-logout": {ID: "c", RedirectURIs: []string{"https://app.example/cb"}, PostLogoutRedirectURIs: []string{private}},
	} {
		_, err := r.Check(ctx, spec)
		var ve *fault.Error
		if !errors.As(err, &ve) || ve.Kind() != fault.Invalid || !strings.Contains(ve.Message(), "a private-use scheme is for native apps") {
			t.Errorf("%s: %v", name, err)
		}
		if _, _, err := r.Create(ctx, spec); err == nil {
			t.Errorf("%s: Create accepted it", name)
		}
	}
	if _, err := r.Check(ctx, Spec{ID: "c", Public: true, RedirectURIs: []string{"com.example.app:/cb"}, PostLogoutRedirectURIs: []string{private}}); err != nil {
		t.Errorf("a public client's private-use URIs refused: %v", err)
	}
	web := AppSpec{Type: AppWeb, RedirectURIs: []string{"https://app.example/cb"}, PostLogoutRedirectURIs: []string{private}, Display: Display{Name: "Web"}}
	if _, err := r.RegisterApp(ctx, web, "", ""); err == nil || !strings.Contains(err.Error(), "a private-use scheme is for native apps") {
		t.Errorf("a web app's private-use post-logout URI: %v", err)
	}
	native := AppSpec{Type: AppNative, RedirectURIs: []string{"com.example.app:/cb"}, PostLogoutRedirectURIs: []string{private}, Display: Display{Name: "Native"}}
	if _, err := r.RegisterApp(ctx, native, "", ""); err != nil {
		t.Errorf("a native app's private-use URIs refused: %v", err)
	}
}

// Metadata messages name no one path's field: the RFC 7591 client_name,
// the console box and --name all hear the same neutral words.
func TestMetadataMessagesNameNoFlag(t *testing.T) {
	r, _ := newRegistry(t)
	ctx := context.Background()
	long := Display{Name: strings.Repeat("n", 101)}
	_, err := r.RegisterApp(ctx, AppSpec{Type: AppNative, RedirectURIs: []string{"http://127.0.0.1/cb"}, Display: long}, "", "")
	if err == nil || !strings.Contains(err.Error(), "the name must be at most 100 printable characters") {
		t.Errorf("a long client_name: %v", err)
	}
	for name, d := range map[string]Display{
		"name": long, "logo": {LogoURI: "javascript:x"}, "client uri": {ClientURI: "/x"}, "policy": {PolicyURI: "/x"}, "tos": {TosURI: "/x"},
	} {
		if _, err := r.Check(ctx, Spec{ID: "c", RedirectURIs: []string{"https://app.example/cb"}, Display: d}); err == nil || strings.Contains(err.Error(), "--") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The operator's path serves the admin API and the console too: its
	// refusals name no command-line flag either.
	for name, spec := range map[string]Spec{
		"private-use redirect, confidential":    {ID: "c", RedirectURIs: []string{"org.example.app:/cb"}},
		"private-use post-logout, confidential": {ID: "c", RedirectURIs: []string{"https://app.example/cb"}, PostLogoutRedirectURIs: []string{"org.example.app:/out"}},
		"public without PKCE":                   {ID: "c", Public: true, AllowNoPKCE: true, RedirectURIs: []string{"https://app.example/cb"}},
		"no redirect URI":                       {ID: "c", GrantTypes: []string{"authorization_code"}},
		"ID token algorithm":                    {ID: "c", RedirectURIs: []string{"https://app.example/cb"}, IDTokenAlg: "HS256"},
	} {
		if _, err := r.Check(ctx, spec); err == nil || strings.Contains(err.Error(), "--") {
			t.Errorf("%s: %v (want a refusal naming no flag)", name, err)
		}
	}
}
