// Command crash measures how soon what a crashed hotline node held is
// given back: a citizen's call reaches an agent's phone (internal/agentua,
// in this process), the node holding the call is killed with SIGKILL, and
// the time is taken until the agent is available again and the call's
// record is ended with node_lost, read straight from the shared Redis.
//
//	go run ./bench/crash
//	go run ./bench/crash -runs 5 -lease 3s -scenario survivor
//
// Two scenarios, each run -runs times. In restart, one node is killed and
// started again under its name; the new run proves the old process gone
// and takes over at once. In survivor, of two nodes the one holding the
// call is killed and left down; the other reconciles once the lease
// (-lease, cluster.lease) has run out: between four fifths of the lease
// and a fifth more than it after the kill, as the kill falls at a random
// moment of the victim's renewal cycle and the survivor looks every fifth
// of the lease.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/bench/internal/rig"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/internal/agentua"
	"github.com/hotline12345/hotline/prompts"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "crash:", err)
		os.Exit(1)
	}
}

type options struct {
	runs     int
	lease    time.Duration
	binary   string
	out      string
	scenario string
}

func run() error {
	var o options
	flag.IntVar(&o.runs, "runs", 3, "kills per scenario")
	flag.DurationVar(&o.lease, "lease", 15*time.Second, "cluster.lease of the nodes")
	flag.StringVar(&o.scenario, "scenario", "restart,survivor", "scenarios to run: restart, survivor")
	flag.StringVar(&o.binary, "hotline", "", "hotline binary (default: built from ./cmd/hotline)")
	flag.StringVar(&o.out, "out", "bench/out/crash", "folder for the nodes' logs")
	flag.Parse()
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hotline-crash-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.binary == "" {
		if o.binary, err = rig.Build(dir); err != nil {
			return err
		}
	}
	fmt.Printf("hotline %s, cluster.lease %s, %d runs per scenario\n\n", o.binary, o.lease, o.runs)
	var rows []row
	for _, sc := range strings.Split(o.scenario, ",") {
		var res []result
		for i := range o.runs {
			r, err := once(o, strings.TrimSpace(sc), filepath.Join(dir, fmt.Sprintf("%s-%d", sc, i)), i)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", sc, i+1, err)
			}
			fmt.Printf("%s run %d: agent available %s, record ended (node_lost) %s after kill -9\n",
				sc, i+1, r.agent.Round(time.Millisecond), r.record.Round(time.Millisecond))
			res = append(res, r)
		}
		rows = append(rows, summarise(sc, res))
	}
	fmt.Println()
	report(os.Stdout, o, rows)
	return nil
}

// result is one kill: how long after it the agent was available, and the
// call record ended.
type result struct{ agent, record time.Duration }

// once runs one kill of scenario sc in dir.
func once(o options, sc, dir string, i int) (result, error) {
	if sc != "restart" && sc != "survivor" {
		return result{}, fmt.Errorf("scenario %q: want restart or survivor", sc)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return result{}, err
	}
	srv, err := rig.StartRedis(dir, "--appendonly", "no")
	if err != nil {
		return result{}, err
	}
	defer srv.Stop()
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Sock})
	defer rdb.Close()
	agents := acd.NewStore(rdb, acd.StoreOptions{})
	calls := calllog.NewStore(rdb, calllog.StoreOptions{})

	logName := func(node string) string { return filepath.Join(o.out, fmt.Sprintf("%s-%d-%s.log", sc, i+1, node)) }
	victim, err := startNode(o, dir, "n1", srv.Sock, logName("n1"))
	if err != nil {
		return result{}, err
	}
	killed := false
	defer func() {
		if !killed {
			victim.Stop(10 * time.Second)
		}
	}()
	registrar := victim
	if sc == "survivor" {
		survivor, err := startNode(o, dir, "n2", srv.Sock, logName("n2"))
		if err != nil {
			return result{}, err
		}
		defer survivor.Stop(30 * time.Second)
		registrar = survivor
	}
	fleet, err := startPhone(registrar.SIP)
	if err != nil {
		return result{}, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = fleet.Stop(ctx)
	}()
	if err := await(time.Minute, func() bool { return agentIs(agents, acd.Available) }); err != nil {
		return result{}, fmt.Errorf("the agent's phone did not register: %w", err)
	}

	who := fmt.Sprintf("1390000%04d", i)
	hangup := citizen(victim.SIP, who)
	defer hangup()
	if err := await(2*time.Minute, func() bool { return agentIs(agents, acd.Talking) }); err != nil {
		return result{}, fmt.Errorf("the call did not reach the agent: %w", err)
	}

	// The kill falls anywhere in the victim's renewal cycle (a fifth of
	// the lease), as a crash would.
	time.Sleep(rand.N(o.lease / 5))
	_ = victim.Cmd.Process.Kill()
	at := time.Now()
	victim.Stop(10 * time.Second) // reaps it
	killed = true
	restarted := make(chan *rig.Hotline, 1)
	if sc == "restart" {
		go func() {
			next, err := startNode(o, dir, "n1", srv.Sock, logName("n1-restarted"))
			if err != nil {
				fmt.Fprintln(os.Stderr, "crash: restart:", err)
			}
			restarted <- next
		}()
		defer func() {
			if next := <-restarted; next != nil {
				next.Stop(30 * time.Second)
			}
		}()
	}
	var r result
	err = await(time.Minute, func() bool {
		if r.agent == 0 && agentIs(agents, acd.Available) {
			r.agent = time.Since(at)
		}
		if r.record == 0 && recordEnded(calls, who) {
			r.record = time.Since(at)
		}
		return r.agent > 0 && r.record > 0
	})
	return r, err
}

// startNode runs hotline as node name on the Redis at sock, its files in
// dir/name.
func startNode(o options, dir, name, sock, logPath string) (*rig.Hotline, error) {
	nodeDir := filepath.Join(dir, name)
	if err := os.MkdirAll(nodeDir, 0o755); err != nil {
		return nil, err
	}
	return rig.StartHotline(o.binary, nodeDir, logPath, time.Minute, func(sip, http string) string {
		return fmt.Sprintf(`node: %s
cluster:
  lease: %s
sip:
  listen: %s
  transports: [udp]
http:
  listen: %s
redis:
  url: unix://%s
acd:
  wrap_up: 0s
log:
  format: json
agents:
  - {id: a1, name: Wang Fang, sip_user: agent1, password: agent1-password, categories: [emergency, livelihood, general, complex]}
`, name, o.lease, sip, http, sock)
	})
}

// startPhone registers the agent's phone, which answers and never hangs up.
func startPhone(registrar string) (*agentua.Fleet, error) {
	target, err := netip.ParseAddrPort(registrar)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return agentua.Start(ctx, agentua.Options{
		Registrar: target, Agents: []agentua.Agent{{User: "agent1", Password: "agent1-password"}},
		Logger: zerolog.New(io.Discard),
	})
}

// citizen calls hotline at sip from who, goes through intake to the
// queue and stays on the line; the returned function hangs up.
func citizen(sip, who string) func() {
	catalog, err := prompts.Default()
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The call ends with the node's kill: its error says nothing here.
		_, _ = caller.Call(ctx, caller.Options{
			Target: "sip:12345@" + sip, From: who, Catalog: catalog,
			Script: caller.Script{
				{On: prompts.Greeting, BargeIn: true, Press: "3"},
				{On: prompts.ConsentMenu, BargeIn: true, Press: "2"},
			},
			Logger: zerolog.New(io.Discard),
		})
	}()
	return func() {
		cancel()
		<-done
	}
}

func agentIs(s *acd.Store, want acd.State) bool {
	a, err := s.Agent(context.Background(), "a1")
	return err == nil && a.State == want
}

// recordEnded reports whether the call from who is recorded as ended
// with node_lost.
func recordEnded(s *calllog.Store, who string) bool {
	list, err := s.List(context.Background(), 20)
	if err != nil {
		return false
	}
	for _, r := range list {
		if r.Caller == who && r.EndCause == calllog.NodeLost {
			return true
		}
	}
	return false
}

// await polls cond every 10 ms until it holds, or fails after d.
func await(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// row is one scenario's figures.
type row struct {
	scenario      string
	runs          int
	agent, record []time.Duration
}

func summarise(sc string, res []result) row {
	r := row{scenario: sc, runs: len(res)}
	for _, x := range res {
		r.agent = append(r.agent, x.agent)
		r.record = append(r.record, x.record)
	}
	slices.Sort(r.agent)
	slices.Sort(r.record)
	return r
}

func spread(d []time.Duration) string {
	if len(d) == 0 {
		return "-"
	}
	s := func(x time.Duration) string { return fmt.Sprintf("%.2f s", x.Seconds()) }
	return fmt.Sprintf("%s / %s / %s", s(d[0]), s(d[len(d)/2]), s(d[len(d)-1]))
}

// report prints the table docs/benchmarks.md shows.
func report(w io.Writer, o options, rows []row) {
	fmt.Fprintf(w, "| scenario | cluster.lease | kills | agent available (min / median / max) | record ended, node_lost (min / median / max) |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s |\n", r.scenario, o.lease, r.runs, spread(r.agent), spread(r.record))
	}
}
