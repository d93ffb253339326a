package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tonearm binary, built once per test binary from this module.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func tonearmBinary(t *testing.T) string {
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "tonearm-load-test"); buildErr != nil {
			return
		}
		build := exec.Command("go", "build", "-o", filepath.Join(binDir, "tonearm"), "./cmd/tonearm")
		build.Dir = filepath.Join("..", "..")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = &buildError{err, string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("building tonearm: %v", buildErr)
	}
	return filepath.Join(binDir, "tonearm")
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// testServer is a real tonearm on a free loopback port.
type testServer struct {
	issuer string
	env    []string
	bin    string
	serve  *exec.Cmd
}

// newTestServer prepares a tonearm on dbURL; cli runs its commands, start
// serves.
func newTestServer(t *testing.T, dbURL string) *testServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	issuer := "http://" + addr
	return &testServer{issuer: issuer, bin: tonearmBinary(t),
		env: append(os.Environ(), "TONEARM_DATABASE_URL="+dbURL, "TONEARM_ISSUER="+issuer, "TONEARM_LISTEN="+addr,
			"TONEARM_SECRET=0123456789abcdef0123456789abcdef-load-test")}
}

func (s *testServer) cli(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Env, cmd.Stdin = s.env, strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if e, ok := err.(*exec.ExitError); ok {
			stderr = e.Stderr
		}
		t.Fatalf("tonearm %v: %v\n%s", args, err, stderr)
	}
	return string(out)
}

func (s *testServer) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s.serve = exec.CommandContext(ctx, s.bin, "serve")
	s.serve.Env = s.env
	if err := s.serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = s.serve.Wait() })
	for i := 0; ; i++ {
		if resp, err := http.Get(s.issuer + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if i > 300 {
			t.Fatal("tonearm did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
