// Command tonearm is the tonearm OpenID Connect provider: the server and its
// administration commands. Wiring happens here and nowhere else.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/templates"
	"github.com/tonearm-idp/tonearm/web"
)

const usage = `tonearm — OpenID Connect provider for ListenBrainz apps

Usage:
  tonearm serve [flags]            run the server (migrates the schema first)
  tonearm migrate [flags]          create or upgrade the database schema
  tonearm users create|list|show|update|disable|enable|delete|set-password
  tonearm clients create|update|rotate-secret|show|list|delete
  tonearm apis create|update|list|show|delete
  tonearm connectors create|update|list|delete   sign-in through MusicBrainz or an OpenID provider
  tonearm registration-tokens create|list|revoke initial access tokens for dynamic client registration
  tonearm keys list|rotate
  tonearm reseal [--json]          seal stored secrets again under TONEARM_SECRET (after rotating it)
  tonearm apply -f FILE [--dry-run] [--prune] [--json]   make the clients and APIs match a YAML or JSON file
  tonearm export [--json]          print the clients and APIs as apply reads them (no secrets)
  tonearm health [--url URL] [--json]   exit 0 when a running server answers /readyz (container health checks)
  tonearm version [--json]         the module version and commit

"tonearm COMMAND -h" shows a command's flags. Every command that prints takes
--json (what it created, showed or changed; {} after a delete). Flags and the ID a command takes
come in any order ("clients update shop --name Shop" or "clients update --name
Shop shop"). Every command reads the TONEARM_* variables; "tonearm serve -h"
lists them all as flags. Only serve and migrate create the database: the other
commands refuse to run on the default sqlite://tonearm.db (TONEARM_DATABASE_URL
unset) when it is not there.

Exit status: 0 success (and -h), 1 failure, 2 a command line tonearm cannot
read (unknown command, subcommand or flag, a flag without its value, missing
argument or required flag).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	reportError(os.Stderr, err)
	os.Exit(exitCode(err))
}

// reportError prints run's error once (nothing for -h): a usage error
// keeps its lines (usage lines are meant to be read as lines), any other
// error is put on one line.
func reportError(w io.Writer, err error) {
	var usageErr usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &usageErr):
		fmt.Fprintln(w, "tonearm: "+usageErr.msg)
	default:
		fmt.Fprintln(w, "tonearm: "+oneLine(err.Error()))
	}
}

// exitCode is 0 for success and for -h (the help was asked for and
// printed), 2 for a command line tonearm cannot read (usageError), 1 for
// any other failure.
func exitCode(err error) int {
	var usageErr usageError
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usageErr):
		return 2
	}
	return 1
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// run runs a command line; it is main without the process around it, so
// tests can drive it. A command's help (-h) goes to standard output, as
// tonearm -h and a group's help do.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdin, stdout, stderr)
	var help helpShown
	if errors.As(err, &help) {
		fmt.Fprint(stdout, help.text)
	}
	return err
}

// dispatch runs the command args names.
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"a command is required: serve, migrate, users, clients, apis, connectors, registration-tokens, keys, reseal, apply, export, health or version"}
	}
	cmd, rest := args[0], args[1:]
	if inTable(cmd) {
		return runTable(ctx, args, getenv, stdin, stdout, stderr)
	}
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stderr)
	case "migrate":
		return migrate(ctx, rest, getenv, stdout, stderr)
	case "health":
		return healthCommand(ctx, rest, getenv, stdout, stderr)
	case "version":
		return versionCommand(rest, stdout, stderr)
	case "reseal":
		return resealCommand(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown command %q (tonearm -h lists the commands)", cmd)}
	}
}

func newLogger(w io.Writer) *slog.Logger {
	if f, ok := w.(*os.File); ok {
		if info, err := f.Stat(); err == nil && info.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, nil))
		}
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// loadConfig parses a command's flags together with the environment: the
// command's own flags, then the settings of scope (serve and migrate take
// every setting; the other commands the database URL and -v, their
// secret from TONEARM_SECRET only).
func loadConfig(name string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet), scope config.Scope) (config.Config, error) {
	return loadConfigWith(name, posArg{}, args, getenv, stderr, extra, nil, scope)
}

// loadConfigWith is loadConfig for a command with a positional argument
// (pos) and checks of its arguments (ready, optional), made before anything
// is read or written.
func loadConfigWith(name string, pos posArg, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet), ready func() error, scope config.Scope) (config.Config, error) {
	fs := flag.NewFlagSet("tonearm "+name, flag.ContinueOnError)
	if extra != nil {
		extra(fs)
	}
	var verbose bool
	if scope == config.DatabaseSettings {
		fs.BoolVar(&verbose, "v", false, "log what the command does to standard error")
	}
	load := config.Flags(fs, getenv, scope, configParsers)
	if err := parseCommand(fs, name, args, pos); err != nil {
		return config.Config{}, err
	}
	if ready != nil {
		if err := ready(); err != nil {
			return config.Config{}, err
		}
	}
	cfg, err := load()
	cfg.Verbose = verbose
	if err == nil && scope == config.DatabaseSettings {
		err = requireExistingDatabase(cfg, databaseNamed(fs, getenv))
	}
	if err == nil && name != "serve" {
		// serve stores a new development secret only once it holds its
		// port (see serve); every other command stores it now.
		err = config.WriteDevSecret(&cfg)
	}
	return cfg, err
}

// configParsers read the settings whose grammar belongs to the packages
// that use them (config imports neither): the database URL as
// storage/sqlstore opens it, the theme folder as templates renders it
// (buildWith reads it again to build the pages).
var configParsers = config.Parsers{
	Database: func(url string) (config.Database, error) {
		loc, err := sqlstore.ParseURL(url)
		return config.Database{Dialect: string(loc.Dialect), Path: loc.Path}, err
	},
	Theme: func(dir string) error {
		_, err := templates.LoadTheme(dir)
		return err
	},
	Language: func(tag, themeDir string) error {
		_, err := locale.Load(tag, templates.LocalesDir(themeDir))
		return err
	},
}

// commandLogger is the logger of an administration command: its log lines
// only with -v.
func commandLogger(cfg config.Config, stderr io.Writer) *slog.Logger {
	if !cfg.Verbose {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return newLogger(stderr)
}

// openStore connects and migrates.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (*sqlstore.Store, error) {
	store, err := sqlstore.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("TONEARM_DATABASE_URL: %w", err)
	}
	applied, err := store.Migrate(ctx)
	if err != nil {
		store.Close()
		return nil, err
	}
	if len(applied) > 0 {
		log.Info("database schema migrated", "versions", applied)
	}
	return store, nil
}

// listeners are the ports serve holds: the API's, and the metrics' and
// the profiler's when they are configured (nil otherwise).
type listeners struct {
	api, metrics, pprof net.Listener
}

func (l listeners) Close() {
	for _, ln := range []net.Listener{l.api, l.metrics, l.pprof} {
		if ln != nil {
			ln.Close()
		}
	}
}

// listen binds every port of cfg. Bind first: a port in use stops start-up
// before anything is built or logged, so a server that never served logs
// no one-time security code (issue 31, item 17).
func listen(cfg *config.Config) (l listeners, err error) {
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if l.api, err = net.Listen("tcp", cfg.Listen); err != nil {
		return l, fmt.Errorf("TONEARM_LISTEN: %w", err)
	}
	if _, port, _ := net.SplitHostPort(cfg.Listen); cfg.IssuerFromListen && port == "0" {
		// The kernel chose the port: the issuer follows the bound address.
		if cfg.Issuer, err = config.IssuerForListen(l.api.Addr().String()); err != nil {
			return l, err
		}
	}
	if cfg.MetricsListen != "" {
		if l.metrics, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return l, fmt.Errorf("TONEARM_METRICS_LISTEN: %w", err)
		}
	}
	if addr := cfg.PprofListen; addr != "" {
		// Like the metrics listener: a busy port stops start-up with one
		// line, rather than an ERROR logged while serving without it.
		if l.pprof, err = net.Listen("tcp", addr); err != nil {
			return l, fmt.Errorf("TONEARM_PPROF_LISTEN: %w", err)
		}
	}
	return l, nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	log := newLogger(stderr)
	cfg, err := loadConfig("serve", args, getenv, stderr, nil, config.ServerSettings)
	if err != nil {
		return err
	}
	l, err := listen(&cfg)
	if err != nil {
		return err
	}
	defer l.Close()
	// Only now, with every port held, is a new development secret stored:
	// a start that failed on a busy port leaves no tonearm.db.secret.
	if err := config.WriteDevSecret(&cfg); err != nil {
		return err
	}
	if cfg.SecretFile != "" {
		log.Warn("development setup: TONEARM_SECRET is unset, using the generated secret in "+cfg.SecretFile+"; set TONEARM_SECRET and use PostgreSQL in production",
			"secret_file", cfg.SecretFile)
	}
	a, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.store.Close()

	if a.securityCode != "" {
		// With no admin yet, a one-time code lets the first admin
		// be created over the API (createUser with role admin and this
		// securityCode). It dies when used and at restart.
		log.Warn("no admin exists: one-time security code for creating the first admin", "security_code", a.securityCode)
	}
	if l.pprof != nil {
		// Profiling for operators (go tool pprof), on its own listener so it
		// is never exposed with the API. Off unless asked for.
		psrv := servePprof(l.pprof, log)
		defer psrv.Close()
	}
	if a.metrics != nil && l.metrics != nil {
		msrv := &http.Server{Handler: a.metrics.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = msrv.Serve(l.metrics) }()
		defer msrv.Close()
		log.Info("metrics on a separate listener", "listen", l.metrics.Addr().String())
	}
	go a.keys.Run(ctx, 30*time.Second)
	go housekeeping(ctx, a.store, cfg.EventRetention, log)
	go a.backchannel.Run(ctx, time.Second)
	return serveUntilDone(ctx, a, l.api, cfg, log)
}

// serveUntilDone serves the API on ln until ctx ends, then drains.
func serveUntilDone(ctx context.Context, a *app, ln net.Listener, cfg config.Config, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("tonearm serving", "listen", ln.Addr().String(), "issuer", cfg.Issuer, "database", cfg.Database.Dialect)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Unready first, so the load balancer stops sending new requests, then
	// drain what is in flight.
	a.health.Drain()
	log.Info("shutting down: /readyz now answers 503; finishing in-flight requests", "drain_delay", drainDelay.String())
	select {
	case <-time.After(drainDelay):
	case err := <-errc:
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// drainDelay is how long a stopping server keeps serving while /readyz
// already answers 503: long enough for a load balancer checking every
// second or two to take it out of rotation.
const drainDelay = 3 * time.Second

// housekeeping sweeps expired rows every few minutes until ctx ends, so
// tables stay bounded under steady traffic.
func housekeeping(ctx context.Context, store *sqlstore.Store, retention time.Duration, log *slog.Logger) {
	tick := time.NewTicker(5 * time.Minute)
	defer tick.Stop()
	for {
		sweepExpired(ctx, store, time.Now(), retention, log)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sweepBatch bounds each delete, so no statement holds many row locks.
const sweepBatch = 500

// staleLoginFailures sweeps sign-in counters whose window is over: their
// latest failure is older than any window.
func staleLoginFailures(store *sqlstore.Store) func(context.Context, time.Time, int) (int64, error) {
	return func(ctx context.Context, now time.Time, limit int) (int64, error) {
		return store.DeleteStaleLoginFailures(ctx, now.Add(-web.LoginWindow), limit)
	}
}

// sweepExpired deletes expired sessions, codes and tokens in batches and
// reports how many rows of each it removed.
func sweepExpired(ctx context.Context, store *sqlstore.Store, now time.Time, retention time.Duration, log *slog.Logger) map[string]int64 {
	out := map[string]int64{}
	for _, t := range []struct {
		name  string
		clean func(context.Context, time.Time, int) (int64, error)
	}{
		{"sessions", store.DeleteExpiredSessions},
		{"oauth2 requests", store.DeleteExpiredOAuthRequests},
		{"password resets", store.DeleteExpiredPasswordResets},
		{"email verifications", store.DeleteExpiredEmailVerifications},
		{"device codes", store.DeleteExpiredDeviceCodes},
		{"passkey challenges", store.DeleteExpiredPasskeyChallenges},
		{"sign-in interactions", store.DeleteExpiredInteractions},
		{"sign-in counters", staleLoginFailures(store)},
		{"used assertion ids", store.DeleteExpiredUses},
		{"audit events", func(ctx context.Context, now time.Time, limit int) (int64, error) {
			return store.DeleteEventsBefore(ctx, now.Add(-retention), limit)
		}},
	} {
		for ctx.Err() == nil {
			n, err := t.clean(ctx, now, sweepBatch)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("cleanup failed", "table", t.name, "err", err)
				}
				break
			}
			out[t.name] += n
			if n < sweepBatch {
				break
			}
		}
		if out[t.name] > 0 {
			log.Info("expired rows deleted", "table", t.name, "rows", out[t.name])
		}
	}
	return out
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	// Like every other command: the answer on standard output, log lines
	// only with -v (docs/configuration.md, Command line).
	var verbose, asJSON bool
	cfg, err := loadConfig("migrate", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&verbose, "v", false, "log what the command does to standard error")
		jsonFlag(fs, &asJSON)
	}, config.ServerSettings)
	if err != nil {
		return err
	}
	cfg.Verbose = verbose
	log := commandLogger(cfg, stderr)
	store, err := sqlstore.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("TONEARM_DATABASE_URL: %w", err)
	}
	defer store.Close()
	applied, err := store.Migrate(ctx)
	if err != nil {
		return err
	}
	log.Info("migrate finished", "applied", applied)
	if asJSON { // {"applied": [versions…]}, [] when the schema was up to date
		if applied == nil {
			applied = []int{}
		}
		return printJSON(stdout, struct {
			Applied []int `json:"applied"`
		}{applied})
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "schema is up to date")
	} else {
		fmt.Fprintf(stdout, "applied migrations %v\n", applied)
	}
	return nil
}

func servePprof(ln net.Listener, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Warn("profiling endpoint enabled", "listen", ln.Addr().String())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv
}
