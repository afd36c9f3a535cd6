// Command agents measures hotline's whole service path under load: 200
// agents' phones run in this process (internal/agentua: they register with
// digest, answer, talk for -talk and hang up), and sipp callers arrive at a
// steady rate, type the category and consent keys ahead during the
// greeting, wait through the appeal number and the queue, and press the
// praise key every -press-every from the moment their agent may hang up
// until hotline hangs up after the rating.
//
// It reports the calls sipp placed and completed, the offers and ratings
// hotline counted, the ratings lost (conversations the agent ended with no
// rating record for the call), the time from the agent's hang-up to the
// rating question starting (hotline's histogram, and end to end from the
// phone's BYE to the question in the call record), the 15-second answer
// rate and average wait, and hotline's CPU.
//
//	go run ./bench/agents -rate 20 -calls 1200
//	go run ./bench/agents -rate 25 -calls 1500 -talk 5s -wrap-up 2s -nice 19
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/bench/internal/measure"
	"github.com/hotline12345/hotline/bench/internal/rig"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/internal/agentua"
	"github.com/hotline12345/hotline/internal/sipptest"
	"github.com/hotline12345/hotline/web"
	"github.com/hotline12345/hotline/web/client"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "agents:", err)
		os.Exit(1)
	}
}

type options struct {
	agents, calls, sipps, nice, presses int
	rate                                float64
	talk, wrapUp, ringTimeout, ring     time.Duration
	pressFrom, pressEvery, drain        time.Duration
	categories, binary, out             string
}

// intakeTime is about how long intake takes with both keys typed ahead:
// the category key 1 s into the greeting, the consent key half a second
// later, then the appeal number read back (its prompt and ten digits,
// about 5.5 s).
const intakeTime = 7 * time.Second

func run() error {
	var o options
	flag.IntVar(&o.agents, "agents", 200, "agents, each with a phone in this process")
	flag.IntVar(&o.calls, "calls", 1200, "citizens' calls in all")
	flag.Float64Var(&o.rate, "rate", 20, "new calls per second, across all sipp processes")
	flag.IntVar(&o.sipps, "sipps", 0, "sipp processes sharing the calls (default: one per 250 calls expected at once)")
	flag.DurationVar(&o.talk, "talk", 5*time.Second, "how long an agent talks before hanging up")
	flag.DurationVar(&o.ring, "ring", 0, "how long an agent's phone rings before it answers")
	flag.DurationVar(&o.wrapUp, "wrap-up", 2*time.Second, "agents' wrap-up after each call (acd.wrap_up)")
	flag.DurationVar(&o.ringTimeout, "ring-timeout", 15*time.Second, "acd.ring_timeout")
	flag.StringVar(&o.categories, "categories", "321", "category key of each sipp process in turn (1 emergency, 2 livelihood, 3 general)")
	flag.DurationVar(&o.pressFrom, "press-from", 0, "when after the answer the caller starts pressing the praise key (default: intake plus ring plus talk, less 1 s)")
	flag.DurationVar(&o.pressEvery, "press-every", 2*time.Second, "then again this often until hotline hangs up")
	flag.IntVar(&o.presses, "presses", 45, "praise key presses at most before the caller only waits for the BYE")
	flag.DurationVar(&o.drain, "drain", 3*time.Minute, "how long to wait for the last calls to end after sipp is done")
	flag.StringVar(&o.binary, "hotline", "", "hotline binary (default: built from ./cmd/hotline)")
	flag.StringVar(&o.out, "out", "bench/out/agents", "folder for logs, sipp statistics and the results")
	flag.IntVar(&o.nice, "nice", 10, "niceness of sipp and of this process's phones: the load generator yields the CPU to the server it measures, as it would on a machine of its own")
	flag.Parse()
	if o.pressFrom <= 0 {
		o.pressFrom = intakeTime + o.ring + o.talk - time.Second
	}
	if o.sipps <= 0 {
		perCall := o.pressFrom + 6*time.Second
		o.sipps = max(1, int(o.rate*perCall.Seconds()+249)/250)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hotline-agents-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.binary == "" {
		if o.binary, err = rig.Build(dir); err != nil {
			return err
		}
	}

	agents, err := newAgents(o.agents)
	if err != nil {
		return err
	}
	srv, err := startHotline(o, dir, agents)
	if err != nil {
		return err
	}
	defer srv.Stop(90 * time.Second)
	if err := renice(o.nice); err != nil {
		return err
	}

	fleet, err := startFleet(o, srv, agents)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := fleet.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "agents: stopping the phones:", err)
		}
	}()
	if err := awaitAvailable(srv, o.agents); err != nil {
		return err
	}

	wav := filepath.Join(dir, "silence.wav")
	if err := os.WriteFile(wav, sipptest.SilenceWAV(2*time.Second), 0o644); err != nil {
		return err
	}
	watch := watchCalls(srv)
	cpu := srv.SampleCPU()
	ownCPU := measure.ProcCPU(os.Getpid())
	start := time.Now()
	results, err := runSipps(o, wav, srv.SIP, dir)
	offered := time.Since(start)
	phonesCPU := measure.ProcCPU(os.Getpid()) - ownCPU
	if err != nil {
		return err
	}
	drained := awaitIdle(srv, fleet, o.drain)
	cpuStats := cpu()
	ids := watch()

	r, err := collect(srv, fleet, ids)
	if err != nil {
		return err
	}
	r.sipp = results
	r.cpu = cpuStats
	r.phonesCPU = phonesCPU
	r.elapsed = offered
	r.drained = drained
	r.report(os.Stdout, o)
	return r.save(filepath.Join(o.out, "results.json"), o)
}

// startFleet registers every agent's phone with hotline.
func startFleet(o options, srv *hotline, agents []agentAccount) (*agentua.Fleet, error) {
	logf, err := os.Create(filepath.Join(o.out, "phones.log"))
	if err != nil {
		return nil, err
	}
	phones := make([]agentua.Agent, len(agents))
	for i, a := range agents {
		phones[i] = a.Phone
	}
	target, err := addrPort(srv.SIP)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return agentua.Start(ctx, agentua.Options{
		Registrar: target, Agents: phones, TalkTime: o.talk, RingTime: o.ring,
		Logger: zerolog.New(logf).Level(zerolog.WarnLevel).With().Timestamp().Logger(),
	})
}

// awaitAvailable waits until hotline has every agent available: each
// phone's registration reached distribution.
func awaitAvailable(srv *hotline, n int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		agents, err := client.All[acd.Agent](context.Background(), srv.api(), "/api/v1/agents?limit=500")
		avail := 0
		for _, a := range agents {
			if a.State == "available" {
				avail++
			}
		}
		if err == nil && avail == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d agents available (%v)", avail, n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// awaitIdle waits until hotline has no call up and no phone is talking,
// and reports whether that happened within d.
func awaitIdle(srv *hotline, fleet *agentua.Fleet, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m, err := measure.Scrape(srv.HTTP)
		if err == nil && m["hotline_calls_active"] == 0 && fleet.Talking() == 0 {
			return true
		}
		time.Sleep(500 * time.Millisecond)
	}
	return false
}

// watchCalls collects the ids of the calls hotline records while the run
// goes on: the list API returns the newest 500, so it is read every few
// seconds. The returned function stops and returns the ids.
func watchCalls(srv *hotline) func() map[string]bool {
	ids := map[string]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	poll := func() {
		var list web.Page[calllog.Record]
		if err := srv.getJSON("/api/v1/calls?limit=500", &list); err == nil {
			for _, c := range list.Items {
				ids[c.ID] = true
			}
		}
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(3 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				poll()
				return
			case <-tick.C:
				poll()
			}
		}
	}()
	return func() map[string]bool {
		cancel()
		<-done
		return ids
	}
}

func addrPort(s string) (netip.AddrPort, error) { return netip.ParseAddrPort(s) }
