package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/web"
	"github.com/hotline12345/hotline/web/client"
)

const agentsUsage = `usage: hotline agents [--api URL] <command>

commands:
  list                   the agents and their states
  show ID                one agent and its day so far, as JSON
  add --id ID --name NAME --sip-user USER --categories emergency,general
      (--password PASSWORD | --password-stdin)
  update ID [--name NAME] [--sip-user USER] [--categories LIST]
      [--password PASSWORD | --password-stdin]
  delete ID
  pause ID --reason TEXT  (during a call: when it ends)
  resume ID              (also cancels a pause waiting for a call's end)
  force ID --state available|paused|offline [--reason TEXT]
                         set the state when the hotline's account of it is
                         wrong (supervisor, admin); kept with who did it

` + apiHelp

const queueUsage = `usage: hotline queue [--api URL]`

// defaultAPI is where "hotline serve" listens for HTTP by default.
const defaultAPI = "http://127.0.0.1:8080"

// apiHelp ends the usage of every command that calls the API.
const apiHelp = `
--api is the hotline's HTTP address: $HOTLINE_API when set, else ` + defaultAPI + `.
The token is $HOTLINE_TOKEN (hotline login, or hotline tokens create).
`

// maxPassword bounds what --password-stdin reads.
const maxPassword = 1024

// apiDefault is the --api default: the environment may name the hotline
// so that every command need not.
func apiDefault(env func(string) (string, bool)) string {
	if s, ok := env("HOTLINE_API"); ok && s != "" {
		return s
	}
	return defaultAPI
}

// envToken is $HOTLINE_TOKEN in env, empty when unset.
func envToken(env func(string) (string, bool)) string {
	tok, _ := env("HOTLINE_TOKEN")
	return tok
}

// usageError ends the program with code 2 and msg.
func usageError(format string, a ...any) error {
	return exitError{2, fmt.Sprintf(format, a...)}
}

// parseFlags parses args with fs, whose errors the flag package has
// already printed, so that they end the program with code 2.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return exitError{code: 2}
}

// agentsCmd runs "hotline agents": the agent commands against the HTTP API.
func agentsCmd(a *cli, args []string) error {
	fs := flag.NewFlagSet("agents", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() { fmt.Fprint(a.stderr, agentsUsage) }
	fs.StringVar(&a.api, "api", a.api, "the hotline's HTTP address")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return exitError{2, agentsUsage}
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "list":
		return a.list(rest)
	case "show":
		return a.show(rest)
	case "add":
		return a.add(rest)
	case "update":
		return a.update(rest)
	case "delete":
		return a.delete(rest)
	case "pause":
		return a.pause(rest)
	case "resume":
		return a.resume(rest)
	case "force":
		return a.force(rest)
	case "help":
		fmt.Fprint(a.stdout, agentsUsage)
		return nil
	}
	return usageError("agents: unknown command %q\n%s", cmd, agentsUsage)
}

// queueCmd runs "hotline queue": the calls waiting and today's figures.
func queueCmd(a *cli, args []string) error {
	fs := a.flags("queue")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("queue takes no arguments, got %q\n%s", fs.Args(), queueUsage)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var q web.QueueReport
	if err := c.Do(context.Background(), http.MethodGet, "/api/v1/queue", nil, &q); err != nil {
		return err
	}
	var tb table
	tb.add("#", "CALL", "CATEGORY", "WAITING", "STATE", "AGENT", "NODE")
	now := time.Now()
	for _, call := range q.Calls {
		wait := max(now.Sub(call.Since), 0).Round(time.Second)
		tb.add(strconv.Itoa(call.Position), call.CallID, string(call.Category), wait.String(), call.State, dash(call.AgentID), call.Node)
	}
	if err := tb.write(a.stdout); err != nil {
		return err
	}
	if len(q.Calls) == 0 {
		fmt.Fprintln(a.stdout, "no calls waiting")
	}
	_, err = fmt.Fprint(a.stdout, "\n"+dayFigures(q.Today))
	return err
}

// dayFigures says a day's figures in two lines, each rate with the counts
// it is made of; a day without calls has no rate, not 0 %.
func dayFigures(d acd.DayFigures) string {
	r, w := d.AnswerRate15s, d.AverageWait
	rate := "none (no calls)"
	if r.Rate != nil {
		rate = fmt.Sprintf("%.1f%% (%d of %d calls, turned-away ones included)", *r.Rate*100, r.AnsweredIn15s, r.Calls)
	}
	wait := "none (no call answered)"
	if w.Seconds != nil {
		wait = fmt.Sprintf("%.1f s (over %d answered calls)", *w.Seconds, w.Calls)
	}
	return fmt.Sprintf("today %s: %d queued; %d answered (%d within 15 s), %d abandoned, %d left for a call-back, %d lost with their node, %d turned away with no agent registered\n"+
		"15-second answer rate %s; average wait %s\n",
		d.Day, d.Queued, d.Answered, d.InTime, d.Abandoned, d.Callback, d.Lost, d.TurnedAway, rate, wait)
}

// cli is one run of a command that calls the API.
type cli struct {
	api            string
	env            func(string) (string, bool) // looks up HOTLINE_TOKEN, as os.LookupEnv does
	stdin          io.Reader
	stdout, stderr io.Writer
}

// flags returns a flag set for a command; every command takes --api, so
// that it may also follow the command.
func (a *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.StringVar(&a.api, "api", a.api, "the hotline's HTTP address")
	return fs
}

// parseWithID parses "ID [flags]" or "[flags] ID": exactly one agent id.
func parseWithID(fs *flag.FlagSet, args []string) (string, error) {
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return "", err
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
		if err := parseFlags(fs, fs.Args()[1:]); err != nil {
			return "", err
		}
	}
	switch {
	case id == "":
		return "", usageError("%s: which agent? give its id\n%s", fs.Name(), agentsUsage)
	case fs.NArg() > 0:
		return "", usageError("%s: one agent at a time, got also %q", fs.Name(), fs.Args())
	}
	return id, nil
}

// client is the API at --api with the token of $HOTLINE_TOKEN.
func (a *cli) client() (*client.Client, error) {
	c, err := client.New(a.api, envToken(a.env))
	if err != nil {
		return nil, usageError("--api: %v", err)
	}
	return c, nil
}

func (a *cli) list(args []string) error {
	fs := a.flags("list")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("list takes no arguments, got %q", fs.Args())
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	agents, err := client.All[acd.Agent](context.Background(), c, "/api/v1/agents?limit=500")
	if err != nil {
		return err
	}
	var tb table
	tb.add("ID", "NAME", "SIP USER", "STATE", "REASON", "CATEGORIES", "REGISTERED")
	for _, ag := range agents {
		reason := ag.Reason
		if reason == "" && ag.PauseNext != "" {
			reason = "after this call: " + ag.PauseNext
		}
		reg := "no"
		if ag.Registered {
			reg = "yes"
		}
		tb.add(ag.ID, dash(ag.Name), ag.SIPUser, string(ag.State), dash(reason), joinCategories(ag.Categories), reg)
	}
	return tb.write(a.stdout)
}

func (a *cli) show(args []string) error {
	id, err := parseWithID(a.flags("show"), args)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.Do(context.Background(), http.MethodGet, "/api/v1/agents/"+url.PathEscape(id), nil, &raw); err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = out.WriteTo(a.stdout)
	return err
}

// specFlags are the flags of add and update.
type specFlags struct {
	fs            *flag.FlagSet
	id            string
	name, sipUser string
	categories    string
	password      string
	passwordStdin bool
}

func (a *cli) specFlags(name string) *specFlags {
	f := &specFlags{fs: a.flags(name)}
	if name == "add" {
		f.fs.StringVar(&f.id, "id", "", "the agent's id (letters, digits, '.', '_', '-')")
	}
	f.fs.StringVar(&f.name, "name", "", "the agent's name")
	f.fs.StringVar(&f.sipUser, "sip-user", "", "the user the agent's phone registers as")
	f.fs.StringVar(&f.categories, "categories", "", "the categories of calls taken, comma separated: "+joinCategories(acd.Categories))
	f.fs.StringVar(&f.password, "password", "", "the phone's password (seen by other users of this machine: prefer --password-stdin)")
	f.fs.BoolVar(&f.passwordStdin, "password-stdin", false, "read the phone's password from the first line of standard input")
	return f
}

// set reports which flags were given.
func (f *specFlags) set() map[string]bool {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	return set
}

// readPassword returns the password given by --password or on standard
// input, or "" when neither was given.
func (f *specFlags) readPassword(stdin io.Reader) (string, error) {
	if !f.passwordStdin {
		return f.password, nil
	}
	if f.set()["password"] {
		return "", usageError("%s: --password and --password-stdin: give one", f.fs.Name())
	}
	return passwordLine(stdin, f.fs.Name())
}

// passwordLine reads a password from the first line of stdin, for
// --password-stdin.
func passwordLine(stdin io.Reader, cmd string) (string, error) {
	if stdin == nil {
		return "", usageError("%s: --password-stdin: no standard input", cmd)
	}
	line, err := bufio.NewReaderSize(io.LimitReader(stdin, maxPassword), maxPassword).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usageError("%s: --password-stdin: standard input holds no password", cmd)
	}
	return pw, nil
}

func (a *cli) add(args []string) error {
	f := a.specFlags("add")
	if err := parseFlags(f.fs, args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return usageError("add takes flags only, got %q\n%s", f.fs.Args(), agentsUsage)
	}
	set := f.set()
	for _, need := range []string{"id", "sip-user", "categories"} {
		if !set[need] {
			return usageError("add: --%s is required\n%s", need, agentsUsage)
		}
	}
	pw, err := f.readPassword(a.stdin)
	if err != nil {
		return err
	}
	if pw == "" {
		return usageError("add: a password is required: --password or --password-stdin")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	spec := acd.AgentSpec{ID: f.id, Name: f.name, SIPUser: f.sipUser, Password: pw, Categories: splitCategories(f.categories)}
	var ag acd.Agent
	if err := c.Do(context.Background(), http.MethodPost, "/api/v1/agents", spec, &ag); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "agent %s added, %s\n", ag.ID, ag.State)
	return err
}

// update changes only what its flags name (PATCH).
func (a *cli) update(args []string) error {
	f := a.specFlags("update")
	id, err := parseWithID(f.fs, args)
	if err != nil {
		return err
	}
	set := f.set()
	pw, err := f.readPassword(a.stdin)
	if err != nil {
		return err
	}
	if !set["name"] && !set["sip-user"] && !set["categories"] && pw == "" {
		return usageError("update: nothing to change: give --name, --sip-user, --categories or a password")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var patch web.AgentPatch
	if set["name"] {
		patch.Name = &f.name
	}
	if set["sip-user"] {
		patch.SIPUser = &f.sipUser
	}
	if set["categories"] {
		cats := splitCategories(f.categories)
		patch.Categories = &cats
	}
	if pw != "" {
		patch.Password = &pw
	}
	var ag acd.Agent
	if err := c.Do(context.Background(), http.MethodPatch, "/api/v1/agents/"+url.PathEscape(id), patch, &ag); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "agent %s updated\n", ag.ID)
	return err
}

func (a *cli) delete(args []string) error {
	id, err := parseWithID(a.flags("delete"), args)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if err := c.Do(context.Background(), http.MethodDelete, "/api/v1/agents/"+url.PathEscape(id), nil, nil); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "agent %s deleted\n", id)
	return err
}

func (a *cli) pause(args []string) error {
	fs := a.flags("pause")
	reason := fs.String("reason", "", "why the agent is away (lunch, training, ...)")
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return usageError("pause: --reason is required")
	}
	return a.setState(id, "pause", map[string]string{"reason": *reason})
}

func (a *cli) resume(args []string) error {
	id, err := parseWithID(a.flags("resume"), args)
	if err != nil {
		return err
	}
	return a.setState(id, "resume", nil)
}

func (a *cli) setState(id, action string, body any) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	var st web.StateReply
	if err := c.Do(context.Background(), http.MethodPost, "/api/v1/agents/"+url.PathEscape(id)+"/"+action, body, &st); err != nil {
		return err
	}
	if st.PauseNext != "" {
		_, err = fmt.Fprintf(a.stdout, "agent %s: %s; paused (%s) when the call ends\n", id, st.State, st.PauseNext)
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "agent %s: %s\n", id, st.State)
	return err
}

// force sets an agent's state on the operator's word.
func (a *cli) force(args []string) error {
	fs := a.flags("force")
	state := fs.String("state", "", "available, paused or offline")
	reason := fs.String("reason", "", "why (required with --state paused: the pause's reason)")
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	if *state == "" {
		return usageError("force: --state is required: available, paused or offline")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var ag acd.Agent
	body := web.ForceRequest{State: acd.State(*state), Reason: *reason}
	if err := c.Do(context.Background(), http.MethodPost, "/api/v1/agents/"+url.PathEscape(id)+"/state", body, &ag); err != nil {
		return err
	}
	from := ""
	if f := ag.Forced; f != nil {
		from = " (was " + string(f.From)
		if f.CallID != "" {
			from += " on call " + f.CallID
		}
		from += ")"
	}
	_, err = fmt.Fprintf(a.stdout, "agent %s: %s%s\n", id, ag.State, from)
	return err
}

func splitCategories(s string) []appeal.Category {
	var out []appeal.Category
	for c := range strings.SplitSeq(s, ",") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, appeal.Category(c))
		}
	}
	return out
}

func joinCategories(cs []appeal.Category) string {
	ss := make([]string, len(cs))
	for i, c := range cs {
		ss[i] = string(c)
	}
	return strings.Join(ss, ",")
}

// dash shows an empty table cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// table writes aligned columns. Unlike text/tabwriter it counts Chinese
// characters two columns wide, as terminals show them (East Asian Wide
// and Fullwidth, Unicode UAX #11), so that agents' names line up.
type table struct{ rows [][]string }

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], displayWidth(c))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-displayWidth(c)+2))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		n++
		if wide(r) {
			n++
		}
	}
	return n
}

// wide reports whether a terminal shows r two columns wide: the East Asian
// Wide and Fullwidth blocks of UAX #11 that names and notes use.
func wide(r rune) bool {
	switch {
	case r >= 0x1100 && r <= 0x115F, // Hangul Jamo
		r >= 0x2E80 && r <= 0xA4CF && r != 0x303F, // CJK radicals to Yi, with CJK punctuation
		r >= 0xAC00 && r <= 0xD7A3,                // Hangul syllables
		r >= 0xF900 && r <= 0xFAFF,                // CJK compatibility ideographs
		r >= 0xFE30 && r <= 0xFE4F,                // CJK compatibility forms
		r >= 0xFF00 && r <= 0xFF60,                // fullwidth forms
		r >= 0xFFE0 && r <= 0xFFE6,
		r >= 0x20000 && r <= 0x3FFFD: // CJK extensions B and later
		return true
	}
	return false
}

// getShown runs a command that only reads: it takes no arguments but its
// flags and --json, GETs path into a T and prints it as JSON with --json,
// or with show.
func getShown[T any](a *cli, name, path string, args []string, show func(T) error) error {
	fs := a.flags(name)
	asJSON := fs.Bool("json", false, "the API's answer, as JSON")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var v T
	if err := c.Do(context.Background(), http.MethodGet, path, nil, &v); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(v)
	}
	return show(v)
}

// printJSON prints v as indented JSON.
func (a *cli) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
