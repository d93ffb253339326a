package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
)

// usageError is a command line tonearm cannot read (an unknown command or
// flag, a missing argument): it exits 2, as the flag package and POSIX
// utilities do, so a script tells "you called it wrong" from "it failed"
// (exit 1).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// posArg is a command's one positional argument (the ID of "clients update
// ID"): name is how the help shows it, v receives it.
type posArg struct {
	name string
	v    *string
}

func isHelpArg(s string) bool { return s == "-h" || s == "-help" || s == "--help" || s == "help" }

// groupUsage answers a command group ("tonearm users") given no
// subcommand, -h or an unknown one: -h prints the usage lines and exits 0,
// the others are usage errors.
func groupUsage(args []string, usage string, stdout io.Writer) error {
	switch {
	case len(args) > 0 && isHelpArg(args[0]):
		fmt.Fprintln(stdout, usage)
		return flag.ErrHelp
	case len(args) == 0:
		return usageError{"a subcommand is required\n" + usage}
	default:
		return usageError{fmt.Sprintf("unknown subcommand %q\n%s", args[0], usage)}
	}
}

// parseAnyOrder parses fs with the flags and the positional argument in
// any order: Go's flag package stops at the first argument that is not a
// flag, so each such argument is taken and the rest parsed again.
// Everything after "--" is positional.
func parseAnyOrder(fs *flag.FlagSet, args []string, pos posArg) error {
	var got []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		if used := len(args) - fs.NArg(); used > 0 && args[used-1] == "--" {
			got = append(got, fs.Args()...)
			break
		}
		got = append(got, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(got) > 0 && pos.v != nil {
		*pos.v, got = got[0], got[1:]
	}
	if len(got) > 0 {
		return fmt.Errorf("unexpected argument %q", got[0])
	}
	return nil
}

// flagAsValue refuses a flag that takes a value followed by another flag
// of the command ("users create --username --json"): Go's flag package
// would take "--json" as the username, and a forgotten value would become
// a user named "--json". A value that starts with "-" but names no flag
// of the command is still taken, and --name=--json says it is meant.
func flagAsValue(fs *flag.FlagSet, args []string) error {
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			return nil // the rest is positional
		}
		name, inline := flagName(args[i])
		f := fs.Lookup(name)
		if name == "" || inline || f == nil {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			// -h and --help are every command's flags too, and "--" ends
			// the flags: neither is a value.
			if next, _ := flagName(args[i+1]); args[i+1] == "--" || next == "h" || next == "help" || (next != "" && fs.Lookup(next) != nil) {
				flagArg := "--" + name
				if len(name) == 1 {
					flagArg = "-" + name // -f
				}
				return fmt.Errorf("flag %s needs a value (%s is a flag; write %s=%s if it is the value)", flagArg, args[i+1], flagArg, args[i+1])
			}
		}
		i++ // its value
	}
	return nil
}

// flagName is the name of the flag arg gives ("" when arg is not a flag)
// and whether arg carries its value (--name=value).
func flagName(arg string) (string, bool) {
	if len(arg) < 2 || arg[0] != '-' {
		return "", false
	}
	n := strings.TrimPrefix(arg[1:], "-")
	if n == "" || n[0] == '-' || n[0] == '=' {
		return "", false
	}
	name, _, inline := strings.Cut(n, "=")
	return name, inline
}

// helpShown is -h: the command's help, which run prints to standard
// output (asked for, it is the answer, as "tonearm clients -h" is), exit 0.
type helpShown struct{ text string }

func (helpShown) Error() string { return flag.ErrHelp.Error() }
func (helpShown) Unwrap() error { return flag.ErrHelp }

// databaseNamed tells whether the command line or the environment names
// the database (rather than tonearm falling back to its default).
func databaseNamed(fs *flag.FlagSet, getenv func(string) string) bool {
	named := getenv("TONEARM_DATABASE_URL") != ""
	fs.Visit(func(f *flag.Flag) { named = named || f.Name == "database-url" })
	return named
}

// parseCommand parses a command's arguments. The help (-h), with the
// positional argument, comes back as helpShown; a parse error is returned
// once, as a usageError, for main to print (the flag package would print
// it and the whole usage first).
func parseCommand(fs *flag.FlagSet, name string, args []string, pos posArg) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		if pos.v != nil {
			fmt.Fprintf(fs.Output(), "usage: tonearm %s %s [flags]\n(%s and flags in any order; ", name, pos.name, pos.name)
		} else {
			fmt.Fprintf(fs.Output(), "usage: tonearm %s [flags]\n(", name)
		}
		fmt.Fprintln(fs.Output(), "every other setting comes from its TONEARM_* variable)")
		fs.PrintDefaults()
	}
	err := flagAsValue(fs, args)
	if err == nil {
		err = parseAnyOrder(fs, args, pos)
	}
	if errors.Is(err, flag.ErrHelp) {
		var help strings.Builder
		fs.SetOutput(&help)
		fs.Usage()
		return helpShown{help.String()}
	}
	if err != nil {
		return usageError{fmt.Sprintf("%v (tonearm %s -h lists its flags)", err, name)}
	}
	return nil
}

// requireExistingDatabase refuses to run an administration command on the
// default SQLite database when its file is not there: run outside the
// data folder, the command would otherwise create an empty tonearm.db and
// a new secret beside it, and act on that. Only serve and migrate create
// the default database; a file the operator named (named: in
// TONEARM_DATABASE_URL or --database-url, even sqlite://tonearm.db) is
// created by any command, as they asked.
func requireExistingDatabase(cfg config.Config, named bool) error {
	if named || cfg.DatabaseURL != config.DefaultDatabaseURL {
		return nil
	}
	loc, err := sqlstore.ParseURL(cfg.DatabaseURL)
	if err != nil || loc.Path == "" {
		return nil
	}
	if _, err := os.Stat(loc.Path); errors.Is(err, os.ErrNotExist) {
		abs, err := filepath.Abs(loc.Path)
		if err != nil {
			abs = loc.Path
		}
		return fmt.Errorf("no database at %s (the default %s, relative to this folder, as TONEARM_DATABASE_URL is unset): run the command in the folder that holds it, "+
			"name the database with TONEARM_DATABASE_URL or --database-url, or create it with \"tonearm migrate\" (or \"make run\")", abs, config.DefaultDatabaseURL)
	}
	return nil
}

// readFileFlag reads the file a flag names ("-": standard input), at most
// limit bytes. A file that cannot be read is a failure (exit 1), not a
// usage error: the command line was read; the message names the flag,
// the file and why.
func readFileFlag(flagName, path string, stdin io.Reader, limit int64) ([]byte, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fileFlagError(flagName, path, err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil {
		return nil, fileFlagError(flagName, path, err)
	}
	return b, nil
}

func fileFlagError(flagName, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is said once, below
	}
	if path == "-" {
		return fmt.Errorf("%s: cannot read standard input: %w", flagName, err)
	}
	return fmt.Errorf("%s: cannot read %s: %w", flagName, path, err)
}
