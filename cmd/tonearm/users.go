package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web/jsonapi"
)

const usersUsage = `usage: tonearm users create --username U --password-stdin [--role admin|user|guest] [--json]
       tonearm users list [--username PREFIX] [--email PREFIX] [--role R] [--limit N] [--json]
       tonearm users show USER [--json]
       tonearm users update USER [--role R] [--email E] [--name N] [--email-verified true|false] [--language TAG] [--json]
       tonearm users disable|enable|delete USER [--json]
       tonearm users set-password USER --password-stdin [--json]
(USER is a username or a user ID)`

// userCommands are the rows of tonearm users: accounts managed from the
// command line with the rules of the admin API (the last active admin
// stays, disabling ends sessions and tokens, deleting takes everything).
var userCommands = []command{
	{name: "users create", needs: needAccounts, flags: usersCreate},
	{name: "users list", needs: needAccounts, flags: usersList},
	userRow("show", func(fs *flag.FlagSet) userAction { return showUser }),
	userRow("disable", func(fs *flag.FlagSet) userAction { return setDisabled(true) }),
	userRow("enable", func(fs *flag.FlagSet) userAction { return setDisabled(false) }),
	userRow("delete", func(fs *flag.FlagSet) userAction {
		return func(ctx context.Context, s *services, in *input, u storage.User) error {
			if err := s.accounts.DeleteUser(ctx, u.ID); err != nil {
				return err
			}
			return in.deleted("deleted %s (%s) with their sessions, consents and tokens\n", u.Username, u.ID)
		}
	}),
	userRow("set-password", usersSetPassword),
	userRow("update", usersUpdate),
}

// userAction is what a command about one user does to it.
type userAction func(ctx context.Context, s *services, in *input, u storage.User) error

// userRow is a command about one user, named by ID or username; every
// one prints, so each takes --json (the user as it is after the change;
// {} once deleted). flags registers its other flags.
func userRow(sub string, flags func(fs *flag.FlagSet) userAction) command {
	return command{name: "users " + sub, pos: "USER", missing: "usage: tonearm users " + sub + " USER (a username or a user ID)", needs: needAccounts,
		flags: func(fs *flag.FlagSet, in *input) runFunc {
			jsonFlag(fs, &in.asJSON)
			act := flags(fs)
			return func(ctx context.Context, s *services, in *input) error {
				u, err := findUser(ctx, s.accounts, in.id)
				if err != nil {
					return err
				}
				return act(ctx, s, in, u)
			}
		}}
}

func usersCreate(fs *flag.FlagSet, in *input) runFunc {
	var username, role string
	var fromStdin bool
	fs.StringVar(&username, "username", "", "the new user's name")
	fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	fs.StringVar(&role, "role", "user", "admin, user or guest")
	jsonFlag(fs, &in.asJSON)
	in.check = func() error {
		switch {
		case username == "":
			return usageError{"--username is required"}
		case !fromStdin:
			return usageError{"--password-stdin is required: passwords are never taken from the command line"}
		case !accounts.ValidRole(role):
			return usageError{"--role must be admin, user or guest"}
		}
		return nil
	}
	return func(ctx context.Context, s *services, in *input) error {
		password, err := readPassword(in.stdin)
		if err != nil {
			return err
		}
		u, err := s.accounts.CreateUser(ctx, username, password, role)
		if err != nil {
			return err
		}
		return in.show(jsonapi.ToAdminUserJSON(u), "%s\n", u.ID)
	}
}

func usersList(fs *flag.FlagSet, in *input) runFunc {
	var f storage.UserFilter
	fs.StringVar(&f.UsernamePrefix, "username", "", "only usernames starting so (any letter case)")
	fs.StringVar(&f.EmailPrefix, "email", "", "only emails starting so (any letter case)")
	fs.StringVar(&f.Role, "role", "", "only this role: admin, user or guest")
	fs.IntVar(&f.Limit, "limit", 100, "at most this many (1–1000)")
	fs.BoolVar(&in.asJSON, "json", false, "print JSON")
	in.check = func() error {
		// An unknown role would list nobody and exit 0, as if there
		// were no such users: refused as users update refuses it.
		if f.Role != "" && !accounts.ValidRole(f.Role) {
			return usageError{"--role must be admin, user or guest"}
		}
		return nil
	}
	return func(ctx context.Context, s *services, in *input) error {
		if f.Limit < 1 || f.Limit > 1000 {
			return errors.New("--limit must be 1 to 1000")
		}
		users, err := s.accounts.ListUsers(ctx, f)
		if err != nil {
			return err
		}
		return printList(in, users, func(u storage.User) any { return jsonapi.ToAdminUserJSON(u) },
			[]string{"ID", "USERNAME", "ROLE", "EMAIL", "STATE"}, func(u storage.User) []string {
				return []string{u.ID, u.Username, u.Role, u.Email, userState(u)}
			})
	}
}

func userState(u storage.User) string {
	if u.Disabled {
		return "disabled"
	}
	return "active"
}

// showUser prints one user (users show, and users update after the change).
func showUser(_ context.Context, _ *services, in *input, u storage.User) error {
	if in.asJSON {
		return printJSON(in.stdout, jsonapi.ToAdminUserJSON(u))
	}
	return printFields(in.stdout, [][2]string{
		{"id", u.ID}, {"username", u.Username}, {"role", u.Role}, {"state", userState(u)},
		{"email", fmt.Sprintf("%s (verified: %v)", u.Email, u.EmailVerified)}, {"name", u.Name},
		{"language", u.Language}, {"listenbrainz", u.ListenBrainzName}, {"created", u.CreatedAt.UTC().Format("2006-01-02 15:04:05Z")},
	})
}

// setDisabled is users disable and users enable.
func setDisabled(disabled bool) userAction {
	return func(ctx context.Context, s *services, in *input, u storage.User) error {
		u, err := s.accounts.AdminUpdate(ctx, u.ID, accounts.AdminChange{Disabled: &disabled})
		if err != nil {
			return err
		}
		verb := "enabled"
		if disabled {
			verb = "disabled"
		}
		return in.show(jsonapi.ToAdminUserJSON(u), "%s %s\n", u.Username, verb)
	}
}

func usersSetPassword(fs *flag.FlagSet) userAction {
	var fromStdin bool
	fs.BoolVar(&fromStdin, "password-stdin", false, "read the new password from the first line of standard input")
	return func(ctx context.Context, s *services, in *input, u storage.User) error {
		if !fromStdin {
			return usageError{"--password-stdin is required: passwords are never taken from the command line"}
		}
		password, err := readPassword(in.stdin)
		if err != nil {
			return err
		}
		if err := s.accounts.AdminSetPassword(ctx, u.ID, password); err != nil {
			return err
		}
		if in.asJSON {
			// Read again: the change moved its updatedAt.
			if u, err = s.accounts.GetUser(ctx, u.ID); err != nil {
				return err
			}
		}
		return in.show(jsonapi.ToAdminUserJSON(u), "password of %s set; every session and token of theirs ended\n", u.Username)
	}
}

func usersUpdate(fs *flag.FlagSet) userAction {
	var role, email, name, verified, language string
	fs.StringVar(&role, "role", "", "admin, user or guest")
	fs.StringVar(&email, "email", "", `email address ("" clears it)`)
	fs.StringVar(&name, "name", "", `display name ("" clears it)`)
	fs.StringVar(&verified, "email-verified", "", "true or false")
	fs.StringVar(&language, "language", "", `language of pages and mails, a BCP 47 tag with a catalog ("" clears it)`)
	return func(ctx context.Context, s *services, in *input, u storage.User) error {
		var c accounts.AdminChange
		var ferr error
		in.given.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "role":
				c.Role = &role
			case "email":
				c.Profile.Email = optional(email)
			case "name":
				c.Profile.Name = optional(name)
			case "language":
				c.Profile.Language = optional(language)
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
		u, err := s.accounts.AdminUpdate(ctx, u.ID, c)
		if err != nil {
			return err
		}
		return showUser(ctx, s, in, u)
	}
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
