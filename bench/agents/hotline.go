package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotline12345/hotline/bench/internal/measure"
	"github.com/hotline12345/hotline/internal/agentua"
	"github.com/hotline12345/hotline/internal/sipptest"
)

// hotline is the server under test, a child process.
type hotline struct {
	cmd       *exec.Cmd
	sip, http string
	done      chan error
}

// agentAccount is one provisioned agent and its phone's account.
type agentAccount struct {
	ID    string
	Phone agentua.Agent
}

var allCategories = []string{"emergency", "livelihood", "general", "complex"}

func newAgents(n int) ([]agentAccount, error) {
	out := make([]agentAccount, n)
	for i := range out {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		out[i] = agentAccount{
			ID:    fmt.Sprintf("a%03d", i+1),
			Phone: agentua.Agent{User: fmt.Sprintf("agent%03d", i+1), Password: hex.EncodeToString(b)},
		}
	}
	return out, nil
}

// config is hotline's configuration for the run: the embedded SIP backend
// and Redis, and the agents with their phones' accounts.
func (o options) config(sipAddr, httpAddr, dir string, agents []agentAccount) string {
	var b strings.Builder
	fmt.Fprintf(&b, `sip:
  listen: %s
  transports: [udp]
  rtp_ports: 20000-40000
  max_calls: 20000
http:
  listen: %s
redis:
  data_dir: %s
acd:
  ring_timeout: %s
  wrap_up: %s
log:
  level: info
  format: json
agents:
`, sipAddr, httpAddr, filepath.Join(dir, "redis"), o.ringTimeout, o.wrapUp)
	for _, a := range agents {
		fmt.Fprintf(&b, "  - {id: %s, name: Agent %s, sip_user: %s, password: %s, categories: [%s]}\n",
			a.ID, a.ID, a.Phone.User, a.Phone.Password, strings.Join(allCategories, ", "))
	}
	return b.String()
}

func startHotline(o options, dir string, agents []agentAccount) (*hotline, error) {
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
	path := filepath.Join(dir, "hotline.yaml")
	if err := os.WriteFile(path, []byte(o.config(h.sip, h.http, dir, agents)), 0o600); err != nil {
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
	deadline := time.Now().Add(60 * time.Second)
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
	case <-time.After(90 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.done
	}
}

// getJSON reads one of hotline's API resources into v.
func (h *hotline) getJSON(path string, v any) error {
	resp, err := http.Get("http://" + h.http + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// renice lowers the priority of every thread of this process: on Linux
// niceness belongs to threads, and threads started later inherit it from
// the thread that starts them. hotline, already started, keeps its own.
func renice(n int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, n); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("renice thread %d: %w", tid, err)
		}
	}
	return nil
}

type cpuStats struct {
	mean, peak float64
	peakCalls  int
}

// sampleCPU samples a process's CPU time every 2 s; the returned function
// stops and reports the mean and peak over the samples with calls up, in
// percent of the whole machine.
func (h *hotline) sampleCPU(pid int) func() cpuStats {
	ctx, cancel := context.WithCancel(context.Background())
	var st cpuStats
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
					st.mean = sum / float64(n)
				}
				mu.Unlock()
				return
			case <-tick.C:
			}
			cur, at := measure.ProcCPU(pid), time.Now()
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

// labelled lists a metric's non-zero series as label=value.
func labelled(m map[string]float64, name, label string) string {
	var parts []string
	prefix := name + "{" + label + "=\""
	for k, v := range m {
		if strings.HasPrefix(k, prefix) && v > 0 {
			parts = append(parts, fmt.Sprintf("%s=%.0f", strings.TrimSuffix(strings.TrimPrefix(k, prefix), "\"}"), v))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
