package config

import (
	"strings"
	"testing"
)

// Each mode has one parser, run once at load: the good values load into
// the typed field, a bad one is refused with the variable's own message,
// and unset gives the one default of its table row.
func TestModeSettings(t *testing.T) {
	secret := strings.Repeat("k", 32)
	cases := []struct {
		env, value string
		want       func(Config) string // the loaded field, as a string
		err        string              // empty: accepted
	}{
		{"TONEARM_REGISTRATION", "", func(c Config) string { return string(c.Registration) }, ""},
		{"TONEARM_REGISTRATION", "open", func(c Config) string { return string(c.Registration) }, ""},
		{"TONEARM_REGISTRATION", "admin", func(c Config) string { return string(c.Registration) }, ""},
		{"TONEARM_REGISTRATION", "closed", nil, "TONEARM_REGISTRATION must be open or admin"},
		{"TONEARM_REGISTRATION", "Open", nil, "TONEARM_REGISTRATION must be open or admin"},
		{"TONEARM_CLIENT_REGISTRATION", "", func(c Config) string { return string(c.ClientRegistration) }, ""},
		{"TONEARM_CLIENT_REGISTRATION", "token", func(c Config) string { return string(c.ClientRegistration) }, ""},
		{"TONEARM_CLIENT_REGISTRATION", "open", func(c Config) string { return string(c.ClientRegistration) }, ""},
		{"TONEARM_CLIENT_REGISTRATION", "off", func(c Config) string { return string(c.ClientRegistration) }, ""},
		{"TONEARM_CLIENT_REGISTRATION", "admin", nil, "TONEARM_CLIENT_REGISTRATION must be token, open or off"},
		{"TONEARM_ADMIN_MFA", "", func(c Config) string { return string(c.AdminMFA) }, ""},
		{"TONEARM_ADMIN_MFA", "optional", func(c Config) string { return string(c.AdminMFA) }, ""},
		{"TONEARM_ADMIN_MFA", "required", func(c Config) string { return string(c.AdminMFA) }, ""},
		{"TONEARM_ADMIN_MFA", "yes", nil, "TONEARM_ADMIN_MFA must be optional or required"},
		{"TONEARM_PPROF_LISTEN", "", func(c Config) string { return c.PprofListen }, ""},
		{"TONEARM_PPROF_LISTEN", "127.0.0.1:6060", func(c Config) string { return c.PprofListen }, ""},
		{"TONEARM_PPROF_LISTEN", "6060", nil, "TONEARM_PPROF_LISTEN must be host:port, for example 127.0.0.1:6060"},
	}
	defaults := map[string]string{"TONEARM_REGISTRATION": "open", "TONEARM_CLIENT_REGISTRATION": "token", "TONEARM_ADMIN_MFA": "optional", "TONEARM_PPROF_LISTEN": ""}
	for _, c := range cases {
		c := c
		t.Run(c.env+"="+c.value, func(t *testing.T) {
			env := map[string]string{"TONEARM_SECRET": secret, "TONEARM_DATABASE_URL": "postgres://db/x", c.env: c.value}
			for _, flag := range []bool{false, true} {
				var cfg Config
				var err error
				if flag {
					// The flag reads through the same parser.
					name := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(c.env, "TONEARM_")), "_", "-")
					delete(env, c.env)
					if c.value == "" || c.env == "TONEARM_PPROF_LISTEN" { // a variable only
						continue
					}
					cfg, err = load(t, env, "-"+name, c.value)
				} else {
					cfg, err = load(t, env)
				}
				if c.err != "" {
					if err == nil || err.Error() != c.err {
						t.Fatalf("flag %v: error %v, want %q", flag, err, c.err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("flag %v: %v", flag, err)
				}
				want := c.value
				if want == "" {
					want = defaults[c.env]
				}
				if got := c.want(cfg); got != want {
					t.Fatalf("flag %v: %s = %q, want %q", flag, c.env, got, want)
				}
			}
		})
	}
}

// The parsers on their own: what they accept is exactly their constants.
func TestModeParsers(t *testing.T) {
	for _, v := range []string{"open", "admin"} {
		if r, err := ParseRegistration(v); err != nil || string(r) != v {
			t.Errorf("ParseRegistration(%q) = %q, %v", v, r, err)
		}
	}
	for _, v := range []string{"token", "open", "off"} {
		if r, err := ParseClientRegistration(v); err != nil || string(r) != v {
			t.Errorf("ParseClientRegistration(%q) = %q, %v", v, r, err)
		}
	}
	for _, v := range []string{"optional", "required"} {
		if r, err := ParseAdminMFA(v); err != nil || string(r) != v {
			t.Errorf("ParseAdminMFA(%q) = %q, %v", v, r, err)
		}
	}
	for _, v := range []string{"", " open", "OPEN", "none"} {
		if _, err := ParseRegistration(v); err == nil {
			t.Errorf("ParseRegistration(%q) accepted", v)
		}
		if _, err := ParseClientRegistration(v); err == nil {
			t.Errorf("ParseClientRegistration(%q) accepted", v)
		}
		if _, err := ParseAdminMFA(v); err == nil {
			t.Errorf("ParseAdminMFA(%q) accepted", v)
		}
	}
}

// Setting gives a variable's value or its table default (tonearm health
// reads TONEARM_LISTEN this way).
func TestSetting(t *testing.T) {
	if got := Setting(func(string) string { return "" }, "TONEARM_LISTEN"); got != DefaultListen {
		t.Fatalf("Setting(TONEARM_LISTEN) unset = %q", got)
	}
	if got := Setting(func(k string) string { return map[string]string{"TONEARM_LISTEN": "0.0.0.0:1"}[k] }, "TONEARM_LISTEN"); got != "0.0.0.0:1" {
		t.Fatalf("Setting(TONEARM_LISTEN) = %q", got)
	}
}
