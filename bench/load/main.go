// Command load measures hotline under sipp load: a built hotline serves
// intake calls, one or more sipp processes call it with audio streaming
// both ways, and the run reports failed calls, hotline's CPU, and how well
// its RTP pacer kept time (from hotline's own /metrics).
//
//	go run ./bench/load -calls 1000 -concurrent 1000 -rate 60
//	go run ./bench/load -calls 18000 -concurrent 2000 -rate 300 -hangup 2s
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hotline12345/hotline/bench/internal/measure"
	"github.com/hotline12345/hotline/bench/internal/rig"
	"github.com/hotline12345/hotline/internal/sipptest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

type options struct {
	calls, concurrent, sipps int
	rate                     float64
	short                    bool
	nice                     int
	first, gap, hangup       time.Duration
	binary, out              string
}

func run() error {
	var o options
	flag.IntVar(&o.calls, "calls", 1000, "calls in all")
	flag.IntVar(&o.concurrent, "concurrent", 1000, "most calls at once (sipp -l), across all sipp processes")
	flag.Float64Var(&o.rate, "rate", 50, "new calls per second, across all sipp processes")
	flag.IntVar(&o.sipps, "sipps", 0, "sipp processes sharing the load (default: one per 250 concurrent calls)")
	flag.BoolVar(&o.short, "short", false, "short calls: keys typed ahead during the greeting, about 10 s a call")
	flag.DurationVar(&o.hangup, "hangup", 0, "the caller hangs up this long after the answer (call-rate runs); 0 runs intake to its end")
	flag.DurationVar(&o.first, "first", 21*time.Second, "when the caller presses the category key (the menu's prompt ends at about 21.6 s)")
	flag.DurationVar(&o.gap, "gap", 9*time.Second, "then the consent key this much later (its prompt lasts about 9.9 s)")
	flag.StringVar(&o.binary, "hotline", "", "hotline binary (default: built from ./cmd/hotline)")
	flag.StringVar(&o.out, "out", "bench/out", "folder for logs and sipp statistics")
	flag.IntVar(&o.nice, "nice", 10, "niceness of the sipp processes: on one machine, the load generator yields the CPU to the server it measures, as it would on a machine of its own")
	flag.Parse()
	if o.sipps <= 0 {
		o.sipps = max(1, (o.concurrent+249)/250)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hotline-load-")
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
		return hotlineConfig(sip, http, dir)
	})
	if err != nil {
		return err
	}
	defer srv.Stop(30 * time.Second)

	scenario := sipptest.Scenario{Caller: "1380"}
	switch {
	case o.hangup > 0:
		scenario.Actions = []sipptest.Action{{Pause: o.hangup}}
		scenario.Hangup = true
	case o.short:
		scenario.Actions = sipptest.Keys(time.Second, 500*time.Millisecond, "21")
	default:
		// Hear the greeting and most of each menu, answering each near its
		// end (barge-in): about 39 s a call with the defaults.
		scenario.Actions = sipptest.Keys(o.first, o.gap, "21")
	}
	wav := filepath.Join(dir, "silence.wav")
	if err := os.WriteFile(wav, sipptest.SilenceWAV(2*time.Second), 0o644); err != nil {
		return err
	}

	cpu := srv.SampleCPU()
	start := time.Now()
	results, err := rig.Sipps{
		N: o.sipps, Calls: o.calls, Rate: o.rate, Limit: max(1, o.concurrent/o.sipps),
		Target: srv.SIP, Timeout: 10 * time.Minute, Nice: o.nice, Dir: dir, Out: o.out,
		Scenario: func(i int) (string, error) {
			sc := scenario
			sc.Caller = fmt.Sprintf("138%02d", i)
			return sipptest.Render(sc, wav)
		},
	}.Run()
	elapsed := time.Since(start)
	cpuStats := cpu()
	if err != nil {
		return err
	}
	m, err := measure.Scrape(srv.HTTP)
	if err != nil {
		return err
	}
	var ok, failed int
	for _, r := range results {
		ok += r.OK
		failed += r.Failed
	}
	frames, late := m["hotline_rtp_frames_sent_total"], m["hotline_rtp_frames_late_total"]
	onTime := 100 * (1 - late/math.Max(frames, 1))
	fmt.Printf("calls %d (%d at once max, %.0f/s offered, %d sipp) in %s\n", o.calls, o.concurrent, o.rate, o.sipps, elapsed.Round(time.Second))
	fmt.Printf("  successful %d  failed %d (%.3f%%)\n", ok, failed, 100*float64(failed)/math.Max(float64(ok+failed), 1))
	fmt.Printf("  hotline CPU: mean %.0f%%, peak %.0f%% of the %d-core machine (while calls were up)\n", cpuStats.Mean, cpuStats.Peak, runtime.NumCPU())
	fmt.Printf("  peak active calls %d\n", cpuStats.PeakCalls)
	fmt.Printf("  RTP frames sent %.0f, on time (≤10 ms late) %.3f%%\n", frames, onTime)
	fmt.Printf("  send lateness p99 %s; send jitter (RFC 3550) p50 %s p99 %s; spacing deviation p50 %s p99 %s\n",
		measure.Quantile(m, "hotline_rtp_send_lateness_seconds", 0.99, time.Microsecond),
		measure.Quantile(m, "hotline_rtp_send_jitter_seconds", 0.50, time.Microsecond),
		measure.Quantile(m, "hotline_rtp_send_jitter_seconds", 0.99, time.Microsecond),
		measure.Quantile(m, "hotline_rtp_send_spacing_deviation_seconds", 0.50, time.Microsecond),
		measure.Quantile(m, "hotline_rtp_send_spacing_deviation_seconds", 0.99, time.Microsecond))
	fmt.Printf("  pacer wake delay p50 %s p99 %s, tick p50 %s p99 %s\n",
		measure.Quantile(m, "hotline_rtp_pacer_wake_delay_seconds", 0.50, time.Microsecond), measure.Quantile(m, "hotline_rtp_pacer_wake_delay_seconds", 0.99, time.Microsecond),
		measure.Quantile(m, "hotline_rtp_pacer_tick_seconds", 0.50, time.Microsecond), measure.Quantile(m, "hotline_rtp_pacer_tick_seconds", 0.99, time.Microsecond))
	fmt.Printf("  calls ended: %s\n", endCauses(m))
	return nil
}

// hotlineConfig is the configuration hotline runs with: large limits,
// embedded Redis in dir.
func hotlineConfig(sip, http, dir string) string {
	return fmt.Sprintf(`sip:
  listen: %s
  rtp_ports: 20000-40000
  max_calls: 20000
http:
  listen: %s
redis:
  data_dir: %s
log:
  level: info
  format: json
`, sip, http, filepath.Join(dir, "redis"))
}

func endCauses(m map[string]float64) string {
	var parts []string
	for k, v := range m {
		if strings.HasPrefix(k, "hotline_calls_total{") && v > 0 {
			parts = append(parts, fmt.Sprintf("%s=%.0f", strings.TrimSuffix(strings.TrimPrefix(k, "hotline_calls_total{cause=\""), "\"}"), v))
		}
	}
	return strings.Join(parts, " ")
}
