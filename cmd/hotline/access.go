package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/ban"
	"github.com/hotline12345/hotline/web"
	"github.com/hotline12345/hotline/web/client"
)

const usersUsage = `usage: hotline users [--api URL] <command>

commands:
  list                         the accounts
  add NAME --role ROLES [--agent ID] [--organizer ID] [--password-stdin]
                               ROLES: agent, visitor, supervisor, ops, admin, organizer, comma
                               separated; the password is asked for at a terminal, else the
                               account has none and works with tokens only
  update NAME [--role ROLES] [--agent ID] [--organizer ID]
  passwd NAME [--password-stdin]
  disable NAME                 the account and all its tokens stop working
  enable NAME
` + apiHelp

const tokensUsage = `usage: hotline tokens <command>

commands:
  create --role ROLES [--expires 90d] [--user NAME] [--name TEXT] [--config FILE]
                     make a token and print it alone on standard output. With
                     $HOTLINE_TOKEN set (and no --config) through the API, as an admin;
                     else directly in the store of the server whose configuration
                     --config names (defaults when absent), on the server's host:
                     the way to the first or a lost admin token
  list [--all]       tokens in use (--all: also expired and revoked ones)
  revoke ID
` + apiHelp

const bansUsage = `usage: hotline bans [--api URL] <command>

commands:
  list               sources and users refused after repeated failures
  lift SUBJECT       an address, an IPv6 /64, or user:SERVICE:NAME
` + apiHelp

// usersCmd runs "hotline users".
func usersCmd(a *cli, args []string) error {
	cmd, rest, err := a.command("users", usersUsage, args)
	if err != nil || cmd == "" {
		return err
	}
	switch cmd {
	case "list":
		return a.listUsers(rest)
	case "add":
		return a.addUser(rest)
	case "update":
		return a.updateUser(rest)
	case "passwd":
		return a.passwd(rest)
	case "disable", "enable":
		return a.disableUser(cmd, rest)
	}
	return usageError("users: unknown command %q\n%s", cmd, usersUsage)
}

// command reads the global flags and the command's name; "" when it
// printed the usage for help.
// withDefault puts def in front of args that name none of commands (or
// help), so that "trunks --json" runs "trunks list --json" and "trunks
// --api URL events" still runs events.
func withDefault(args []string, def string, commands ...string) []string {
	for i := 0; i < len(args); i++ {
		switch arg := args[i]; {
		case arg == "--api" || arg == "-api":
			i++ // its value
		case arg == "-h" || arg == "--help" || arg == "-help":
			return args
		case strings.HasPrefix(arg, "-"):
			// A flag before any command is the default command's.
			return append([]string{def}, args...)
		case arg == "help" || slices.Contains(commands, arg):
			return args
		default:
			return args // an unknown command: said so by the caller
		}
	}
	return append([]string{def}, args...)
}

func (a *cli) command(name, usage string, args []string) (string, []string, error) {
	fs := a.flags(name)
	fs.Usage = func() { fmt.Fprint(a.stderr, usage) }
	if err := parseFlags(fs, args); err != nil {
		return "", nil, err
	}
	if fs.NArg() == 0 {
		return "", nil, exitError{2, usage}
	}
	if fs.Arg(0) == "help" {
		fmt.Fprint(a.stdout, usage)
		return "", nil, nil
	}
	return fs.Arg(0), fs.Args()[1:], nil
}

func (a *cli) listUsers(args []string) error {
	fs := a.flags("list")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	users, err := client.All[auth.User](context.Background(), c, "/api/v1/users?limit=500")
	if err != nil {
		return err
	}
	var tb table
	tb.add("NAME", "ROLES", "AGENT", "ORGANIZER", "PASSWORD", "STATE", "CREATED")
	for _, u := range users {
		state, pw := "enabled", "no"
		if u.Disabled {
			state = "disabled"
		}
		if u.HasPassword {
			pw = "yes"
		}
		tb.add(u.Name, joinRoles(u.Roles), dash(u.AgentID), dash(u.OrganizerID), pw, state, u.CreatedAt.Format(time.DateTime))
	}
	return tb.write(a.stdout)
}

func (a *cli) addUser(args []string) error {
	fs := a.flags("add")
	roles := fs.String("role", "", "the account's roles, comma separated")
	agent := fs.String("agent", "", "the agent the account is (roles agent and visitor)")
	organizer := fs.String("organizer", "", "the organizer the account acts for (role organizer)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	name, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	rs, err := parseRoles(*roles)
	if err != nil {
		return err
	}
	pw, err := a.newPassword(*fromStdin, "add", false)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var u auth.User
	if err := c.Do(context.Background(), http.MethodPost, "/api/v1/users", web.UserRequest{Name: name, Roles: rs, AgentID: *agent, OrganizerID: *organizer, Password: pw}, &u); err != nil {
		return err
	}
	how := "with a password"
	if !u.HasPassword {
		how = "without a password (tokens only)"
	}
	_, err = fmt.Fprintf(a.stdout, "account %s added, %s, %s\n", u.Name, joinRoles(u.Roles), how)
	return err
}

func (a *cli) updateUser(args []string) error {
	fs := a.flags("update")
	roles := fs.String("role", "", "the account's roles, comma separated")
	agent := fs.String("agent", "", "the agent the account is")
	organizer := fs.String("organizer", "", "the organizer the account acts for")
	name, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	var patch web.UserPatch
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "role":
			rs, perr := parseRoles(*roles)
			if perr != nil {
				err = perr
			}
			patch.Roles = &rs
		case "agent":
			patch.AgentID = agent
		case "organizer":
			patch.OrganizerID = organizer
		}
	})
	if err != nil {
		return err
	}
	if patch.Roles == nil && patch.AgentID == nil && patch.OrganizerID == nil {
		return usageError("update: nothing to change: give --role, --agent or --organizer")
	}
	return a.patchUser(name, patch, "updated")
}

func (a *cli) disableUser(cmd string, args []string) error {
	name, err := parseWithID(a.flags(cmd), args)
	if err != nil {
		return err
	}
	disabled := cmd == "disable"
	return a.patchUser(name, web.UserPatch{Disabled: &disabled}, cmd+"d")
}

func (a *cli) patchUser(name string, patch web.UserPatch, done string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	var u auth.User
	if err := c.Do(context.Background(), http.MethodPatch, "/api/v1/users/"+url.PathEscape(name), patch, &u); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "account %s %s\n", u.Name, done)
	return err
}

func (a *cli) passwd(args []string) error {
	fs := a.flags("passwd")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	name, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	pw, err := a.newPassword(*fromStdin, "passwd", true)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if err := c.Do(context.Background(), http.MethodPut, "/api/v1/users/"+url.PathEscape(name)+"/password", web.PasswordSet{Password: pw}, nil); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "account %s: password set\n", name)
	return err
}

// newPassword reads a new password: from standard input with
// --password-stdin, else asked twice at a terminal. Without either it is
// "" when not required.
func (a *cli) newPassword(fromStdin bool, cmd string, required bool) (string, error) {
	if fromStdin {
		return passwordLine(a.stdin, cmd)
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		if required {
			return "", usageError("%s: no terminal to ask the password at: give --password-stdin", cmd)
		}
		return "", nil
	}
	pw, err := askPassword(f, a.stderr, "new password: ")
	if err != nil {
		return "", err
	}
	again, err := askPassword(f, a.stderr, "again: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the two passwords differ")
	}
	return pw, nil
}

// askPassword reads a password at the terminal without echoing it.
func askPassword(tty *os.File, prompt io.Writer, text string) (string, error) {
	fmt.Fprint(prompt, text)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return string(b), nil
}

// loginCmd runs "hotline login": a token for an account's password,
// printed alone for `export HOTLINE_TOKEN=$(hotline login --user NAME)`.
func loginCmd(a *cli, args []string) error {
	fs := a.flags("login")
	name := fs.String("user", "", "the account")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return usageError("login: --user is required")
	}
	var pw string
	var err error
	if *fromStdin {
		pw, err = passwordLine(a.stdin, "login")
	} else if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		pw, err = askPassword(f, a.stderr, "password for "+*name+": ")
	} else {
		err = usageError("login: no terminal to ask the password at: give --password-stdin")
	}
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	c.Token = ""
	var tok web.TokenReply
	if err := c.Do(context.Background(), http.MethodPost, "/api/v1/login", web.LoginRequest{User: *name, Password: pw}, &tok); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "logged in as %s (%s) until %s\n", tok.User, joinRoles(tok.Roles), tok.ExpiresAt.Format(time.RFC3339))
	_, err = fmt.Fprintln(a.stdout, tok.Secret)
	return err
}

// logoutCmd revokes $HOTLINE_TOKEN.
func logoutCmd(a *cli, args []string) error {
	if err := noArgs(a.flags("logout"), args); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if err := c.Do(context.Background(), http.MethodPost, "/api/v1/logout", nil, nil); err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, "the token is revoked")
	return err
}

// whoamiCmd says who $HOTLINE_TOKEN acts as.
func whoamiCmd(a *cli, args []string) error {
	if err := noArgs(a.flags("whoami"), args); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var me web.Me
	if err := c.Do(context.Background(), http.MethodGet, "/api/v1/me", nil, &me); err != nil {
		return err
	}
	agent := ""
	if me.AgentID != "" {
		agent = ", agent " + me.AgentID
	}
	if me.OrganizerID != "" {
		agent += ", organizer " + me.OrganizerID
	}
	_, err = fmt.Fprintf(a.stdout, "%s: %s%s; token %s until %s\n", me.User, joinRoles(me.Roles), agent, me.TokenID, me.ExpiresAt.Format(time.RFC3339))
	return err
}

// tokensCmd runs "hotline tokens".
func tokensCmd(a *cli, args []string) error {
	cmd, rest, err := a.command("tokens", tokensUsage, args)
	if err != nil || cmd == "" {
		return err
	}
	switch cmd {
	case "create":
		return a.createToken(rest)
	case "list":
		return a.listTokens(rest)
	case "revoke":
		return a.revokeToken(rest)
	}
	return usageError("tokens: unknown command %q\n%s", cmd, tokensUsage)
}

func (a *cli) createToken(args []string) error {
	fs := a.flags("create")
	roles := fs.String("role", "", "the token's roles, comma separated")
	expires := fs.String("expires", "90d", "how long the token lasts: 90d, 12h, 30m")
	name := fs.String("name", "", "what the token is for (prometheus, ci, ...)")
	forUser := fs.String("user", "", "the account the token acts for; none when empty")
	cfgPath := fs.String("config", "", "the server's configuration file: make the token in its store directly")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	rs, err := parseRoles(*roles)
	if err != nil {
		return err
	}
	ttl, err := web.ParseTTL(*expires)
	if err != nil {
		return usageError("create: --expires %v", err)
	}
	spec := auth.TokenSpec{User: *forUser, Name: *name, Roles: rs, TTL: ttl}
	var secret string
	var tok auth.Token
	configSet := false
	fs.Visit(func(f *flag.Flag) { configSet = configSet || f.Name == "config" })
	if envToken(a.env) == "" || configSet {
		spec.By = "local:" + localUser()
		if secret, tok, err = mintLocal(*cfgPath, spec); err != nil {
			return err
		}
	} else {
		c, err := a.client()
		if err != nil {
			return err
		}
		var reply web.TokenReply
		req := web.TokenRequest{User: spec.User, Name: spec.Name, Roles: rs, ExpiresIn: *expires}
		if err := c.Do(context.Background(), http.MethodPost, "/api/v1/tokens", req, &reply); err != nil {
			return err
		}
		secret, tok = reply.Secret, reply.Token
	}
	fmt.Fprintf(a.stderr, "token %s: %s, until %s\n", tok.ID, joinRoles(tok.Roles), tok.ExpiresAt.Format(time.RFC3339))
	_, err = fmt.Fprintln(a.stdout, secret)
	return err
}

// localUser names who made a token on the server's host, for the record.
func localUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

func (a *cli) listTokens(args []string) error {
	fs := a.flags("list")
	all := fs.Bool("all", false, "also expired and revoked tokens")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	toks, err := client.All[auth.Token](context.Background(), c, fmt.Sprintf("/api/v1/tokens?limit=500&all=%t", *all))
	if err != nil {
		return err
	}
	var tb table
	tb.add("ID", "USER", "NAME", "ROLES", "EXPIRES", "STATE")
	now := time.Now()
	for _, t := range toks {
		state := "in use"
		switch {
		case t.RevokedAt != nil:
			state = "revoked by " + t.RevokedBy
		case !now.Before(t.ExpiresAt):
			state = "expired"
		}
		tb.add(t.ID, dash(t.User), dash(t.Name), joinRoles(t.Roles), t.ExpiresAt.Format(time.DateTime), state)
	}
	return tb.write(a.stdout)
}

func (a *cli) revokeToken(args []string) error {
	id, err := parseWithID(a.flags("revoke"), args)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if err := c.Do(context.Background(), http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(id), nil, nil); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "token %s revoked\n", id)
	return err
}

// bansCmd runs "hotline bans".
func bansCmd(a *cli, args []string) error {
	cmd, rest, err := a.command("bans", bansUsage, args)
	if err != nil || cmd == "" {
		return err
	}
	switch cmd {
	case "list":
		fs := a.flags("list")
		if err := noArgs(fs, rest); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		bans, err := client.All[ban.Ban](context.Background(), c, "/api/v1/bans?limit=500")
		if err != nil {
			return err
		}
		if len(bans) == 0 {
			_, err := fmt.Fprintln(a.stdout, "no bans")
			return err
		}
		var tb table
		tb.add("SUBJECT", "SERVICE", "FAILURES", "SINCE", "UNTIL")
		for _, b := range bans {
			tb.add(b.Subject, b.Service, fmt.Sprint(b.Failures), b.Since.Format(time.DateTime), b.Until.Format(time.DateTime))
		}
		return tb.write(a.stdout)
	case "lift":
		subject, err := parseWithID(a.flags("lift"), rest)
		if err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		// The subject's "/" and ":" stay as they are: the route takes
		// the rest of the path.
		if err := c.Do(context.Background(), http.MethodDelete, "/api/v1/bans/"+subject, nil, nil); err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "ban of %s lifted\n", subject)
		return err
	}
	return usageError("bans: unknown command %q\n%s", cmd, bansUsage)
}

// noArgs parses flags that take no positional arguments.
func noArgs(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("%s takes no arguments, got %q", fs.Name(), fs.Args())
	}
	return nil
}

func parseRoles(s string) ([]auth.Role, error) {
	var rs []auth.Role
	for name := range strings.SplitSeq(s, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		r, err := auth.ParseRole(name)
		if err != nil {
			return nil, usageError("--role: %s", strings.TrimPrefix(err.Error(), "auth: invalid: "))
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil, usageError("--role is required: agent, visitor, supervisor, ops or admin, comma separated")
	}
	return rs, nil
}

func joinRoles(rs []auth.Role) string {
	ss := make([]string, len(rs))
	for i, r := range rs {
		ss[i] = string(r)
	}
	return strings.Join(ss, ",")
}

// explain adds to an API error what the user can do about it; env is the
// environment the command ran in.
func explain(err error, env func(string) (string, bool)) string {
	var e *client.Error
	if !errors.As(err, &e) {
		return ""
	}
	switch e.Status {
	case http.StatusUnauthorized:
		if envToken(env) == "" {
			return "no token: set HOTLINE_TOKEN to one (hotline login --user NAME, or hotline tokens create --role ROLE on the server's host)"
		}
		return "HOTLINE_TOKEN is not a token this hotline takes: log in again (hotline login) or ask an admin for one"
	case http.StatusForbidden:
		if strings.Contains(e.Msg, "needs the role") {
			return "HOTLINE_TOKEN lacks that role: an admin can make a token with it (hotline tokens create --role ROLE)"
		}
	}
	return ""
}
