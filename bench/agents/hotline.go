package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotline12345/hotline/bench/internal/rig"
	"github.com/hotline12345/hotline/internal/agentua"
	"github.com/hotline12345/hotline/web/client"
)

// hotline is the server under test, a child process.
type hotline struct{ *rig.Hotline }

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
	h, err := rig.StartHotline(o.binary, dir, filepath.Join(o.out, "hotline.log"), 60*time.Second, func(sip, http string) string {
		return o.config(sip, http, dir, agents)
	})
	if err != nil {
		return nil, err
	}
	return &hotline{h}, nil
}

// api is hotline's API with the run's token.
func (h *hotline) api() *client.Client {
	return &client.Client{Base: "http://" + h.HTTP, Token: h.Token, HTTP: http.DefaultClient}
}

// getJSON reads one of hotline's API resources into v.
func (h *hotline) getJSON(path string, v any) error {
	return h.api().Do(context.Background(), http.MethodGet, path, nil, v)
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
