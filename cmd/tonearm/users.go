package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web/jsonapi"
)

const usersUsage = `usage: tonearm users create --username U --password-stdin [--role admin|user|guest] [--json]
       tonearm users list [--username PREFIX] [--email PREFIX] [--role R] [--limit N] [--json]
       tonearm users show USER [--json]
       tonearm users update USER [--role R] [--email E] [--name N] [--email-verified true|false] [--json]
       tonearm users disable|enable|delete USER [--json]
       tonearm users set-password USER --password-stdin [--json]
(USER is a username or a user ID)`

// usersCommand manages accounts from the command line, with the rules of
// the admin API (the last active admin stays, disabling ends sessions and
// tokens, deleting takes everything).
func usersCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelpArg(args[0]) {
		return groupUsage(args, usersUsage, stdout)
	}
	ctx = audit.WithOrigin(ctx, audit.Origin{Actor: "cli"})
	sub, rest := args[0], args[1:]
	switch sub {
	case "create":
		var username, role string
		var fromStdin, asJSON bool
		a, err := openApp(ctx, "users create", rest, getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&username, "username", "", "the new user's name")
			fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
			fs.StringVar(&role, "role", "user", "admin, user or guest")
			jsonFlag(fs, &asJSON)
		}, func() error {
			switch {
			case username == "":
				return usageError{"--username is required"}
			case !fromStdin:
				return usageError{"--password-stdin is required: passwords are never taken from the command line"}
			case !accounts.ValidRole(role):
				return usageError{"--role must be admin, user or guest"}
			}
			return nil
		})
		if err != nil {
			return err
		}
		defer a.store.Close()
		password, err := readPassword(stdin)
		if err != nil {
			return err
		}
		u, err := a.accounts.CreateUser(ctx, username, password, role)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(stdout, jsonapi.ToAdminUserJSON(u))
		}
		fmt.Fprintln(stdout, u.ID)
		return nil
	case "list":
		var f storage.UserFilter
		var asJSON bool
		a, err := openApp(ctx, "users list", rest, getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&f.UsernamePrefix, "username", "", "only usernames starting so (any letter case)")
			fs.StringVar(&f.EmailPrefix, "email", "", "only emails starting so (any letter case)")
			fs.StringVar(&f.Role, "role", "", "only this role: admin, user or guest")
			fs.IntVar(&f.Limit, "limit", 100, "at most this many (1–1000)")
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		}, func() error {
			// An unknown role would list nobody and exit 0, as if there
			// were no such users: refused as users update refuses it.
			if f.Role != "" && !accounts.ValidRole(f.Role) {
				return usageError{"--role must be admin, user or guest"}
			}
			return nil
		})
		if err != nil {
			return err
		}
		defer a.store.Close()
		if f.Limit < 1 || f.Limit > 1000 {
			return errors.New("--limit must be 1 to 1000")
		}
		users, err := a.accounts.ListUsers(ctx, f)
		if err != nil {
			return err
		}
		if asJSON {
			out := make([]jsonapi.UserJSON, len(users))
			for i, u := range users {
				out[i] = jsonapi.ToAdminUserJSON(u)
			}
			return json.NewEncoder(stdout).Encode(out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSERNAME\tROLE\tEMAIL\tSTATE")
		for _, u := range users {
			state := "active"
			if u.Disabled {
				state = "disabled"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Username, u.Role, u.Email, state)
		}
		return tw.Flush()
	case "show", "disable", "enable", "delete", "set-password", "update":
		return userCommand(ctx, sub, rest, getenv, stdin, stdout, stderr)
	default:
		return groupUsage(args, usersUsage, stdout)
	}
}

// userCommand runs a subcommand about one user.
func userCommand(ctx context.Context, sub string, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	var who string
	var asJSON, fromStdin bool
	var role, email, name, verified string
	var given *flag.FlagSet
	a, err := openAppArg(ctx, "users "+sub, posArg{"USER", &who}, args, getenv, stderr, func(fs *flag.FlagSet) {
		given = fs
		// Every subcommand prints: --json on each (the user as it is
		// after the change; {} once deleted).
		jsonFlag(fs, &asJSON)
		switch sub {
		case "set-password":
			fs.BoolVar(&fromStdin, "password-stdin", false, "read the new password from the first line of standard input")
		}
		if sub == "update" {
			fs.StringVar(&role, "role", "", "admin, user or guest")
			fs.StringVar(&email, "email", "", `email address ("" clears it)`)
			fs.StringVar(&name, "name", "", `display name ("" clears it)`)
			fs.StringVar(&verified, "email-verified", "", "true or false")
		}
	}, requireArg(&who, "usage: tonearm users "+sub+" USER (a username or a user ID)"))
	if err != nil {
		return err
	}
	defer a.store.Close()
	u, err := findUser(ctx, a.accounts, who)
	if err != nil {
		return err
	}
	switch sub {
	case "show":
	case "disable", "enable":
		disabled := sub == "disable"
		if u, err = a.accounts.AdminUpdate(ctx, u.ID, accounts.AdminChange{Disabled: &disabled}); err != nil {
			return err
		}
		if asJSON {
			return printJSON(stdout, jsonapi.ToAdminUserJSON(u))
		}
		fmt.Fprintf(stdout, "%s %sd\n", u.Username, sub)
		return nil
	case "delete":
		if err := a.accounts.DeleteUser(ctx, u.ID); err != nil {
			return err
		}
		if asJSON {
			return deletedJSON(stdout)
		}
		fmt.Fprintf(stdout, "deleted %s (%s) with their sessions, consents and tokens\n", u.Username, u.ID)
		return nil
	case "set-password":
		if !fromStdin {
			return usageError{"--password-stdin is required: passwords are never taken from the command line"}
		}
		password, err := readPassword(stdin)
		if err != nil {
			return err
		}
		if err := a.accounts.AdminSetPassword(ctx, u.ID, password); err != nil {
			return err
		}
		if asJSON {
			// Read again: the change moved its updatedAt.
			if u, err = a.accounts.GetUser(ctx, u.ID); err != nil {
				return err
			}
			return printJSON(stdout, jsonapi.ToAdminUserJSON(u))
		}
		fmt.Fprintf(stdout, "password of %s set; every session and token of theirs ended\n", u.Username)
		return nil
	case "update":
		var c accounts.AdminChange
		var ferr error
		given.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "role":
				c.Role = &role
			case "email":
				c.Profile.Email = optional(email)
			case "name":
				c.Profile.Name = optional(name)
			case "email-verified":
				v := verified == "true"
				if verified != "true" && verified != "false" {
					ferr = errors.New("--email-verified must be true or false")
				}
				c.EmailVerified = &v
			}
		})
		if ferr != nil {
			return ferr
		}
		if u, err = a.accounts.AdminUpdate(ctx, u.ID, c); err != nil {
			return err
		}
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(jsonapi.ToAdminUserJSON(u))
	}
	state := "active"
	if u.Disabled {
		state = "disabled"
	}
	fmt.Fprintf(stdout, "id:             %s\nusername:       %s\nrole:           %s\nstate:          %s\nemail:          %s (verified: %v)\nname:           %s\nlistenbrainz:   %s\ncreated:        %s\n",
		u.ID, u.Username, u.Role, state, u.Email, u.EmailVerified, u.Name, u.ListenBrainzName, u.CreatedAt.UTC().Format("2006-01-02 15:04:05Z"))
	return nil
}

// optional is a profile field set from a flag: "" clears it.
func optional(v string) accounts.Optional {
	if v == "" {
		return accounts.Optional{Set: true, Null: true}
	}
	return accounts.Value(v)
}

// findUser reads a user by ID or, failing that, by username.
func findUser(ctx context.Context, acc *accounts.Service, who string) (storage.User, error) {
	if u, err := acc.GetUser(ctx, who); err == nil {
		return u, nil
	} else if !errors.Is(err, accounts.ErrUserNotFound) {
		return storage.User{}, err
	}
	u, err := acc.GetUserByUsername(ctx, who)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, accounts.ErrUserNotFound) {
		return storage.User{}, fmt.Errorf("no user with the ID or username %q", who)
	}
	return u, err
}

// readPassword reads a password from the first line of r.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
