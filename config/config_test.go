package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func load(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l := Flags(fs, func(k string) string { return env[k] }, ServerSettings, testParsers)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return l()
}

func TestDefaultsAndDevSecret(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite://" + filepath.Join(dir, "tonearm.db")
	c, err := load(t, map[string]string{"TONEARM_DATABASE_URL": db})
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != DefaultIssuer || c.Listen != DefaultListen || c.ListenBrainzURL != DefaultListenBrainzURL || c.Registration != "open" {
		t.Fatalf("defaults = %+v", c)
	}
	if c.SecretFile != filepath.Join(dir, "tonearm.db.secret") || len(c.Secret) < MinSecretLen {
		t.Fatalf("dev secret: file %q, %d bytes", c.SecretFile, len(c.Secret))
	}
	// Loading stores nothing yet (serve stores it once it holds its port).
	if _, err := os.Stat(c.SecretFile); !c.SecretFileNew || !os.IsNotExist(err) {
		t.Fatalf("secret file before WriteDevSecret: new %v, stat %v", c.SecretFileNew, err)
	}
	fresh := string(c.Secret)
	if err := WriteDevSecret(&c); err != nil || string(c.Secret) != fresh {
		t.Fatalf("WriteDevSecret: %v", err)
	}
	info, err := os.Stat(c.SecretFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode = %v, %v; want 0600", info.Mode(), err)
	}
	again, err := load(t, map[string]string{"TONEARM_DATABASE_URL": db})
	if err != nil || string(again.Secret) != string(c.Secret) {
		t.Fatal("the development secret changed on restart")
	}
	if err := os.Chmod(c.SecretFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, map[string]string{"TONEARM_DATABASE_URL": db}); err == nil || !strings.Contains(err.Error(), "readable by other users") {
		t.Fatalf("world-readable secret file accepted: %v", err)
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	secret := strings.Repeat("k", 32)
	c, err := load(t, map[string]string{"TONEARM_LISTEN": "127.0.0.1:1", "TONEARM_SECRET": secret,
		"TONEARM_DATABASE_URL": "postgres://db/x", "TONEARM_REGISTRATION": "admin"}, "-listen", "127.0.0.1:9999")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9999" || c.Registration != "admin" || string(c.Secret) != secret || c.SecretFile != "" {
		t.Fatalf("config = %+v", c)
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := load(t, map[string]string{"TONEARM_SECRET": strings.Repeat("k", 32), "TONEARM_TRUSTED_PROXIES": "127.0.0.1, 10.1.2.3/8 fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	if strings.Join(got, " ") != "127.0.0.1/32 10.0.0.0/8 fd00::/8" {
		t.Fatalf("trusted proxies = %v", got)
	}
	c, err = load(t, map[string]string{"TONEARM_SECRET": strings.Repeat("k", 32)})
	if err != nil || len(c.TrustedProxies) != 0 {
		t.Fatalf("default trusted proxies = %v, %v; want none", c.TrustedProxies, err)
	}
}

func TestInvalidConfiguration(t *testing.T) {
	secret := strings.Repeat("k", 32)
	cases := []struct {
		env     map[string]string
		mention string
	}{
		{map[string]string{"TONEARM_DATABASE_URL": "postgres://db/x"}, "TONEARM_SECRET is required with PostgreSQL"},
		{map[string]string{"TONEARM_DATABASE_URL": "postgres://db/x", "TONEARM_SECRET": "short"}, "TONEARM_SECRET must be at least 32 bytes"},
		{map[string]string{"TONEARM_DATABASE_URL": "mysql://db/x", "TONEARM_SECRET": secret}, "TONEARM_DATABASE_URL"},
		{map[string]string{"TONEARM_ISSUER": "id.example.org", "TONEARM_SECRET": secret}, "TONEARM_ISSUER"},
		{map[string]string{"TONEARM_ISSUER": "https://id.example.org/?x=1", "TONEARM_SECRET": secret}, "TONEARM_ISSUER"},
		{map[string]string{"TONEARM_LISTEN": "8080", "TONEARM_SECRET": secret}, "TONEARM_LISTEN"},
		{map[string]string{"TONEARM_LISTENBRAINZ_URL": "ftp://lb", "TONEARM_SECRET": secret}, "TONEARM_LISTENBRAINZ_URL"},
		{map[string]string{"TONEARM_REGISTRATION": "closed", "TONEARM_SECRET": secret}, "TONEARM_REGISTRATION"},
		{map[string]string{"TONEARM_TRUSTED_PROXIES": "10.0.0.0/8,proxy.example", "TONEARM_SECRET": secret}, "TONEARM_TRUSTED_PROXIES"},
		{map[string]string{"TONEARM_TRUSTED_PROXIES": "10.0.0.0/33", "TONEARM_SECRET": secret}, "TONEARM_TRUSTED_PROXIES"},
		{map[string]string{"TONEARM_SMTP_URL": "imap://mail.example?from=a@b.example", "TONEARM_SECRET": secret}, "TONEARM_SMTP_URL"},
		{map[string]string{"TONEARM_SITE_NAME": strings.Repeat("x", 61), "TONEARM_SECRET": secret}, "TONEARM_SITE_NAME"},
		{map[string]string{"TONEARM_SITE_NAME": "a\nb", "TONEARM_SECRET": secret}, "TONEARM_SITE_NAME"},
		{map[string]string{"TONEARM_THEME_DIR": "/nonexistent/theme", "TONEARM_SECRET": secret}, "TONEARM_THEME_DIR"},
		{map[string]string{"TONEARM_PREVIOUS_SECRETS": secret + ",short", "TONEARM_SECRET": secret}, "TONEARM_PREVIOUS_SECRETS: secret 2"},
		// Issue 35: a language no catalog has, or no language tag at all.
		{map[string]string{"TONEARM_DEFAULT_LANGUAGE": "eo", "TONEARM_SECRET": secret}, "TONEARM_DEFAULT_LANGUAGE"},
		{map[string]string{"TONEARM_DEFAULT_LANGUAGE": "tlh", "TONEARM_SECRET": secret}, "TONEARM_DEFAULT_LANGUAGE"},
		{map[string]string{"TONEARM_DEFAULT_LANGUAGE": "not a tag", "TONEARM_SECRET": secret}, "TONEARM_DEFAULT_LANGUAGE"},
	}
	for _, c := range cases {
		_, err := load(t, c.env)
		if err == nil || !strings.Contains(err.Error(), c.mention) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %v, want one line naming %s", c.env, err, c.mention)
		}
	}
}

// Item 13 of issue 31: with TONEARM_ISSUER unset, moving the listener moves
// the issuer (discovery would otherwise send browsers to :8080); a set
// issuer is kept as it is.
func TestIssuerFollowsListen(t *testing.T) {
	db := "sqlite://" + filepath.Join(t.TempDir(), "t.db")
	for _, c := range []struct {
		env        map[string]string
		args       []string
		issuer     string
		fromListen bool
	}{
		{map[string]string{}, nil, DefaultIssuer, true},
		{map[string]string{"TONEARM_LISTEN": "127.0.0.1:49153"}, nil, "http://127.0.0.1:49153", true},
		{map[string]string{}, []string{"-listen", "localhost:9090"}, "http://localhost:9090", true},
		{map[string]string{"TONEARM_LISTEN": "0.0.0.0:9091"}, nil, "http://127.0.0.1:9091", true},
		{map[string]string{"TONEARM_LISTEN": "[::]:9092"}, nil, "http://127.0.0.1:9092", true},
		{map[string]string{"TONEARM_LISTEN": ":9093"}, nil, "http://127.0.0.1:9093", true},
		{map[string]string{"TONEARM_LISTEN": "[::1]:9094"}, nil, "http://[::1]:9094", true},
		{map[string]string{"TONEARM_LISTEN": "127.0.0.1:49153", "TONEARM_ISSUER": "https://id.example"}, nil, "https://id.example", false},
		{map[string]string{"TONEARM_LISTEN": "127.0.0.1:49153"}, []string{"-issuer", "https://flag.example"}, "https://flag.example", false},
	} {
		c.env["TONEARM_DATABASE_URL"] = db
		got, err := load(t, c.env, c.args...)
		if err != nil {
			t.Fatalf("%v %v: %v", c.env, c.args, err)
		}
		if got.Issuer != c.issuer || got.IssuerFromListen != c.fromListen {
			t.Errorf("%v %v: issuer %q (from listen %v), want %q (%v)", c.env, c.args, got.Issuer, got.IssuerFromListen, c.issuer, c.fromListen)
		}
	}
	if _, err := load(t, map[string]string{"TONEARM_DATABASE_URL": db, "TONEARM_LISTEN": "nonsense"}); err == nil || !strings.Contains(err.Error(), "TONEARM_LISTEN") {
		t.Errorf("a bad listen address: %v, want an error naming TONEARM_LISTEN", err)
	}
}

func TestPreviousSecrets(t *testing.T) {
	current, a, b := strings.Repeat("c", 32), strings.Repeat("a", 40), strings.Repeat("b", 32)
	c, err := load(t, map[string]string{"TONEARM_SECRET": current, "TONEARM_PREVIOUS_SECRETS": a + ", " + b + " " + current})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.PreviousSecrets) != 2 || string(c.PreviousSecrets[0]) != a || string(c.PreviousSecrets[1]) != b {
		t.Fatalf("PreviousSecrets = %q, want the two earlier secrets without the current one", c.PreviousSecrets)
	}
	_, err = load(t, map[string]string{"TONEARM_SECRET": current, "TONEARM_PREVIOUS_SECRETS": "tooshortsecret"})
	if err == nil || strings.Contains(err.Error(), "tooshortsecret") {
		t.Fatalf("short previous secret: %v (want an error that does not echo it)", err)
	}
}

// Issue 35: TONEARM_DEFAULT_LANGUAGE defaults to English and accepts a
// language a catalog of the theme folder adds.
func TestDefaultLanguage(t *testing.T) {
	secret := strings.Repeat("k", 32)
	c, err := load(t, map[string]string{"TONEARM_SECRET": secret})
	if err != nil || c.DefaultLanguage != "en" {
		t.Fatalf("default: %q, %v", c.DefaultLanguage, err)
	}
	theme := t.TempDir()
	if err := os.MkdirAll(filepath.Join(theme, "locales"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(theme, "locales", "eo.json"), []byte(`{"Sign in": "Ensaluti"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err = load(t, map[string]string{"TONEARM_SECRET": secret, "TONEARM_DEFAULT_LANGUAGE": "eo", "TONEARM_THEME_DIR": theme}); err != nil || c.DefaultLanguage != "eo" {
		t.Fatalf("a theme's language: %q, %v", c.DefaultLanguage, err)
	}
	// Matched, not compared: a regional variant takes its language.
	if c, err = load(t, map[string]string{"TONEARM_SECRET": secret, "TONEARM_DEFAULT_LANGUAGE": "eo-US", "TONEARM_THEME_DIR": theme}); err != nil {
		t.Fatalf("eo-US: %q, %v", c.DefaultLanguage, err)
	}
}
