package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/logging"
	"github.com/hotline12345/hotline/prompts"
	"github.com/hotline12345/hotline/synthetic"
)

const probeUsage = `usage: hotline probe [flags] sip:12345@HOST[:PORT][;transport=tcp]

Calls the hotline as the synthetic probe every interval, for ever: the
whole intake, answered with the keys given, checked as heard; the hotline
recognises the call (probe.callers, or the X-Hotline-Probe header signed
with the secret) and never queues it. Serves /metrics on --listen. Exits
non-zero only on bad flags; a failing hotline is a failed probe. With
--once, one probe: exit 0 when it succeeded, 1 when not.

flags:
`

// probeResult is one probe call as measured.
type probeResult struct {
	ok       bool
	problems []string
	duration time.Duration
	pdd      time.Duration
	prompts  int
}

// probeOnce places one probe call and checks the intake was heard whole.
func probeOnce(ctx context.Context, opts caller.Options) probeResult {
	start := time.Now()
	tr, err := caller.Call(ctx, opts)
	r := probeResult{duration: time.Since(start), prompts: len(tr.Heard)}
	if !tr.Answered.IsZero() {
		r.pdd = tr.Answered.Sub(start)
	}
	if err != nil && !errors.Is(err, caller.ErrCallEnded) {
		r.problems = append(r.problems, err.Error())
	}
	if tr.Status >= 200 && tr.Status < 300 {
		r.problems = append(r.problems, caller.CheckIntake(tr)...)
	} else if err == nil {
		r.problems = append(r.problems, fmt.Sprintf("not answered: %d", tr.Status))
	}
	r.ok = len(r.problems) == 0
	return r
}

// probe runs `hotline probe`.
func probe(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runProbe(ctx, args, os.LookupEnv, stdout, stderr, nil)
}

// runProbe is probe with the environment given; ready, when set, hears
// the metrics listener's address.
func runProbe(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer, ready func(net.Addr)) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, probeUsage)
		fs.PrintDefaults()
	}
	every := fs.Duration("every", 5*time.Minute, "time between probe calls")
	keys := fs.String("keys", "1,1", "keys for the menus in order (category, consent)")
	from := fs.String("from", caller.DefaultFrom, "caller number (user part of From): one of the hotline's probe.callers when the probe comes through a trunk")
	secretEnv := fs.String("secret-env", "HOTLINE_PROBE_SECRET", "environment variable holding the probe secret that signs X-Hotline-Probe; unset or empty sends no header")
	listen := fs.String("listen", "127.0.0.1:9108", "where /metrics is served; empty for nowhere")
	once := fs.Bool("once", false, "one probe, then exit 0 if it succeeded, 1 if not")
	timeout := fs.Duration("timeout", 2*time.Minute, "longest a probe call may last")
	usageErr := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "hotline probe: "+format+"\n", a...)
		return exitError{code: 2}
	}
	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return exitError{code: 2}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(positional) != 1 {
		return usageErr("want one target URI, e.g. sip:12345@hotline.example.net")
	}
	if *every <= 0 || *timeout <= 0 {
		return usageErr("--every and --timeout must be positive")
	}
	script, err := caller.KeysScript(*keys)
	if err != nil {
		return usageErr("--keys: %v", err)
	}
	var headers func(string) []sip.Header
	if secret, _ := env(*secretEnv); secret != "" {
		if len(secret) < 16 {
			return usageErr("%s: want at least 16 characters", *secretEnv)
		}
		headers = func(callID string) []sip.Header {
			return []sip.Header{sip.NewHeader(synthetic.Header, synthetic.Sign(secret, callID, time.Now()))}
		}
	}
	log, err := logging.New(logging.Options{Level: "info", Out: stderr})
	if err != nil {
		return usageErr("%v", err)
	}
	catalog, err := prompts.Default()
	if err != nil {
		return fmt.Errorf("prompts: %w", err)
	}
	opts := caller.Options{
		Target: positional[0], From: *from, Script: script, Catalog: catalog,
		Timeout: *timeout, Headers: headers, Logger: log.Level(zerolog.WarnLevel),
	}

	reg := prometheus.NewRegistry()
	m := synthetic.NewMetrics(reg)
	if *listen != "" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return usageErr("--listen: %v", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		log.Info().Str("addr", ln.Addr().String()).Msg("probe metrics listening")
		if ready != nil {
			ready(ln.Addr())
		}
	}

	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		r := probeOnce(ctx, opts)
		m.Observe(r.ok, r.duration, r.pdd, r.prompts)
		ev := log.Info()
		if !r.ok {
			ev = log.Warn().Str("problems", strings.Join(r.problems, "; "))
		}
		ev.Bool("success", r.ok).Stringer("duration", r.duration).Stringer("post_dial_delay", r.pdd).
			Int("prompts", r.prompts).Str("target", opts.Target).Msg("probe call")
		if *once {
			if !r.ok {
				return exitError{code: 1}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
