// Package rig starts what the load benchmarks drive and measure: hotline
// built from the tree as a child process, and sipp callers.
package rig

import (
	"bufio"
	"context"
	"errors"
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

// Build builds ./cmd/hotline into dir and returns the binary's path.
func Build(dir string) (string, error) {
	binary := filepath.Join(dir, "hotline")
	build := exec.Command("go", "build", "-o", binary, "./cmd/hotline")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	return binary, nil
}

// Hotline is the server under test, a child process.
type Hotline struct {
	Cmd       *exec.Cmd
	SIP, HTTP string // host:port it listens on
	Token     string // a supervisor's token for the API
	done      chan error
}

// StartHotline runs binary with the configuration config returns for the
// SIP and HTTP addresses it is given (free loopback ports), written to
// dir/hotline.yaml, its output going to logPath; it returns once /healthz
// answers 200, or fails after ready. Its state directory is dir/state
// unless the configuration names one: a benchmark's nodes never share one
// with each other, nor with a hotline of the machine's user.
func StartHotline(binary, dir, logPath string, ready time.Duration, config func(sip, http string) string) (*Hotline, error) {
	sipPort, err := sipptest.FreeMediaPort()
	if err != nil {
		return nil, err
	}
	httpPort, err := sipptest.FreeMediaPort()
	if err != nil {
		return nil, err
	}
	h := &Hotline{
		SIP:  fmt.Sprintf("127.0.0.1:%d", sipPort),
		HTTP: fmt.Sprintf("127.0.0.1:%d", httpPort),
		done: make(chan error, 1),
	}
	path := filepath.Join(dir, "hotline.yaml")
	if err := os.WriteFile(path, []byte(config(h.SIP, h.HTTP)), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	h.Cmd = exec.Command(binary, "serve", "--config", path)
	h.Cmd.Env = append(os.Environ(), "STATE_DIRECTORY="+filepath.Join(dir, "state"))
	h.Cmd.Stdout, h.Cmd.Stderr = logf, logf
	if err := h.Cmd.Start(); err != nil {
		return nil, err
	}
	go func() { h.done <- h.Cmd.Wait() }()
	deadline := time.Now().Add(ready)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + h.HTTP + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if h.Token, err = mintToken(binary, path); err != nil {
					h.Stop(ready)
					return nil, err
				}
				return h, nil
			}
		}
		select {
		case err := <-h.done:
			return nil, fmt.Errorf("hotline exited: %v (see %s)", err, logf.Name())
		case <-time.After(100 * time.Millisecond):
		}
	}
	h.Stop(ready)
	return nil, errors.New("hotline did not become healthy")
}

// mintToken makes a supervisor's token for the API the way an operator on
// the server's host does: in the store of the configuration at path.
func mintToken(binary, path string) (string, error) {
	cmd := exec.Command(binary, "tokens", "create", "--role", "supervisor", "--expires", "1d", "--name", "bench", "--config", path)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hotline tokens create: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Stop interrupts hotline (its calls end at once) and waits up to grace
// before killing it.
func (h *Hotline) Stop(grace time.Duration) {
	_ = h.Cmd.Process.Signal(os.Interrupt)
	select {
	case <-h.done:
	case <-time.After(grace):
		_ = h.Cmd.Process.Kill()
		<-h.done
	}
}

// CPU is hotline's CPU use over the seconds with calls up, in percent of
// the whole machine, and the most calls up at once.
type CPU struct {
	Mean, Peak float64
	PeakCalls  int
}

// SampleCPU samples hotline's CPU time every 2 s; the returned function
// stops and reports the mean and peak over the samples with calls up.
func (h *Hotline) SampleCPU() func() CPU {
	pid := h.Cmd.Process.Pid
	ctx, cancel := context.WithCancel(context.Background())
	var st CPU
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		prev, prevAt := measure.ProcCPU(pid), time.Now()
		var sum float64
		var n int
		for {
			select {
			case <-ctx.Done():
				mu.Lock()
				if n > 0 {
					st.Mean = sum / float64(n)
				}
				mu.Unlock()
				return
			case <-tick.C:
			}
			cur, at := measure.ProcCPU(pid), time.Now()
			pct := 100 * (cur - prev).Seconds() / at.Sub(prevAt).Seconds() / float64(runtime.NumCPU())
			prev, prevAt = cur, at
			m, err := measure.Scrape(h.HTTP)
			if err != nil || m["hotline_calls_active"] < 1 {
				continue
			}
			mu.Lock()
			sum += pct
			n++
			st.Peak = math.Max(st.Peak, pct)
			st.PeakCalls = max(st.PeakCalls, int(m["hotline_calls_active"]))
			mu.Unlock()
		}
	}()
	return func() CPU {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return st
	}
}

// Sipps is a run of sipp processes calling one target, sharing the calls
// and the rate between them.
type Sipps struct {
	N      int     // processes
	Calls  int     // calls in all
	Rate   float64 // calls per second in all
	Limit  int     // calls up at once per process; 0: as many as it places
	Target string  // host:port
	// Timeout is sipp's global timeout: a call still up then fails.
	Timeout time.Duration
	Nice    int    // niceness of the processes
	Dir     string // where the scenario files go
	Out     string // where each process's statistics and output go
	// Scenario is process i's scenario XML.
	Scenario func(i int) (string, error)
}

// SippResult is one process's outcome.
type SippResult struct {
	OK, Failed int           // calls, from its -trace_stat file
	CPU        time.Duration // its user and system time
}

// Run runs the processes to their end.
func (s Sipps) Run() ([]SippResult, error) {
	results := make([]SippResult, s.N)
	errs := make([]error, s.N)
	var wg sync.WaitGroup
	for i := range s.N {
		xml, err := s.Scenario(i)
		if err != nil {
			return nil, err
		}
		file := filepath.Join(s.Dir, fmt.Sprintf("uac%d.xml", i))
		if err := os.WriteFile(file, []byte(xml), 0o644); err != nil {
			return nil, err
		}
		mp, err := sipptest.FreeMediaPort()
		if err != nil {
			return nil, err
		}
		calls := s.Calls / s.N
		if i < s.Calls%s.N {
			calls++
		}
		limit := s.Limit
		if limit <= 0 {
			limit = calls
		}
		stats := filepath.Join(s.Out, fmt.Sprintf("sipp%d.csv", i))
		args := []string{
			"-n", strconv.Itoa(s.Nice), "sipp",
			"-sf", file, "-s", "12345", s.Target, "-i", "127.0.0.1", "-p", "0",
			"-mp", strconv.Itoa(mp),
			"-m", strconv.Itoa(calls), "-l", strconv.Itoa(limit),
			"-r", strconv.FormatFloat(s.Rate/float64(s.N), 'f', 2, 64), "-rp", "1000",
			"-nostdin", "-max_socket", "8192",
			"-timeout", strconv.Itoa(int(s.Timeout.Seconds())) + "s", "-timeout_error",
			"-trace_stat", "-stf", stats, "-fd", "5",
			"-trace_err", "-error_file", filepath.Join(s.Out, fmt.Sprintf("sipp%d-errors.log", i)),
		}
		wg.Go(func() {
			cmd := exec.Command("nice", args...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				errs[i] = fmt.Errorf("sipp: %w", err)
				return
			}
			results[i].CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			_ = os.WriteFile(filepath.Join(s.Out, fmt.Sprintf("sipp%d.out", i)), out, 0o644)
			results[i].OK, results[i].Failed = lastCounts(stats)
		})
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// lastCounts reads the cumulative successful and failed calls from the
// last line of a sipp -trace_stat file.
func lastCounts(path string) (ok, failed int) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0
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
	for i, name := range header {
		if i >= len(last) {
			break
		}
		n, _ := strconv.Atoi(last[i])
		switch name {
		case "SuccessfulCall(C)":
			ok = n
		case "FailedCall(C)":
			failed = n
		}
	}
	return ok, failed
}
