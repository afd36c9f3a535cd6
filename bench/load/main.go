// Command load measures hotline under sipp load: a built hotline serves
// intake calls, one or more sipp processes call it with audio streaming
// both ways, and the run reports failed calls, hotline's CPU, and how well
// its RTP pacer kept time (from hotline's own /metrics).
//
//	go run ./bench/load -calls 1000 -concurrent 1000 -rate 60
//	go run ./bench/load -calls 18000 -concurrent 2000 -rate 300 -hangup 2s
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotline12345/hotline/bench/internal/measure"
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
		o.binary = filepath.Join(dir, "hotline")
		build := exec.Command("go", "build", "-o", o.binary, "./cmd/hotline")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build: %w", err)
		}
	}

	srv, err := startHotline(o, dir)
	if err != nil {
		return err
	}
	defer srv.stop()

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

	cpu := srv.sampleCPU()
	start := time.Now()
	results, err := runSipps(o, scenario, wav, srv.sip, dir)
	elapsed := time.Since(start)
	cpuStats := cpu()
	if err != nil {
		return err
	}
	m, err := measure.Scrape(srv.http)
	if err != nil {
		return err
	}
	var ok, failed int
	for _, r := range results {
		ok += r.ok
		failed += r.failed
	}
	frames, late := m["hotline_rtp_frames_sent_total"], m["hotline_rtp_frames_late_total"]
	onTime := 100 * (1 - late/math.Max(frames, 1))
	fmt.Printf("calls %d (%d at once max, %.0f/s offered, %d sipp) in %s\n", o.calls, o.concurrent, o.rate, o.sipps, elapsed.Round(time.Second))
	fmt.Printf("  successful %d  failed %d (%.3f%%)\n", ok, failed, 100*float64(failed)/math.Max(float64(ok+failed), 1))
	fmt.Printf("  hotline CPU: mean %.0f%%, peak %.0f%% of the %d-core machine (while calls were up)\n", cpuStats.mean, cpuStats.peak, runtime.NumCPU())
	fmt.Printf("  peak active calls %d\n", cpuStats.peakCalls)
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

type hotline struct {
	cmd       *exec.Cmd
	sip, http string
	done      chan error
}

func startHotline(o options, dir string) (*hotline, error) {
	sipPort, err := sipptest.FreeMediaPort()
	if err != nil {
		return nil, err
	}
	httpPort, err := sipptest.FreeMediaPort()
	if err != nil {
		return nil, err
	}
	h := &hotline{
		sip:  fmt.Sprintf("127.0.0.1:%d", sipPort),
		http: fmt.Sprintf("127.0.0.1:%d", httpPort),
		done: make(chan error, 1),
	}
	cfg := fmt.Sprintf(`sip:
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
`, h.sip, h.http, filepath.Join(dir, "redis"))
	path := filepath.Join(dir, "hotline.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(o.out, "hotline.log"))
	if err != nil {
		return nil, err
	}
	h.cmd = exec.Command(o.binary, "serve", "--config", path)
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	if err := h.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { h.done <- h.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + h.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return h, nil
			}
		}
		select {
		case err := <-h.done:
			return nil, fmt.Errorf("hotline exited: %v (see %s)", err, logf.Name())
		case <-time.After(100 * time.Millisecond):
		}
	}
	h.stop()
	return nil, errors.New("hotline did not become healthy")
}

func (h *hotline) stop() {
	_ = h.cmd.Process.Signal(os.Interrupt)
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.done
	}
}

type cpuStats struct {
	mean, peak float64
	peakCalls  int
}

// sampleCPU samples hotline's CPU time every second; the returned function
// stops and reports the mean and peak over the seconds with calls up, in
// percent of the whole machine.
func (h *hotline) sampleCPU() func() cpuStats {
	ctx, cancel := context.WithCancel(context.Background())
	var st cpuStats
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		prev, prevAt := measure.ProcCPU(h.cmd.Process.Pid), time.Now()
		var sum float64
		var n int
		for {
			select {
			case <-ctx.Done():
				mu.Lock()
				if n > 0 {
					st.mean = sum / float64(n)
				}
				mu.Unlock()
				return
			case <-tick.C:
			}
			cur, at := measure.ProcCPU(h.cmd.Process.Pid), time.Now()
			pct := 100 * (cur - prev).Seconds() / at.Sub(prevAt).Seconds() / float64(runtime.NumCPU())
			prev, prevAt = cur, at
			m, err := measure.Scrape(h.http)
			if err != nil || m["hotline_calls_active"] < 1 {
				continue
			}
			mu.Lock()
			sum += pct
			n++
			st.peak = math.Max(st.peak, pct)
			st.peakCalls = max(st.peakCalls, int(m["hotline_calls_active"]))
			mu.Unlock()
		}
	}()
	return func() cpuStats {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return st
	}
}

type sippResult struct{ ok, failed int }

func runSipps(o options, sc sipptest.Scenario, wav, target, dir string) ([]sippResult, error) {
	results := make([]sippResult, o.sipps)
	errs := make([]error, o.sipps)
	var wg sync.WaitGroup
	for i := range o.sipps {
		sc := sc
		sc.Caller = fmt.Sprintf("138%02d", i)
		xml, err := sipptest.Render(sc, wav)
		if err != nil {
			return nil, err
		}
		file := filepath.Join(dir, fmt.Sprintf("uac%d.xml", i))
		if err := os.WriteFile(file, []byte(xml), 0o644); err != nil {
			return nil, err
		}
		mp, err := sipptest.FreeMediaPort()
		if err != nil {
			return nil, err
		}
		calls := o.calls / o.sipps
		if i < o.calls%o.sipps {
			calls++
		}
		args := []string{
			"-sf", file, "-s", "12345", target, "-i", "127.0.0.1", "-p", "0",
			"-mp", strconv.Itoa(mp),
			"-m", strconv.Itoa(calls), "-l", strconv.Itoa(max(1, o.concurrent/o.sipps)),
			"-r", strconv.FormatFloat(o.rate/float64(o.sipps), 'f', 2, 64), "-rp", "1000",
			"-nostdin", "-max_socket", "8192", "-timeout", "600s", "-timeout_error",
			"-trace_stat", "-stf", filepath.Join(o.out, fmt.Sprintf("sipp%d.csv", i)), "-fd", "5",
			"-trace_err", "-error_file", filepath.Join(o.out, fmt.Sprintf("sipp%d-errors.log", i)),
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("nice", append([]string{"-n", strconv.Itoa(o.nice), "sipp"}, args...)...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				errs[i] = fmt.Errorf("sipp: %w", err)
				return
			}
			_ = os.WriteFile(filepath.Join(o.out, fmt.Sprintf("sipp%d.out", i)), out, 0o644)
			results[i] = lastCounts(filepath.Join(o.out, fmt.Sprintf("sipp%d.csv", i)))
		}()
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// lastCounts reads the cumulative successful and failed calls from the
// last line of a sipp -trace_stat file.
func lastCounts(path string) sippResult {
	f, err := os.Open(path)
	if err != nil {
		return sippResult{}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var header, last []string
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ";")
		if header == nil {
			header = fields
			continue
		}
		last = fields
	}
	var r sippResult
	for i, name := range header {
		if i >= len(last) {
			break
		}
		n, _ := strconv.Atoi(last[i])
		switch name {
		case "SuccessfulCall(C)":
			r.ok = n
		case "FailedCall(C)":
			r.failed = n
		}
	}
	return r
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
