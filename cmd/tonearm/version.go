package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/config"
)

// versionCommand prints the module version and the commit the binary was
// built from (Go records both in the binary).
func versionCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tonearm version", flag.ContinueOnError)
	var asJSON bool
	jsonFlag(fs, &asJSON)
	if err := parseCommand(fs, "version", args, posArg{}); err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, buildVersion())
	}
	fmt.Fprintln(stdout, versionLine())
	return nil
}

// versionJSON is what Go recorded in the binary: every key always there
// (docs/configuration.md lists them), empty when unknown (a build outside
// a git checkout has no commit or time).
type versionJSON struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Time      string `json:"time"`
	Modified  bool   `json:"modified"` // built with uncommitted changes
	GoVersion string `json:"goVersion"`
}

func buildVersion() versionJSON {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return versionJSON{Version: "unknown"}
	}
	v := versionJSON{Version: info.Main.Version, GoVersion: info.GoVersion}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func versionLine() string {
	v := buildVersion()
	switch {
	case v.GoVersion == "":
		return "tonearm (unknown version: built without module information)"
	case v.Commit == "":
		return fmt.Sprintf("tonearm %s (%s, commit unknown)", v.Version, v.GoVersion)
	}
	modified := ""
	if v.Modified {
		modified = ", with uncommitted changes"
	}
	return fmt.Sprintf("tonearm %s commit %s %s%s (%s)", v.Version, v.Commit, v.Time, modified, v.GoVersion)
}

// healthCommand asks a running server whether it is ready (GET /readyz):
// for container health checks, where the image has no shell or curl.
func healthCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tonearm health", flag.ContinueOnError)
	listen := config.Setting(getenv, "TONEARM_LISTEN")
	// The server's own address as a browser on this machine reaches it
	// (0.0.0.0 read as 127.0.0.1), as the issuer is derived.
	base, err := config.IssuerForListen(listen)
	if err != nil {
		base = "http://" + listen
	}
	target := fs.String("url", base+readyzPath, "the readiness URL to ask, or the server's base URL (then "+readyzPath+" is asked); default from TONEARM_LISTEN")
	var asJSON bool
	jsonFlag(fs, &asJSON)
	if err := parseCommand(fs, "health", args, posArg{}); err != nil {
		return err
	}
	u, err := url.Parse(*target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url must be an absolute http(s) URL such as %s", base+readyzPath)
	}
	if u.Path == "" || u.Path == "/" {
		// A base URL: the readiness check is at /readyz (an operator
		// pasting the issuer would otherwise get a bare 404).
		u.Path = readyzPath
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not reachable: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound && !strings.HasSuffix(u.Path, readyzPath):
		return fmt.Errorf("not ready: %s answered %s; the readiness check is at %s (give the server's base URL or the full URL, e.g. --url %s)",
			u.Redacted(), resp.Status, readyzPath, base+readyzPath)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("not ready: %s answered %s", u.Redacted(), resp.Status)
	}
	// Any page answers 200: only /readyz's own answer says the database
	// was reached (/healthz says the process is up, nothing more).
	var answer struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&answer); err != nil || answer.Status != "ready" {
		return fmt.Errorf("not ready: %s answered 200 but not tonearm's readiness answer ({\"status\": \"ready\"}); the readiness check is at %s (e.g. --url %s)",
			u.Redacted(), readyzPath, base+readyzPath)
	}
	if asJSON {
		// Only a ready server prints: any other answer is an error
		// (exit 1, message on standard error) as without --json.
		return printJSON(stdout, map[string]string{"status": "ready", "url": u.Redacted()})
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}

// readyzPath is the server's readiness check (web's health handler).
const readyzPath = "/readyz"
