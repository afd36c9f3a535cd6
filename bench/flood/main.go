// Command flood measures hotline under an INVITE flood: sipp processes send
// INVITEs from addresses that never ACK (one source, or many loopback
// addresses), while legitimate callers call through the trunk (a trusted
// address) and go through intake. It reports the legitimate calls
// answered and completed, what became of the flood's INVITEs (dropped
// over their source's rate, admitted and ended as no_ack), and hotline's
// memory, goroutines and Redis keys before the flood and once it is over.
//
//	go run ./bench/flood -sources 1
//	go run ./bench/flood -sources 50
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/bench/internal/measure"
	"github.com/hotline12345/hotline/bench/internal/rig"
	"github.com/hotline12345/hotline/internal/sipptest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		os.Exit(1)
	}
}

type options struct {
	sources, nice, rounds   int
	floodRate               float64
	legitRate               float64
	duration, settle, quiet time.Duration
	binary, out, trunk      string
}

// floodFrom is the first flood source; the others follow it.
const floodFrom = 10

func run() error {
	var o options
	flag.IntVar(&o.sources, "sources", 1, "flood source addresses (127.0.0.10, .11, …), one sipp each")
	flag.Float64Var(&o.floodRate, "flood-rate", 200, "flood INVITEs per second, across all sources")
	flag.DurationVar(&o.duration, "duration", time.Minute, "how long the flood lasts")
	flag.Float64Var(&o.legitRate, "legit-rate", 2, "legitimate calls per second, from the trunk, while the flood lasts")
	flag.DurationVar(&o.settle, "settle", 45*time.Second, "wait after the flood for its admitted calls to end (no_ack after 32 s) before measuring")
	flag.DurationVar(&o.quiet, "quiet", 130*time.Second, "how long memory is sampled when quiet, its least heap taken: longer than the Go runtime's forced GC period (2 min), so a collection happened")
	flag.IntVar(&o.rounds, "rounds", 2, "floods, one after the other: memory flat means no growth from one to the next")
	flag.StringVar(&o.trunk, "trunk", "127.0.0.1", "the trunk's address: the legitimate callers', a trusted network")
	flag.StringVar(&o.binary, "hotline", "", "hotline binary (default: built from ./cmd/hotline)")
	flag.StringVar(&o.out, "out", "bench/out/flood", "folder for logs and sipp statistics")
	flag.IntVar(&o.nice, "nice", 19, "niceness of the sipp processes, legitimate and flood")
	flag.Parse()
	if o.sources < 1 || o.sources > 200 {
		return errors.New("-sources: want 1 to 200")
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hotline-flood-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.binary == "" {
		if o.binary, err = rig.Build(dir); err != nil {
			return err
		}
	}
	srv, err := rig.StartHotline(o.binary, dir, filepath.Join(o.out, "hotline.log"), 30*time.Second, func(sip, http string) string {
		return fmt.Sprintf(`sip:
  listen: %s
  transports: [udp]
  rtp_ports: 20000-40000
  limits:
    trusted: [%s]
http:
  listen: %s
redis:
  data_dir: %s
log:
  level: info
  format: json
`, sip, o.trunk, http, filepath.Join(dir, "redis"))
	})
	if err != nil {
		return err
	}
	defer srv.Stop(30 * time.Second)
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: filepath.Join(dir, "redis", "redis.sock")})
	defer rdb.Close()

	wav := filepath.Join(dir, "silence.wav")
	if err := os.WriteFile(wav, sipptest.SilenceWAV(2*time.Second), 0o644); err != nil {
		return err
	}
	legit := func(name string, calls int, rate float64) ([]rig.SippResult, error) {
		return rig.Sipps{
			N: 1, Calls: calls, Rate: rate, Target: srv.SIP, Timeout: 10 * time.Minute,
			Nice: o.nice, Dir: dir, Out: filepath.Join(o.out, name),
			Scenario: func(int) (string, error) {
				// Intake with the keys typed ahead: about 10 s a call, ended
				// by hotline's BYE after the appeal number.
				return sipptest.Render(sipptest.Scenario{
					Caller: "13900", Actions: sipptest.Keys(time.Second, 500*time.Millisecond, "21"),
				}, wav)
			},
		}.Run()
	}
	for _, d := range []string{"warmup"} {
		if err := os.MkdirAll(filepath.Join(o.out, d), 0o755); err != nil {
			return err
		}
	}
	// Warm up, so that what a first call allocates once is in the
	// figures before the flood.
	if _, err := legit("warmup", 20, 10); err != nil {
		return err
	}
	if err := idle(srv.HTTP, time.Minute); err != nil {
		return err
	}
	before, err := sample(srv, rdb, o.quiet)
	if err != nil {
		return err
	}
	snaps := []snapshot{before}
	var b strings.Builder
	fmt.Fprintf(&b, "flood: %d source(s) from 127.0.0.%d, %.0f INVITE/s for %s, no ACK, %d round(s); sipp at nice %d\n",
		o.sources, floodFrom, o.floodRate, o.duration, o.rounds, o.nice)
	legitCalls := int(o.legitRate * (o.duration + 10*time.Second).Seconds())
	for round := 1; round <= o.rounds; round++ {
		var (
			wg                 sync.WaitGroup
			legitRes           []rig.SippResult
			legitErr, floodErr error
			floodCalls         int
		)
		m0, err := measure.Scrape(srv.HTTP)
		if err != nil {
			return err
		}
		peak := srv.SampleCPU()
		name := fmt.Sprintf("legit%d", round)
		if err := os.MkdirAll(filepath.Join(o.out, name), 0o755); err != nil {
			return err
		}
		wg.Go(func() { legitRes, legitErr = legit(name, legitCalls, o.legitRate) })
		wg.Go(func() { floodCalls, floodErr = flood(o, dir, srv.SIP) })
		wg.Wait()
		cpu := peak()
		if err := errors.Join(legitErr, floodErr); err != nil {
			return err
		}
		// The flood's admitted calls end 32 s after their 200 (no ACK).
		time.Sleep(o.settle)
		if err := idle(srv.HTTP, time.Minute); err != nil {
			return err
		}
		m, err := measure.Scrape(srv.HTTP)
		if err != nil {
			return err
		}
		snap, err := sample(srv, rdb, o.quiet)
		if err != nil {
			return err
		}
		snaps = append(snaps, snap)
		var ok, failed int
		for _, r := range legitRes {
			ok, failed = ok+r.OK, failed+r.Failed
		}
		d := func(k string) float64 { return m[k] - m0[k] }
		fmt.Fprintf(&b, "round %d: %d flood INVITEs\n", round, floodCalls)
		fmt.Fprintf(&b, "  legitimate calls from the trunk %s at %.1f/s: %d placed, %d answered and through intake, %d failed (%.2f%%)\n",
			o.trunk, o.legitRate, legitCalls, ok, failed, 100*float64(ok)/float64(max(legitCalls, 1)))
		fmt.Fprintf(&b, "  flood INVITEs dropped unanswered over their source's rate %.0f, over the untrusted sources' max_calls %.0f; admitted %.0f, all ended no_ack\n",
			d(`hotline_sip_invites_dropped_total{reason="over_rate",source="untrusted"}`),
			d(`hotline_sip_invites_dropped_total{reason="untrusted_max_calls",source="untrusted"}`),
			d(`hotline_calls_total{cause="no_ack"}`))
		fmt.Fprintf(&b, "  calls ended: %s\n", causes(m, m0))
		fmt.Fprintf(&b, "  hotline CPU while calls were up: mean %.0f%%, peak %.0f%% of the machine; peak calls %d\n", cpu.Mean, cpu.Peak, cpu.PeakCalls)
	}
	fmt.Fprintf(&b, "  %-24s %12s", "", "before")
	for i := 1; i < len(snaps); i++ {
		fmt.Fprintf(&b, " %12s", fmt.Sprintf("after %d", i))
	}
	b.WriteString("\n")
	row := func(name string, f func(snapshot) string) {
		fmt.Fprintf(&b, "  %-24s", name)
		for _, s := range snaps {
			fmt.Fprintf(&b, " %12s", f(s))
		}
		b.WriteString("\n")
	}
	row("RSS", func(s snapshot) string { return mib(s.rss) })
	row("Go heap in use (least)", func(s snapshot) string { return mib(s.heap) })
	row("goroutines", func(s snapshot) string { return fmt.Sprint(s.goroutines) })
	row("Redis keys", func(s snapshot) string { return fmt.Sprint(s.keys) })
	row("  with no TTL", func(s snapshot) string { return fmt.Sprint(s.forever) })
	row("  call records", func(s snapshot) string { return fmt.Sprint(s.records) })
	row("  call records, no TTL", func(s snapshot) string { return fmt.Sprint(s.recordsForever) })
	last, first := snaps[len(snaps)-1], snaps[0]
	var kinds []string
	for k, n := range last.foreverKinds {
		if d := n - first.foreverKinds[k]; d != 0 {
			kinds = append(kinds, fmt.Sprintf("%s +%d", k, d))
		}
	}
	sort.Strings(kinds)
	fmt.Fprintf(&b, "  keys with no TTL added, by kind: %s\n", strings.Join(kinds, ", "))
	fmt.Print(b.String())
	return os.WriteFile(filepath.Join(o.out, fmt.Sprintf("flood-%d.txt", o.sources)), []byte(b.String()), 0o644)
}

// floodScenario sends one INVITE with an offer and ends at once: the
// flood never ACKs, and sipp discards what comes back for calls it has
// finished.
const floodScenario = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="flood">
  <send>
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:flood[call_number]@[local_ip]:[local_port]>;tag=[pid]F[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:flood@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=flood 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [local_ip]
      t=0 0
      m=audio 4000 RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <pause milliseconds="1"/>
</scenario>
`

// flood runs one sipp per source, each at its share of the rate, and
// returns the INVITEs they sent.
func flood(o options, dir, target string) (int, error) {
	file := filepath.Join(dir, "flood.xml")
	if err := os.WriteFile(file, []byte(floodScenario), 0o644); err != nil {
		return 0, err
	}
	perSource := o.floodRate / float64(o.sources)
	calls := int(perSource * o.duration.Seconds())
	var wg sync.WaitGroup
	errs := make([]error, o.sources)
	for i := range o.sources {
		from := fmt.Sprintf("127.0.0.%d", floodFrom+i)
		args := []string{
			"-n", strconv.Itoa(o.nice), "sipp", "-sf", file, "-s", "12345", target,
			"-i", from, "-p", "0", "-m", strconv.Itoa(calls), "-l", "1000",
			"-r", strconv.FormatFloat(perSource, 'f', 3, 64), "-rp", "1000",
			// -nr: no retransmission; -nd: no CANCEL or BYE when sipp
			// gives a call up (on the 100 Trying it did not wait for).
			"-nr", "-nd", "-nostdin", "-timeout", strconv.Itoa(int(o.duration.Seconds())+60) + "s",
		}
		wg.Go(func() {
			out, err := exec.Command("nice", args...).CombinedOutput()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				errs[i] = fmt.Errorf("flood sipp %s: %w", from, err)
			}
			_ = os.WriteFile(filepath.Join(o.out, fmt.Sprintf("flood-%s.out", from)), out, 0o644)
		})
	}
	wg.Wait()
	return calls * o.sources, errors.Join(errs...)
}

// snapshot is what is measured before and after a flood.
type snapshot struct {
	rss, heap                              float64 // bytes
	goroutines                             float64
	keys, forever, records, recordsForever int64
	foreverKinds                           map[string]int // keys with no expiry, by kind
}

// sample measures hotline once it is quiet: its heap in use is the least
// seen over quiet (sampled every 2 s; the Go runtime collects at least
// every 2 minutes), the rest as quiet ends; Redis's keys, those with no
// expiry, and the call records.
func sample(srv *rig.Hotline, rdb *redis.Client, quiet time.Duration) (snapshot, error) {
	s := snapshot{heap: -1, foreverKinds: map[string]int{}}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for end := time.Now().Add(quiet); ; <-tick.C {
		m, err := measure.Scrape(srv.HTTP)
		if err != nil {
			return s, err
		}
		if h := m["go_memstats_heap_inuse_bytes"]; s.heap < 0 || h < s.heap {
			s.heap = h
		}
		s.goroutines = m["go_goroutines"]
		if time.Now().After(end) {
			break
		}
	}
	var err error
	if s.rss, err = rss(srv.Cmd.Process.Pid); err != nil {
		return s, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		ttl, err := rdb.PTTL(ctx, key).Result()
		if err != nil {
			return s, err
		}
		record := strings.HasPrefix(key, "hotline:{calls}:record:")
		s.keys++
		if record {
			s.records++
		}
		if ttl == -1 {
			s.forever++
			s.foreverKinds[kind(key)]++
			if record {
				s.recordsForever++
			}
		}
	}
	return s, iter.Err()
}

// kind is a key without what names the one thing it holds: its parts up
// to the last ":", an appeal's or a day's number cut off.
func kind(key string) string {
	if i := strings.LastIndexByte(key, ':'); i > 0 {
		return key[:i]
	}
	return key
}

// rss is a process's resident set size from /proc.
func rss(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// idle waits until hotline has no call up.
func idle(httpAddr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		m, err := measure.Scrape(httpAddr)
		if err == nil && m["hotline_calls_active"] == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("calls still up after %s", within)
		}
		time.Sleep(time.Second)
	}
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// causes lists the calls ended between two scrapes, by end cause.
func causes(m, m0 map[string]float64) string {
	var parts []string
	for k, v := range m {
		if c, ok := strings.CutPrefix(k, `hotline_calls_total{cause="`); ok && v > m0[k] {
			parts = append(parts, fmt.Sprintf("%s=%.0f", strings.TrimSuffix(c, `"}`), v-m0[k]))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
