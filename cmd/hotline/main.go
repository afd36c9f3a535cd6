// Command hotline runs the telephone side of a 12345 citizen-service hotline.
//
//	hotline serve [--config FILE] [--backend sip|asterisk] [--sip-listen ADDR] [--http-listen ADDR]
//	hotline call [--keys 1,1] [--dtmf rfc4733|info|inband] sip:12345@127.0.0.1:5060
//	hotline probe [--every 5m] [--keys 1,1] [--once] sip:12345@127.0.0.1:5060
//	hotline prompts generate [--catalog prompts/catalog.yaml]
//	hotline prompts install --asterisk-sounds DIR
//	hotline agents [--api URL] list|show|add|update|delete|pause|resume|force ...
//	hotline queue [--api URL]
//	hotline login --user NAME | logout | whoami
//	hotline users list|add|update|passwd|disable|enable ...
//	hotline tokens create|list|revoke ...
//	hotline bans list|lift ...
//	hotline trunks [list|events]
//	hotline appeals list|show|create|dispatch|sign|feedback|return|close ...
//	hotline peak [status|on|off]
//	hotline visits next|renew|attempt|complete ...
//	hotline rates [show|audit] ...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	_ "time/tzdata" // appeal clocks need Asia/Shanghai even where the system has no zone data

	"github.com/hotline12345/hotline/app"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/logging"
	"github.com/hotline12345/hotline/prompts"
)

const usage = `usage: hotline <command> [flags]

commands:
  serve              answer calls (embedded SIP on 127.0.0.1:5060, HTTP on 127.0.0.1:8080)
  call URI           place a test call and report what was heard
  probe URI          call as the synthetic probe every interval, serving /metrics
  prompts generate   regenerate prompt audio from prompts/catalog.yaml
  prompts install    write prompt audio for Asterisk (--asterisk-sounds DIR)
  agents COMMAND     list, show, add, update, delete, pause, resume or force agents (hotline agents help)
  queue              the calls waiting for an agent and today's figures
  login --user NAME  log in with a password; prints a token for HOTLINE_TOKEN
  logout             revoke HOTLINE_TOKEN
  whoami             who HOTLINE_TOKEN acts as
  users COMMAND      list, add, update, passwd, disable or enable accounts (hotline users help)
  tokens COMMAND     create, list or revoke API tokens (hotline tokens help)
  bans COMMAND       list or lift the bans of failing sources (hotline bans help)
  complaints line    effective complaints against the 3/10,000 line (hotline complaints help)
  complaints pending bad reviews waiting for review, oldest first, with their age
  complaints review ID --upheld|--dismissed --note TEXT [--reverse]
                     decide a bad review as the token's user, or change a decision
  complaints audit   recount the line's counters from the records; exit 3 on a difference
  trunks [events]    the carriers' trunks: state, last probe, channels, recent calls; or their events
  appeals COMMAND    list, show, create, dispatch, sign, feedback, return or close appeals (hotline appeals help)
  peak [on|off]      peak mode: general and complex appeals get 48 h to dispatch while it is on
  visits COMMAND     a return-visit agent's next visit, its lease, its attempts and answers (hotline visits help)
  rates [COMMAND]    the three rates of return visits, and their audit (hotline rates help)

Commands that call the API send $HOTLINE_TOKEN. The first admin token is
printed by the first "hotline serve"; "hotline tokens create --role admin"
on the server's host makes another without one.
`

func main() {
	// A media server trades memory for fewer collections: each cycle's
	// mark phase takes a quarter of the CPUs for tens of milliseconds, and
	// RTP frames due meanwhile leave late. GOGC, when set, still rules.
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(400)
	}
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command line args and returns its exit code. The commands
// that call the API read HOTLINE_API and HOTLINE_TOKEN with env, which
// looks variables up as os.LookupEnv does.
func run(args []string, env func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	// The commands that call the API share one cli.
	a := &cli{api: apiDefault(env), env: env, stdin: stdin, stdout: stdout, stderr: stderr}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stderr)
	case "call":
		err = call(args[1:], stdout, stderr)
	case "probe":
		err = probe(args[1:], stdout, stderr)
	case "prompts":
		err = promptsCmd(args[1:], stdout)
	case "agents":
		err = agentsCmd(a, args[1:])
	case "queue":
		err = queueCmd(a, args[1:])
	case "login":
		err = loginCmd(a, args[1:])
	case "logout":
		err = logoutCmd(a, args[1:])
	case "whoami":
		err = whoamiCmd(a, args[1:])
	case "users":
		err = usersCmd(a, args[1:])
	case "tokens":
		err = tokensCmd(a, args[1:])
	case "bans":
		err = bansCmd(a, args[1:])
	case "complaints":
		err = complaintsCmd(a, args[1:])
	case "trunks":
		err = trunksCmd(a, args[1:])
	case "appeals":
		err = appealsCmd(a, args[1:])
	case "peak":
		err = peakCmd(a, args[1:])
	case "visits":
		err = visitsCmd(a, args[1:])
	case "rates":
		err = ratesCmd(a, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "hotline: unknown command %q\n%s", args[0], usage)
		return 2
	}
	var exit exitError
	switch {
	case errors.As(err, &exit):
		if exit.msg != "" {
			fmt.Fprintln(stderr, "hotline:", exit.msg)
		}
		return exit.code
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintln(stderr, "hotline:", err)
		if hint := explain(err, env); hint != "" {
			fmt.Fprintln(stderr, "hotline:", hint)
		}
		return 1
	}
	return 0
}

// exitError ends the program with a code other than 1.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

func serve(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration file (defaults when empty)")
	backend := fs.String("backend", "", "telephony backend, sip or asterisk (overrides backend)")
	sipListen := fs.String("sip-listen", "", "SIP address for UDP and TCP, host:port (overrides sip.listen)")
	httpListen := fs.String("http-listen", "", "HTTP address, host:port (overrides http.listen)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return exitError{2, fmt.Sprintf("serve takes no arguments, got %q", fs.Args())}
	}
	cfg, err := loadServeConfig(*path, map[string]string{
		"BACKEND": *backend, "SIP_LISTEN": *sipListen, "HTTP_LISTEN": *httpListen,
	}, os.LookupEnv)
	if err != nil {
		return err
	}
	log, err := logging.New(logging.Options{Level: cfg.Log.Level, Format: cfg.Log.Format, Out: stderr})
	if err != nil {
		return err
	}
	app.RouteLibraryLogs(log)
	// The state directory is found here, where the environment is read,
	// so that the server and the commands beside it agree on it.
	cfg.Storage.Dir = cfg.StateDir(os.LookupEnv)
	for _, msg := range config.UnknownEnv(os.Environ()) {
		log.Warn().Msg(msg)
	}

	// SIGTERM drains (calls in progress finish, up to the grace); SIGINT,
	// or a second signal, ends everything at once.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	interrupt := make(chan struct{})
	go func() {
		sig := <-sigs
		if sig == syscall.SIGTERM {
			log.Info().Msg("SIGTERM: draining calls")
			cancel(app.ErrDrain)
			sig = <-sigs
		}
		log.Info().Str("signal", sig.String()).Msg("ending all calls")
		cancel(app.ErrInterrupt)
		close(interrupt)
	}()
	// SIGHUP reads the certificates again, as daemons do after their
	// files are renewed; it stops nothing (its default would end the
	// process).
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-hups:
				log.Info().Msg("SIGHUP: reading the certificates again")
				select {
				case reload <- struct{}{}:
				default: // a reload is pending already
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return app.Run(ctx, app.Options{Config: cfg, Logger: log, Interrupt: interrupt, Reload: reload, Notice: stderr})
}

// loadServeConfig loads the configuration with serve's flags overriding
// the file and the environment. flags are keyed by their settings'
// variable names without the prefix, and empty when not given. They are
// read as those variables, so the configuration is validated once, with
// them: a file for Asterisk without its password is valid with --backend
// sip.
func loadServeConfig(path string, flags map[string]string, env func(string) (string, bool)) (config.Config, error) {
	return config.Load(path, func(name string) (string, bool) {
		if key, ok := strings.CutPrefix(name, config.EnvPrefix); ok && flags[key] != "" {
			return flags[key], true
		}
		return env(name)
	})
}

func promptsCmd(args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "install" {
		return promptsInstall(args[1:], stdout)
	}
	if len(args) == 0 || args[0] != "generate" {
		return exitError{2, "usage: hotline prompts generate [--catalog prompts/catalog.yaml] [--out DIR]\n   or: hotline prompts install --asterisk-sounds DIR"}
	}
	fs := flag.NewFlagSet("prompts generate", flag.ContinueOnError)
	catalog := fs.String("catalog", "prompts/catalog.yaml", "the prompt catalog")
	out := fs.String("out", "", "where audio and manifest go (default: beside the catalog)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	return prompts.Generate(context.Background(), prompts.GenerateOptions{
		CatalogPath: *catalog, OutDir: *out, Progress: stdout,
	})
}
