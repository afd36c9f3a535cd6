package caller

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/hotline12345/hotline/logging"
	"github.com/hotline12345/hotline/prompts"
)

// Expectations of `hotline call --expect`.
const (
	// ExpectIntake: the whole intake flow is heard, in order, and the
	// hotline hangs up after its goodbye.
	ExpectIntake = "intake"
	// ExpectNone: the call is answered and the script's prompts are heard.
	ExpectNone = "none"
)

// minAppealDigits is the shortest appeal number read out: six date digits
// and a sequence number of at least four (the appeal package's ids).
const minAppealDigits = 10

const cliUsage = `usage: hotline call [flags] sip:12345@HOST[:PORT][;transport=tcp]

Places one call to the hotline, presses the keys given as the menus ask,
and prints the prompts heard. Exits 0 when the call went as expected,
1 when it did not (the report says what was missing), 2 on bad usage.

flags:
`

// Main runs `hotline call` with args (the arguments after "call"): it
// places one call, prints the transcript to stdout and returns the exit
// code: 0 when the call went as expected, 1 when it did not, 2 on bad
// usage. Logs go to stderr (warnings only, everything with -v).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	_, code := runCLI(ctx, args, stdout, stderr)
	return code
}

// runCLI is Main, returning the transcript too.
func runCLI(ctx context.Context, args []string, stdout, stderr io.Writer) (Transcript, int) {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, cliUsage)
		fs.PrintDefaults()
	}
	keys := fs.String("keys", "", "keys for the menus in order, e.g. 1,1 (category 1, consent 1); none lets every menu time out")
	method := fs.String("dtmf", DTMFRFC4733, "how keys are sent: rfc4733, info or inband")
	from := fs.String("from", DefaultFrom, "caller number (user part of From)")
	codec := fs.String("codec", "PCMU", "preferred codec, PCMU or PCMA (both are offered)")
	timeout := fs.Duration("timeout", DefaultTimeout, "longest the call may last")
	stepTimeout := fs.Duration("step-timeout", DefaultStepTimeout, "longest wait for a menu the keys answer")
	expect := fs.String("expect", ExpectIntake, "what must be heard: intake (the whole intake flow, then the hotline hangs up) or none")
	localIP := fs.String("local-ip", "", "address to call from and receive media on (default: the one routed to the target)")
	verbose := fs.Bool("v", false, "log everything, SIP included, to stderr")

	// Flags may come before or after the URI.
	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return Transcript{}, 0
			}
			return Transcript{}, 2
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	usageErr := func(format string, a ...any) (Transcript, int) {
		fmt.Fprintf(stderr, "hotline call: "+format+"\n", a...)
		fs.Usage()
		return Transcript{}, 2
	}
	if len(positional) != 1 {
		return usageErr("want one SIP URI to call, got %d arguments", len(positional))
	}
	if *expect != ExpectIntake && *expect != ExpectNone {
		return usageErr("--expect %q: want intake or none", *expect)
	}
	if *timeout <= 0 || *stepTimeout <= 0 {
		return usageErr("timeouts must be positive")
	}
	script, err := KeysScript(*keys)
	if err != nil {
		return usageErr("--keys: %v", err)
	}
	level := "warn"
	if *verbose {
		level = "debug"
	}
	log, err := logging.New(logging.Options{Level: level, Out: stderr})
	if err != nil {
		fmt.Fprintln(stderr, "hotline call:", err)
		return Transcript{}, 1
	}
	catalog, err := prompts.Default()
	if err != nil {
		fmt.Fprintln(stderr, "hotline call: prompts:", err)
		return Transcript{}, 1
	}
	opts := Options{
		Target: positional[0], From: *from, DTMF: strings.ToLower(*method), Codec: *codec,
		Script: script, Catalog: catalog, LocalIP: *localIP,
		Timeout: *timeout, StepTimeout: *stepTimeout, Logger: log,
	}
	if _, err := plan(opts); err != nil {
		return usageErr("%v", err)
	}

	fmt.Fprintf(stdout, "calling %s from %s (keys %s, dtmf %s, %s preferred)\n",
		opts.Target, opts.From, orNone(*keys), opts.DTMF, strings.ToUpper(opts.Codec))
	tr, callErr := Call(ctx, opts)
	printTranscript(stdout, tr)

	var problems []string
	if callErr != nil {
		problems = append(problems, callErr.Error())
	}
	if tr.Status >= 200 && tr.Status < 300 && *expect == ExpectIntake {
		problems = append(problems, checkIntake(tr)...)
	}
	if len(problems) > 0 {
		fmt.Fprintln(stdout, "FAIL:", strings.Join(problems, "; "))
		return tr, 1
	}
	what := "answered, every prompt the keys answer heard"
	if *expect == ExpectIntake {
		what = "the whole intake heard, appeal " + appealNumber(tr)
	}
	fmt.Fprintln(stdout, "OK:", what)
	return tr, 0
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// printTranscript writes one line per prompt heard (offset from the answer,
// id, language, complete or cut), then the keys and the hangup.
func printTranscript(w io.Writer, tr Transcript) {
	if tr.Status == 0 {
		fmt.Fprintln(w, "no final answer to the INVITE")
		return
	}
	if tr.Status < 200 || tr.Status >= 300 {
		fmt.Fprintf(w, "not answered: %d\n", tr.Status)
		return
	}
	fmt.Fprintf(w, "answered: %d\n", tr.Status)
	for _, h := range tr.Heard {
		state := "complete"
		if !h.Complete {
			state = fmt.Sprintf("cut after %.2fs", h.Length.Seconds())
		}
		fmt.Fprintf(w, "  %8.2fs  %-18s %-3s %s\n", h.Start.Seconds(), h.ID, h.Lang, state)
	}
	if len(tr.Heard) == 0 {
		fmt.Fprintln(w, "  (no prompt heard)")
	}
	fmt.Fprintf(w, "pressed: %s\n", orNone(strings.Join(tr.Pressed, " ")))
	if tr.HungUpBy != "" {
		fmt.Fprintf(w, "hung up by %s after %.1fs\n", tr.HungUpBy, tr.Ended.Sub(tr.Answered).Seconds())
	}
}

// checkIntake lists what a transcript lacks for a whole intake: greeting,
// category menu, consent menu (other prompts such as no_input may come
// between them), then "your appeal number is", one digit per digit of the
// number and goodbye, each played to its end, goodbye last, and the
// hotline hanging up.
func checkIntake(tr Transcript) []string {
	var problems []string
	heard := tr.Heard
	i := 0
	for _, want := range []prompts.ID{prompts.Greeting, prompts.CategoryMenu, prompts.ConsentMenu, prompts.AppealNumber} {
		at := -1
		for j := i; j < len(heard); j++ {
			if heard[j].ID == want {
				at = j
				break
			}
		}
		if at < 0 {
			return append(problems, fmt.Sprintf("%s not heard%s", want, after(heard, i)))
		}
		i = at + 1
	}
	if !heard[i-1].Complete {
		problems = append(problems, "appeal_number cut short")
	}
	digits := 0
	for ; i < len(heard) && isDigit(heard[i].ID); i++ {
		digits++
		if !heard[i].Complete {
			problems = append(problems, fmt.Sprintf("%s of the appeal number cut short", heard[i].ID))
		}
	}
	if digits < minAppealDigits {
		problems = append(problems, fmt.Sprintf("appeal number read out as %d digits, want at least %d", digits, minAppealDigits))
	}
	switch {
	case i >= len(heard):
		problems = append(problems, "goodbye not heard after the appeal number")
	case heard[i].ID != prompts.Goodbye:
		problems = append(problems, fmt.Sprintf("%s heard where goodbye should follow the appeal number", heard[i].ID))
	default:
		if !heard[i].Complete {
			problems = append(problems, "goodbye cut short")
		}
		for _, h := range heard[i+1:] {
			problems = append(problems, fmt.Sprintf("%s heard after goodbye", h.ID))
		}
	}
	if tr.HungUpBy != HungUpByServer {
		who := tr.HungUpBy
		if who == "" {
			who = "nobody"
		}
		problems = append(problems, fmt.Sprintf("hung up by %s, want the hotline to hang up after goodbye", who))
	}
	return problems
}

// after says what was heard last before position i, for messages.
func after(heard []prompts.Heard, i int) string {
	if i == 0 {
		if len(heard) == 0 {
			return " (nothing was heard)"
		}
		return ""
	}
	return " after " + string(heard[i-1].ID)
}

func isDigit(id prompts.ID) bool {
	return len(id) == len("digit_0") && strings.HasPrefix(string(id), "digit_") && id[6] >= '0' && id[6] <= '9'
}

// appealNumber is the number read out after appeal_number, "?" when none.
func appealNumber(tr Transcript) string {
	var b strings.Builder
	for i, h := range tr.Heard {
		if h.ID != prompts.AppealNumber {
			continue
		}
		for _, d := range tr.Heard[i+1:] {
			if !isDigit(d.ID) {
				break
			}
			b.WriteByte(d.ID[6])
		}
	}
	if b.Len() == 0 {
		return "?"
	}
	return b.String()
}

// CheckIntake lists what a transcript lacks for a whole intake (see
// checkIntake); none means the intake went as a citizen hears it.
func CheckIntake(tr Transcript) []string { return checkIntake(tr) }
