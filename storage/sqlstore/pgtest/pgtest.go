// Package pgtest gives tests a real, throwaway PostgreSQL database.
//
// With TONEARM_TEST_DATABASE_URL set, each test gets a fresh database created
// on that server and dropped afterwards. Without it, the first test that asks
// starts a private cluster (initdb into a temporary directory, listening on
// 127.0.0.1 only) that lives as long as the test binary. When no PostgreSQL
// binaries are found the test is skipped, except under CI=true, where that is
// a failure: the suite must run there.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// EnvURL names the variable that points the tests at an existing server.
const EnvURL = "TONEARM_TEST_DATABASE_URL"

var (
	startOnce sync.Once
	serverURL string
	startErr  error
	cluster   *exec.Cmd
	dataRoot  string
)

// Main runs the package's tests and then stops the cluster it started, if
// any. Use it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if templateName != "" {
		_ = adminExec("DROP DATABASE IF EXISTS " + templateName + " WITH (FORCE)")
	}
	stop()
	return code
}

// URL returns the URL of a new, empty database that is dropped when the test
// ends.
func URL(t testing.TB) string {
	t.Helper()
	return newDatabase(t, "")
}

// Migrated returns the URL of a new database made as a copy of one that
// migrate brought up to date once per test binary (CREATE DATABASE …
// TEMPLATE): migrating every test's database was most of what the
// database server did for the end-to-end suite. migrate must close every
// connection it opened (a template in use cannot be copied).
func Migrated(t testing.TB, migrate func(ctx context.Context, url string) error) string {
	t.Helper()
	templateOnce.Do(func() {
		dbURL := newDatabase(nopCleanup{t}, "")
		u, err := url.Parse(dbURL)
		if err != nil {
			templateErr = err
			return
		}
		templateName = strings.TrimPrefix(u.Path, "/")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		templateErr = migrate(ctx, dbURL)
	})
	if templateErr != nil {
		t.Fatalf("PostgreSQL: migrating the template database: %v", templateErr)
	}
	return newDatabase(t, templateName)
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// nopCleanup keeps the template database past the test that made it (the
// cluster, or Main, drops it).
type nopCleanup struct{ testing.TB }

func (nopCleanup) Cleanup(func()) {}

// newDatabase creates a database (a copy of template, when given) that is
// dropped when the test ends, and returns its URL.
func newDatabase(t testing.TB, template string) string {
	t.Helper()
	startOnce.Do(func() { serverURL, startErr = server() })
	if startErr != nil {
		if errors.Is(startErr, errNoBinaries) && os.Getenv("CI") != "true" {
			t.Skipf("PostgreSQL: %v (set %s or install PostgreSQL)", startErr, EnvURL)
		}
		t.Fatalf("PostgreSQL: %v", startErr)
	}
	name := "tonearm_test_" + randomHex(8)
	create := "CREATE DATABASE " + name
	if template != "" {
		create += " TEMPLATE " + template
	}
	if err := adminExec(create); err != nil {
		t.Fatalf("PostgreSQL: create database: %v", err)
	}
	t.Cleanup(func() { _ = adminExec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// adminExec runs one statement on the server's administration database.
func adminExec(statement string) error {
	admin, err := sql.Open("pgx", serverURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = admin.ExecContext(ctx, statement)
	return err
}

var errNoBinaries = errors.New("initdb and postgres not found")

func server() (string, error) {
	if u := os.Getenv(EnvURL); u != "" {
		return u, nil
	}
	bin, err := findBinaries()
	if err != nil {
		return "", err
	}
	return startCluster(bin)
}

func findBinaries() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	// Debian and Ubuntu keep the server binaries off PATH.
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errNoBinaries
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// startCluster runs initdb and postgres. PostgreSQL refuses to run as root,
// so as root it runs them as the postgres (or nobody) user.
func startCluster(bin string) (string, error) {
	c, err := newCluster(bin, false)
	if c != nil {
		dataRoot = c.root
		cluster = c.cmd
	}
	if err != nil {
		return "", err
	}
	return c.url("postgres"), nil
}

// Cluster is a PostgreSQL server of one test's own, which the test may
// stop and start again (on the same port, with the same data) to see what
// an outage does.
type Cluster struct {
	bin, root, data string
	port            int
	cred            *syscall.Credential
	cmd             *exec.Cmd
	// durable commits survive the server's crash (synchronous_commit=on);
	// the shared cluster trades that for speed.
	durable bool
}

// Dedicated starts a cluster for t alone and removes it when t ends. It is
// skipped (or fails under CI=true) as URL is when PostgreSQL is missing;
// with TONEARM_TEST_DATABASE_URL set it still needs the binaries, since
// that server cannot be stopped.
func Dedicated(t testing.TB) *Cluster {
	t.Helper()
	bin, err := findBinaries()
	if err != nil {
		if os.Getenv("CI") != "true" {
			t.Skipf("PostgreSQL: %v", err)
		}
		t.Fatalf("PostgreSQL: %v", err)
	}
	c, err := newCluster(bin, true)
	if c != nil {
		t.Cleanup(func() {
			c.Stop()
			_ = os.RemoveAll(c.root)
		})
	}
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	admin, err := sql.Open("pgx", c.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE tonearm"); err != nil {
		t.Fatalf("PostgreSQL: create database: %v", err)
	}
	return c
}

// URL is the cluster's database for the test.
func (c *Cluster) URL() string { return c.url("tonearm") }

func (c *Cluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// Stop stops the server as "pg_ctl stop -m immediate" does (SIGQUIT):
// every connection is cut at once, nothing is shut down cleanly.
func (c *Cluster) Stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGQUIT)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	c.cmd = nil
}

// Start starts the stopped server again on the same port and data (it
// recovers from the immediate stop) and waits until it answers.
func (c *Cluster) Start() error {
	if c.cmd != nil {
		return errors.New("pgtest: the cluster is running")
	}
	return c.start()
}

func newCluster(bin string, durable bool) (*Cluster, error) {
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	parent := ""
	if cred != nil {
		// The postgres user must be able to reach the directory: $TMPDIR
		// may be private to root, /tmp is not.
		parent = os.TempDir()
		if info, err := os.Stat("/tmp"); err == nil && info.Mode().Perm()&0o001 != 0 {
			parent = "/tmp"
		}
	}
	root, err := os.MkdirTemp(parent, "tonearm-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, root: root, data: filepath.Join(root, "data"), cred: cred, durable: durable}
	if cred != nil {
		if err := os.Chown(root, int(cred.Uid), int(cred.Gid)); err != nil {
			return c, err
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	// The postgres user may not be allowed into the test's working
	// directory (a root-only checkout): run from the cluster's own.
	initdb.Dir = root
	if out, err := initdb.CombinedOutput(); err != nil {
		return c, fmt.Errorf("initdb: %v: %s", err, out)
	}
	if c.port, err = freePort(); err != nil {
		return c, err
	}
	return c, c.start()
}

func (c *Cluster) start() error {
	commit := "off"
	if c.durable {
		// fsync may stay off: an immediate stop is not a crash of the
		// machine, and what was written survives in the page cache.
		commit = "on"
	}
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), "-D", c.data,
		"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(c.port),
		"-c", "unix_socket_directories="+c.root,
		"-c", "fsync=off", "-c", "synchronous_commit="+commit, "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=64MB")
	// The cluster dies with the test binary even if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGKILL}
	cmd.Dir = c.root
	logFile, err := os.OpenFile(filepath.Join(c.root, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	if c.cred != nil {
		_ = logFile.Chown(int(c.cred.Uid), int(c.cred.Gid))
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	c.cmd = cmd
	db, err := sql.Open("pgx", c.url("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(c.root, "postgres.log"))
			return fmt.Errorf("postgres did not start: %v: %s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and neither a postgres nor a nobody user exists")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func stop() {
	if cluster != nil && cluster.Process != nil {
		// SIGQUIT is PostgreSQL's immediate shutdown: the data is throwaway.
		_ = cluster.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { _ = cluster.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cluster.Process.Kill()
		}
	}
	if dataRoot != "" && strings.Contains(dataRoot, "tonearm-pg-") {
		_ = os.RemoveAll(dataRoot)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
