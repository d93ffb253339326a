package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/provider/audit"
)

// The administration commands are rows of one table (commands, below):
// a name, a positional argument, the services the command acts through,
// its flags and what it runs. One dispatcher (runTable) reads the command
// line and the configuration, opens the store and those services only,
// and runs the row; list and show print through one printer each.

// command is one row of the command table.
type command struct {
	// name as typed: "clients create", "apply".
	name string
	// pos is the positional argument in the help ("ID"); "" when there is none.
	pos string
	// missing is the usage error when the positional argument is left
	// out ("": it may be).
	missing string
	// needs are the services run acts through (0: the store alone).
	needs need
	// flags registers the flags of one run on fs and returns the run,
	// which reads them.
	flags func(fs *flag.FlagSet, in *input) runFunc
}

// runFunc runs a command once its flags are parsed and its services built.
type runFunc func(ctx context.Context, s *services, in *input) error

// input is one run of a command: its arguments and standard streams.
type input struct {
	// id is the positional argument (or the flag that may give it).
	id     string
	asJSON bool
	// given are the parsed flags: given.Visit lists those on the command line.
	given *flag.FlagSet
	// check checks the arguments further before anything is opened (nil: no check).
	check  func() error
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
}

// groupUsages are the usage lines of the command groups.
var groupUsages = map[string]string{
	"users":               usersUsage,
	"clients":             clientsUsage,
	"apis":                apisUsage,
	"connectors":          connectorsUsage,
	"registration-tokens": registrationTokensUsage,
	"keys":                "usage: tonearm keys list|rotate [--json]",
}

// commands is the table, by name.
var commands = tableOf(userCommands, clientCommands, keyCommands, apiCommands, connectorCommands, registrationTokenCommands, configCommands)

func tableOf(groups ...[]command) map[string]command {
	out := map[string]command{}
	for _, rows := range groups {
		for _, c := range rows {
			out[c.name] = c
		}
	}
	return out
}

// inTable tells whether the command line's first word names a group of
// the table ("clients") or a command of its own in it ("apply").
func inTable(word string) bool {
	_, isGroup := groupUsages[word]
	_, isCommand := commands[word]
	return isGroup || isCommand && !strings.Contains(word, " ")
}

// runTable runs a command of the table: args[0] is a group ("clients")
// followed by its subcommand, or a command of its own ("apply").
func runTable(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	name, rest := args[0], args[1:]
	if usage, isGroup := groupUsages[name]; isGroup {
		if len(rest) == 0 || isHelpArg(rest[0]) {
			return groupUsage(rest, usage, stdout)
		}
		if _, ok := commands[name+" "+rest[0]]; !ok {
			return groupUsage(rest, usage, stdout)
		}
		name, rest = name+" "+rest[0], rest[1:]
	}
	c := commands[name]
	in := &input{getenv: getenv, stdin: stdin, stdout: stdout}
	var run runFunc
	pos := posArg{}
	if c.pos != "" {
		pos = posArg{c.pos, &in.id}
	}
	cfg, err := loadConfigWith(c.name, pos, rest, getenv, stderr, func(fs *flag.FlagSet) {
		in.given = fs
		run = c.flags(fs, in)
	}, func() error {
		if c.missing != "" && in.id == "" {
			return usageError{c.missing}
		}
		if in.check != nil {
			return in.check()
		}
		return nil
	}, config.DatabaseSettings)
	if err != nil {
		return err
	}
	log := commandLogger(cfg, stderr)
	s, err := openServices(ctx, cfg, log, options{}, c.needs)
	if err != nil {
		return err
	}
	defer s.store.Close()
	log.Info("database open", "command", c.name, "database", cfg.Database.Dialect)
	// Whatever the command records, the operator did it.
	return run(audit.WithOrigin(ctx, audit.Origin{Actor: "cli"}), s, in)
}

// openApp reads the configuration of a command that takes no positional
// argument and opens every service an administration command uses (not
// the server); the caller closes s.store.
func openApp(ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer, flags func(*flag.FlagSet), ready func() error) (*services, error) {
	cfg, err := loadConfigWith(name, posArg{}, args, getenv, stderr, flags, ready, config.DatabaseSettings)
	if err != nil {
		return nil, err
	}
	return openServices(ctx, cfg, commandLogger(cfg, stderr), options{}, needEverything)
}

// jsonRun registers --json and returns run: the flags of a command that
// has no others.
func jsonRun(run runFunc) func(fs *flag.FlagSet, in *input) runFunc {
	return func(fs *flag.FlagSet, in *input) runFunc {
		jsonFlag(fs, &in.asJSON)
		return run
	}
}

// idFlag lets --id give the positional argument too.
func idFlag(fs *flag.FlagSet, in *input, usage string) {
	fs.StringVar(&in.id, "id", "", usage)
}

// deleteRow is a command that deletes (or revokes) what its positional
// argument pos names (--id may name it too; idUsage is that flag's help):
// del deletes it, done is the text printed after (of the ID).
func deleteRow(name, pos, idUsage string, needs need, del func(ctx context.Context, s *services, id string) error, done string) command {
	return command{name: name, pos: pos, missing: "usage: tonearm " + name + " " + pos + " [--json]", needs: needs,
		flags: func(fs *flag.FlagSet, in *input) runFunc {
			idFlag(fs, in, idUsage)
			jsonFlag(fs, &in.asJSON)
			return func(ctx context.Context, s *services, in *input) error {
				if err := del(ctx, s, in.id); err != nil {
					return err
				}
				return in.deleted(done, in.id)
			}
		}}
}

// show prints what a command created, showed or changed: v with --json,
// else the text.
func (in *input) show(v any, format string, args ...any) error {
	if in.asJSON {
		return printJSON(in.stdout, v)
	}
	_, err := fmt.Fprintf(in.stdout, format, args...)
	return err
}

// deleted prints what a delete or revoke printed: {} with --json, else the text.
func (in *input) deleted(format string, args ...any) error {
	if in.asJSON {
		return deletedJSON(in.stdout)
	}
	_, err := fmt.Fprintf(in.stdout, format, args...)
	return err
}

// printList prints a list: a JSON array of toJSON of each item with
// --json, else a table of columns with the cells of each item.
func printList[T any](in *input, items []T, toJSON func(T) any, columns []string, cells func(T) []string) error {
	if in.asJSON {
		out := make([]any, len(items))
		for i, it := range items {
			out[i] = toJSON(it)
		}
		return printJSON(in.stdout, out)
	}
	tw := tabwriter.NewWriter(in.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(columns, "\t"))
	for _, it := range items {
		fmt.Fprintln(tw, strings.Join(cells(it), "\t"))
	}
	return tw.Flush()
}

// printFields prints one record as "label: value" lines, the values
// aligned.
func printFields(w io.Writer, fields [][2]string) error {
	for _, f := range fields {
		if _, err := fmt.Fprintf(w, "%-16s%s\n", f[0]+":", f[1]); err != nil {
			return err
		}
	}
	return nil
}
