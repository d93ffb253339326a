package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"time"
)

// versionCommand prints the module version and the commit the binary was
// built from (Go records both in the binary).
func versionCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tonearm version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, versionLine())
	return nil
}

func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "tonearm (unknown version: built without module information)"
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var commit, when, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", with uncommitted changes"
			}
		}
	}
	if commit == "" {
		return fmt.Sprintf("tonearm %s (%s, commit unknown)", version, info.GoVersion)
	}
	return fmt.Sprintf("tonearm %s commit %s %s%s (%s)", version, commit, when, modified, info.GoVersion)
}

// healthCommand asks a running server whether it is ready (GET /readyz):
// for container health checks, where the image has no shell or curl.
func healthCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tonearm health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := getenv("TONEARM_LISTEN")
	if listen == "" {
		listen = "127.0.0.1:8080"
	}
	target := fs.String("url", "http://"+listen+"/readyz", "the readiness URL to ask (default from TONEARM_LISTEN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not reachable: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("not ready: " + resp.Status)
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}
