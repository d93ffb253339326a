package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// Found from outside: `health --url …/healthz` said ready with the
// database stopped, because any 200 counted. Only /readyz's own answer
// ({"status":"ready"}) is ready; another page answering 200 is an error
// naming /readyz.
func TestHealthWantsTheReadinessAnswer(t *testing.T) {
	base, _, stop := startServer(t, map[string]string{"TONEARM_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "t.db")})
	defer stop()
	health := func(u string) (string, error) {
		return run2(func(o, e io.Writer) error {
			return run(context.Background(), []string{"health", "--url", u}, envFunc(nil), nil, o, e)
		})
	}
	for _, path := range []string{"/healthz", "/.well-known/openid-configuration"} {
		if got, err := health(base + path); err == nil || !strings.Contains(err.Error(), "/readyz") {
			t.Errorf("health --url %s = %q %v, want an error naming /readyz", path, got, err)
		}
	}
	if got, err := health(base + "/readyz"); err != nil || strings.TrimSpace(got) != "ready" {
		t.Errorf("health --url /readyz = %q %v, want ready", got, err)
	}
}
