package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Node library openid-client (v6, from npm) as an unmodified relying
// party: testdata/openid-client/rp.mjs, its package.json and lock. The test
// setup installs it as it finds chromium: node and npm from the machine
// (.ci/run installs Debian's nodejs and npm), the packages with `npm ci`
// into a cache outside the repository keyed by the lock file, once (so is
// testdata/axe-core, which the page tests inject into Chromium). Under
// CI=true a missing node or npm fails the run; elsewhere the tests skip.

var harnessDir = filepath.Join("testdata", "openid-client")

// npmInstall is one harness's packages, installed once per test process.
type npmInstall struct {
	once sync.Once
	dir  string // holds node_modules
	err  error
}

var npmInstalls sync.Map // harness folder → *npmInstall

// openidClient returns the directory that holds the harness's
// node_modules, installing them on first use.
func openidClient(t *testing.T) string {
	t.Helper()
	return npmPackages(t, harnessDir, "openid-client")
}

// npmPackages returns the directory that holds the node_modules of the
// harness folder (testdata/…: a package.json and its package-lock.json),
// installing them on first use; probe is a package it must hold.
func npmPackages(t *testing.T, harness, probe string) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed: .ci/run installs Debian's nodejs and npm, and CI never skips the tests that use %s", tool, probe)
			}
			t.Skipf("%s is not installed (apt-get install nodejs npm): the tests that use %s are skipped", tool, probe)
		}
	}
	v, _ := npmInstalls.LoadOrStore(harness, &npmInstall{})
	i := v.(*npmInstall)
	i.once.Do(func() { i.dir, i.err = installNPM(harness, probe) })
	if i.err != nil {
		t.Fatalf("installing %s: %v", probe, i.err)
	}
	return i.dir
}

// installNPM runs `npm ci` into <user cache>/tonearm-tests/<harness>-<lock
// hash>, unless an earlier run did. It installs into a directory of its
// own and renames it into place, so that two test processes never share a
// half-written one.
func installNPM(harness, probe string) (string, error) {
	lock, err := os.ReadFile(filepath.Join(harness, "package-lock.json"))
	if err != nil {
		return "", err
	}
	manifest, err := os.ReadFile(filepath.Join(harness, "package.json"))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append(append(lock, 0), manifest...))
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "tonearm-tests", filepath.Base(harness)+"-"+hex.EncodeToString(sum[:8]))
	installed := filepath.Join(dir, "node_modules", probe, "package.json")
	if _, err := os.Stat(installed); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(filepath.Dir(dir), "install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	for name, body := range map[string][]byte{"package.json": manifest, "package-lock.json": lock} {
		if err := os.WriteFile(filepath.Join(work, name), body, 0o644); err != nil {
			return "", err
		}
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm ci: %v\n%s", err, out)
	}
	if err := os.Rename(work, dir); err != nil {
		// Another process got there first: use its copy.
		if _, statErr := os.Stat(installed); statErr == nil {
			return dir, nil
		}
		return "", err
	}
	return dir, nil
}

// openidClientRP is one run of rp.mjs: one sign-in.
type openidClientRP struct {
	t           *testing.T
	RedirectURI string
	AuthURL     string
	lines       chan map[string]any
}

// openidClientOutcome is the harness's last line.
type openidClientOutcome struct {
	OK               bool           `json:"ok"`
	Stage            string         `json:"stage"`
	Method           string         `json:"method"`
	Claims           map[string]any `json:"claims"`
	Userinfo         map[string]any `json:"userinfo"`
	AccessToken      bool           `json:"access_token"`
	IDToken          bool           `json:"id_token"`
	RefreshToken     bool           `json:"refresh_token"`
	Error            string         `json:"error"`
	ErrorDescription string         `json:"error_description"`
}

// freeLoopbackPort is a port on 127.0.0.1 nothing listened on a moment ago:
// the client is registered with its redirect URI before rp.mjs starts.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startOpenIDClient runs rp.mjs for issuer with args (see rp.mjs) on port
// and waits until its authorization URL is ready.
func startOpenIDClient(t *testing.T, issuer string, port int, args ...string) *openidClientRP {
	t.Helper()
	modules := filepath.Join(openidClient(t), "node_modules")
	// Node finds packages beside the script: a copy of it beside a link
	// to the cached node_modules.
	work := t.TempDir()
	script, err := os.ReadFile(filepath.Join(harnessDir, "rp.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "rp.mjs"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(modules, filepath.Join(work, "node_modules")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", append([]string{"rp.mjs", "--issuer", issuer, "--port", strconv.Itoa(port)}, args...)...)
	cmd.Dir = work
	cmd.Stderr = &testWriter{t: t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	rp := &openidClientRP{t: t, RedirectURI: fmt.Sprintf("http://127.0.0.1:%d/callback", port), lines: make(chan map[string]any, 4)}
	go func() {
		defer close(rp.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil {
				rp.lines <- line
			}
		}
	}()
	first := rp.next()
	if first["ready"] != true {
		t.Fatalf("openid-client did not start: %v", first)
	}
	rp.AuthURL, _ = first["authorization_url"].(string)
	return rp
}

func (rp *openidClientRP) next() map[string]any {
	rp.t.Helper()
	select {
	case line, ok := <-rp.lines:
		if !ok {
			rp.t.Fatal("openid-client ended without an answer")
		}
		return line
	case <-time.After(90 * time.Second):
		rp.t.Fatal("openid-client: no answer in 90 s")
	}
	return nil
}

// Outcome waits for the callback's outcome.
func (rp *openidClientRP) Outcome() openidClientOutcome {
	rp.t.Helper()
	b, _ := json.Marshal(rp.next())
	var o openidClientOutcome
	if err := json.Unmarshal(b, &o); err != nil {
		rp.t.Fatal(err)
	}
	return o
}

// testWriter logs what the harness writes to stderr.
type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("openid-client: %s", p)
	return len(p), nil
}

var _ io.Writer = (*testWriter)(nil)

// signInThroughOpenIDClient runs the browser's part of rp's sign-in with
// a cookie-keeping HTTP client as username (consent: the consent page is
// expected and accepted) and hands the authorization response to rp as a
// browser would: the query redirect followed, the form_post form posted.
// It returns rp's outcome.
func (s *server) signInThroughOpenIDClient(t *testing.T, rp *openidClientRP, username string, consent bool) openidClientOutcome {
	t.Helper()
	browser := s.browser()
	p := get(t, browser, rp.AuthURL)
	if p.status == http.StatusOK && strings.Contains(p.body, `name="password"`) {
		p = submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"username": username, "password": e2ePassword})
	}
	if consent {
		p = submit(t, browser, parseForm(t, p.body, p.url), map[string]string{"decision": "allow"})
	}
	switch {
	case p.location != nil && strings.HasPrefix(p.location.String(), rp.RedirectURI):
		get(t, http.DefaultClient, p.location.String())
	case p.status == http.StatusOK && strings.Contains(p.body, `id="form-post"`):
		f := parseForm(t, p.body, p.url)
		if !strings.HasPrefix(f.action, rp.RedirectURI) {
			t.Fatalf("form_post to %q, not the RP's %q", f.action, rp.RedirectURI)
		}
		submit(t, http.DefaultClient, f, nil)
	default:
		t.Fatalf("no authorization response for the RP: %d %v\n%s", p.status, p.location, p.body)
	}
	return rp.Outcome()
}
