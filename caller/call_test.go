package caller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/app"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/sipptest"
	"github.com/hotline12345/hotline/logging"
	"github.com/hotline12345/hotline/prompts"
)

// hotline is a running hotline for a test: the real daemon, in-process, on
// a real redis-server.
type hotline struct {
	sip     string // host:port
	appeals *appeal.Store
}

func startHotline(t *testing.T) hotline {
	t.Helper()
	srv := redistest.Start(t)
	cfg := config.Default()
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Redis.URL = srv.URL()
	cfg.IVR.FirstDigitTimeout = config.Duration(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan app.Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Config: cfg, Logger: testLogger(t), Ready: func(a app.Addrs) { ready <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hotline stopped: %v", err)
		}
	})
	select {
	case a := <-ready:
		return hotline{sip: a.SIP.String(), appeals: appeal.NewStore(srv.Client(t), appeal.StoreOptions{})}
	case err := <-done:
		done <- err
		t.Fatalf("hotline did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("hotline not ready after 30 s")
	}
	return hotline{}
}

func testLogger(t *testing.T) zerolog.Logger {
	log, err := logging.New(logging.Options{Level: "warn", Format: "console", Out: t.Output()})
	if err != nil {
		t.Fatal(err)
	}
	return log
}

func (h hotline) uri(transport string) string {
	u := "sip:12345@" + h.sip
	if transport != "" {
		u += ";transport=" + transport
	}
	return u
}

var callers atomic.Int64

// newCaller is a caller number not used before in this process, so each
// call's appeal can be told apart.
func newCaller() string { return fmt.Sprintf("1390000%04d", callers.Add(1)) }

// readoutOf lists the prompts that read out an appeal number and say goodbye.
func readoutOf(number string) []prompts.ID {
	ids := []prompts.ID{prompts.AppealNumber}
	for _, d := range number {
		ids = append(ids, prompts.Digit(d))
	}
	return append(ids, prompts.Goodbye)
}

// checkTimeline checks prompts follow one another as played: from the
// answer on, each after the one before.
func checkTimeline(t *testing.T, tr Transcript) {
	t.Helper()
	if len(tr.Heard) == 0 {
		t.Fatal("nothing heard")
	}
	// The server's first frames may overtake its 200 OK on a loaded
	// machine: heard a frame or two "before" the answer is on time.
	if s := tr.Heard[0].Start; s < -3*frameDuration || s > 2*time.Second {
		t.Errorf("first prompt heard %v after the answer", s)
	}
	for i := 1; i < len(tr.Heard); i++ {
		prev, h := tr.Heard[i-1], tr.Heard[i]
		if h.Start < prev.Start+prev.Length-frameDuration {
			t.Errorf("%s heard at %v, before %s (at %v for %v) was over", h.ID, h.Start, prev.ID, prev.Start, prev.Length)
		}
	}
	if !tr.Ended.After(tr.Answered) || tr.Answered.IsZero() {
		t.Errorf("answered %v, ended %v", tr.Answered, tr.Ended)
	}
}

// checkAppeal checks the hotline recorded what the keys said.
func checkAppeal(t *testing.T, h hotline, number, caller string, cat appeal.Category, consent bool, lang prompts.Lang) {
	t.Helper()
	a, err := h.appeals.Get(context.Background(), number)
	if err != nil {
		t.Fatalf("appeal %s read out, but: %v", number, err)
	}
	if a.Caller != caller || a.Category != cat || a.Consent.Given != consent || a.Lang != string(lang) {
		t.Errorf("appeal %s: caller %s category %s consent %v lang %s; want %s %s %v %s",
			number, a.Caller, a.Category, a.Consent.Given, a.Lang, caller, cat, consent, lang)
	}
}

// placed is one call of TestCall, placed with Call or through the CLI.
type placed struct {
	opts           Options
	tr             Transcript
	err            error
	code           int // exit code through the CLI
	stdout, stderr string
}

// scenario is a call and what must come of it.
type scenario struct {
	name  string
	opts  Options
	cli   []string // place the call through the CLI with these flags
	ctx   func() (context.Context, context.CancelFunc)
	check func(t *testing.T, p placed)
}

// TestCall calls a real hotline, in-process, over real SIP and RTP. A call
// takes up to 40 s of real time, so all are placed at once (however small
// -parallel is) and each is checked when it is over.
func TestCall(t *testing.T) {
	h := startHotline(t)
	c := catalog(t)
	var scenarios []scenario
	for _, tc := range []struct {
		method, transport, codec, keys string
		cat                            appeal.Category
		consent                        bool
	}{
		{DTMFRFC4733, "udp", "PCMU", "1,1", appeal.Emergency, true},
		{DTMFInfo, "tcp", "PCMA", "2,2", appeal.Livelihood, false},
		{DTMFInband, "udp", "PCMA", "3,1", appeal.General, true},
	} {
		scenarios = append(scenarios, scenario{
			name: "intake/" + tc.method,
			cli:  []string{"--keys", tc.keys, "--dtmf", tc.method, "--codec", tc.codec, h.uri(tc.transport)},
			check: func(t *testing.T, p placed) {
				if p.code != 0 {
					t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", p.code, p.stdout, p.stderr)
				}
				tr := p.tr
				if tr.Status != 200 || tr.HungUpBy != HungUpByServer {
					t.Errorf("status %d, hung up by %q; want 200 and the server", tr.Status, tr.HungUpBy)
				}
				if want := strings.Split(tc.keys, ","); !slices.Equal(tr.Pressed, want) {
					t.Errorf("pressed %v, want %v", tr.Pressed, want)
				}
				number := appealNumber(tr)
				want := append([]prompts.ID{prompts.Greeting, prompts.CategoryMenu, prompts.ConsentMenu}, readoutOf(number)...)
				if got := tr.HeardIDs(); !slices.Equal(got, want) {
					t.Errorf("heard %v, want %v", got, want)
				}
				for _, hd := range tr.Heard {
					if !hd.Complete || hd.Lang != prompts.Mandarin {
						t.Errorf("%s/%s complete %v, want every prompt heard to its end in Mandarin", hd.ID, hd.Lang, hd.Complete)
					}
				}
				checkTimeline(t, tr)
				checkAppeal(t, h, number, p.opts.From, tc.cat, tc.consent, prompts.Mandarin)

				// What ops read.
				out := p.stdout
				if !strings.Contains(out, "\nOK: the whole intake heard, appeal "+number+"\n") {
					t.Errorf("no verdict with appeal %s:\n%s", number, out)
				}
				for _, id := range want {
					if !regexp.MustCompile(`(?m)^ +-?\d+\.\d\ds  ` + string(id) + ` +zh  complete$`).MatchString(out) {
						t.Errorf("no line for %s complete:\n%s", id, out)
					}
				}
				if !strings.Contains(out, "\npressed: "+strings.ReplaceAll(tc.keys, ",", " ")+"\n") || !strings.Contains(out, "\nhung up by server after ") {
					t.Errorf("keys or hangup missing:\n%s", out)
				}
			},
		})
	}
	scenarios = append(scenarios,
		// Pressing 9 during the greeting cuts it and switches to English.
		scenario{
			name: "english",
			opts: Options{Script: Script{
				{On: prompts.Greeting, Press: "9", BargeIn: true},
				{On: prompts.CategoryMenu, Press: "3"},
				{On: prompts.ConsentMenu, Press: "2"},
			}},
			check: func(t *testing.T, p placed) {
				tr := p.tr
				if p.err != nil {
					t.Fatalf("call: %v\n%s", p.err, describe(tr.Heard))
				}
				number := appealNumber(tr)
				want := append([]prompts.ID{prompts.Greeting, prompts.CategoryMenu, prompts.ConsentMenu}, readoutOf(number)...)
				if got := tr.HeardIDs(); !slices.Equal(got, want) {
					t.Fatalf("heard %v, want %v", got, want)
				}
				if g := tr.Heard[0]; g.Complete || g.Lang != prompts.Mandarin || g.Length > 2*time.Second {
					t.Errorf("greeting %+v, want it cut short early, in Mandarin", g)
				}
				for _, hd := range tr.Heard[1:] {
					if hd.Lang != prompts.English || !hd.Complete {
						t.Errorf("%s/%s complete %v, want English to the end after 9", hd.ID, hd.Lang, hd.Complete)
					}
				}
				checkTimeline(t, tr)
				checkAppeal(t, h, number, p.opts.From, appeal.General, false, prompts.English)
			},
		},
		scenario{
			name: "hang up",
			opts: Options{Script: Script{{On: prompts.CategoryMenu, Hangup: true, BargeIn: true}}},
			check: func(t *testing.T, p placed) {
				tr := p.tr
				if p.err != nil {
					t.Fatalf("call: %v", p.err)
				}
				if tr.HungUpBy != HungUpByCaller {
					t.Errorf("hung up by %q, want the caller", tr.HungUpBy)
				}
				if got := tr.HeardIDs(); !slices.Equal(got, []prompts.ID{prompts.Greeting, prompts.CategoryMenu}) ||
					!tr.Heard[0].Complete || tr.Heard[1].Complete {
					t.Errorf("heard %s, want the greeting and the category menu cut short", describe(tr.Heard))
				}
				checkTimeline(t, tr)
			},
		},
		scenario{
			name: "step timeout",
			opts: Options{StepTimeout: 2 * time.Second, Script: Script{{On: prompts.Rating, Press: "1"}}},
			check: func(t *testing.T, p placed) {
				tr := p.tr
				if !errors.Is(p.err, ErrStepTimeout) {
					t.Fatalf("error %v, want ErrStepTimeout", p.err)
				}
				if tr.Status != 200 || tr.HungUpBy != HungUpByCaller || len(tr.Pressed) != 0 {
					t.Errorf("status %d hung up by %q pressed %v; want 200, the caller, nothing", tr.Status, tr.HungUpBy, tr.Pressed)
				}
				if got := tr.HeardIDs(); !slices.Equal(got, []prompts.ID{prompts.Greeting}) || tr.Heard[0].Complete {
					t.Errorf("heard %s, want the greeting cut short", describe(tr.Heard))
				}
			},
		},
		// The timeouts leave room for the call's set-up on a loaded
		// machine, and still end it long before the intake would.
		scenario{
			name: "timeout",
			opts: Options{Timeout: 8 * time.Second},
			check: func(t *testing.T, p placed) {
				if !errors.Is(p.err, ErrTimeout) {
					t.Fatalf("error %v, want ErrTimeout", p.err)
				}
				if tr := p.tr; tr.HungUpBy != HungUpByCaller || tr.Ended.Sub(tr.Answered) > 9*time.Second {
					t.Errorf("hung up by %q after %v; want the caller within 8 s", tr.HungUpBy, tr.Ended.Sub(tr.Answered))
				}
			},
		},
		// The caller's own context ends the call too.
		scenario{
			name: "context",
			opts: Options{Script: Script{{On: prompts.Greeting, BargeIn: true}}},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 8*time.Second)
			},
			check: func(t *testing.T, p placed) {
				if !errors.Is(p.err, context.DeadlineExceeded) || p.tr.HungUpBy != HungUpByCaller {
					t.Errorf("error %v, hung up by %q; want context.DeadlineExceeded and the caller", p.err, p.tr.HungUpBy)
				}
			},
		},
	)

	results := make([]placed, len(scenarios))
	done := make(chan int)
	log := testLogger(t)
	for i, sc := range scenarios {
		go func() {
			ctx, cancel := context.WithCancel(context.Background())
			if sc.ctx != nil {
				ctx, cancel = sc.ctx()
			}
			defer cancel()
			p := placed{opts: sc.opts}
			p.opts.From = newCaller()
			if sc.cli != nil {
				var stdout, stderr bytes.Buffer
				p.tr, p.code = runCLI(ctx, append([]string{"--from", p.opts.From}, sc.cli...), &stdout, &stderr)
				p.stdout, p.stderr = stdout.String(), stderr.String()
			} else {
				p.opts.Catalog, p.opts.Logger = c, log.With().Str("scenario", sc.name).Logger()
				if p.opts.Target == "" {
					p.opts.Target = h.uri("")
				}
				p.tr, p.err = Call(ctx, p.opts)
			}
			results[i] = p
			done <- i
		}()
	}
	for range scenarios {
		<-done
	}
	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.check(t, results[i]) })
	}
}

// busyLine is a SIP user agent that answers every INVITE 486 Busy Here.
func busyLine(t *testing.T) string {
	t.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBusyHere, "Busy Here", nil))
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {})
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeUDP(conn)
	}()
	t.Cleanup(func() {
		ua.Close()
		conn.Close()
		<-done
	})
	return "sip:12345@" + conn.LocalAddr().String()
}

func TestCallNotAnswered(t *testing.T) {
	target := busyLine(t)
	tr, err := Call(context.Background(), Options{Target: target, Catalog: catalog(t), Logger: testLogger(t)})
	if !errors.Is(err, ErrNotAnswered) || tr.Status != sip.StatusBusyHere {
		t.Errorf("status %d, error %v; want 486 and ErrNotAnswered", tr.Status, err)
	}
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), []string{"--keys", "1,1", target}, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if out := stdout.String(); !strings.Contains(out, "not answered: 486\n") || !strings.Contains(out, "FAIL: call not answered: 486 Busy Here") {
		t.Errorf("stdout:\n%s", out)
	}
}

// TestCallTimeoutBeforeAnswer: the timeout bounds a call that is never
// answered. A far end that rings is sent a CANCEL, which it answers
// (sipp as a carrier that rings until cancelled); one that says nothing
// at all is given up at the timeout, not after Timer B's 32 s.
func TestCallTimeoutBeforeAnswer(t *testing.T) {
	t.Parallel()
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	ringing := sipptest.Serve(t, sipptest.CarrierXML(0, false, "", ""), 1)
	for _, tc := range []struct {
		name, target string
		status       int
	}{
		{"silent", "sip:12345@" + silent.LocalAddr().String(), 0},
		{"ringing", "sip:12345@" + ringing.Addr.String(), sip.StatusRinging},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			tr, err := Call(t.Context(), Options{Target: tc.target, Timeout: time.Second, Catalog: catalog(t), Logger: testLogger(t)})
			if !errors.Is(err, ErrNotAnswered) || !errors.Is(err, ErrTimeout) {
				t.Errorf("error %v, want ErrNotAnswered and ErrTimeout", err)
			}
			if tr.Status != tc.status {
				t.Errorf("status %d, want %d", tr.Status, tc.status)
			}
			// Timer B would have held it 32 s.
			if took := time.Since(start); took > 16*time.Second {
				t.Errorf("the call took %s with a timeout of 1 s", took)
			}
		})
	}
	if res := ringing.Wait(t, 10*time.Second); res.Successful != 1 {
		t.Errorf("the ringing carrier: %d successful, %d failed, want its call cancelled\n%s", res.Successful, res.Failed, res.Output)
	}
}
