package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/internal/agentua"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/prompts"
	"github.com/hotline12345/hotline/web"
	"github.com/hotline12345/hotline/web/client"
)

// reconcileBound is how soon, by default, what a killed node held must be
// given back: the agent free again, the call record ended.
const reconcileBound = 30 * time.Second

// crashRig is a Redis shared by hotline processes, an agent's phone and a
// citizen calling.
type crashRig struct {
	t     *testing.T
	dir   string
	redis *redistest.Server
	rdb   redis.UniversalClient
	acd   *acd.Store
	calls *calllog.Store
}

func newCrashRig(t *testing.T) *crashRig {
	t.Helper()
	r := &crashRig{t: t, dir: t.TempDir(), redis: redistest.Start(t)}
	r.rdb = r.redis.Client(t)
	r.acd = acd.NewStore(r.rdb, acd.StoreOptions{})
	r.calls = calllog.NewStore(r.rdb, calllog.StoreOptions{})
	return r
}

// node is a hotline process.
type node struct {
	name     string
	cmd      *exec.Cmd
	sip      netip.AddrPort
	api      string
	instance string
	exited   chan struct{}
}

// start runs a hotline process named name on the shared Redis, with one
// agent provisioned and the lease given.
func (r *crashRig) start(name string, lease time.Duration) *node {
	r.t.Helper()
	return r.startWith(name, lease, "")
}

// startWith is start with more of the configuration, in YAML.
func (r *crashRig) startWith(name string, lease time.Duration, extra string) *node {
	r.t.Helper()
	path := filepath.Join(r.dir, name+".yaml")
	cfg := fmt.Sprintf(`node: %s
cluster:
  lease: %s
sip:
  listen: 127.0.0.1:0
  transports: [udp]
  rtp_priority: 0
http:
  listen: 127.0.0.1:0
redis:
  url: %s
ivr:
  first_digit_timeout: 1s
acd:
  wrap_up: 0s
log:
  format: json
agents:
  - {id: a1, name: Wang Fang, sip_user: agent1, password: agent1-password, categories: [emergency, livelihood, general, complex]}
`, name, lease, r.redis.URL()) + extra
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		r.t.Fatal(err)
	}
	n := &node{name: name, exited: make(chan struct{})}
	n.cmd = exec.Command(os.Args[0], "-test.run=^$")
	n.cmd.Env = append(os.Environ(), childConfigEnv+"="+path)
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	instance := make(chan string, 1)
	var logs sync.WaitGroup
	logs.Go(func() {
		// The node's log, kept for a failure; its instance from the
		// line that names its lease.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		f, err := os.Create(filepath.Join(r.dir, name+".log"))
		if err == nil {
			defer f.Close()
		}
		for sc.Scan() {
			if f != nil {
				fmt.Fprintln(f, sc.Text())
			}
			var e struct{ Message, Instance string }
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Message == "node lease" {
				instance <- e.Instance
			}
		}
	})
	ready := make(chan childAddrs, 1)
	go func() {
		var a childAddrs
		if json.NewDecoder(stdout).Decode(&a) == nil {
			ready <- a
		}
		_, _ = bufio.NewReader(stdout).WriteTo(discard{})
	}()
	go func() {
		_ = n.cmd.Wait()
		logs.Wait()
		close(n.exited)
	}()
	r.t.Cleanup(func() { n.kill(r.t) })
	select {
	case a := <-ready:
		n.sip = netip.MustParseAddrPort(a.SIP)
		n.api = "http://" + a.HTTP
	case <-n.exited:
		r.t.Fatalf("hotline %s exited before serving; its log: %s", name, filepath.Join(r.dir, name+".log"))
	case <-time.After(time.Minute):
		r.t.Fatalf("hotline %s did not serve within a minute", name)
	}
	n.instance = <-instance
	return n
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// kill kills the process with SIGKILL and waits until it is gone.
func (n *node) kill(t *testing.T) {
	t.Helper()
	select {
	case <-n.exited:
		return
	default:
	}
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kill %s: %v", n.name, err)
	}
	<-n.exited
}

// phone registers the agent's phone with the node at registrar.
func (r *crashRig) phone(registrar netip.AddrPort) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), 30*time.Second)
	defer cancel()
	fleet, err := agentua.Start(ctx, agentua.Options{
		Registrar: registrar,
		Agents:    []agentua.Agent{{User: "agent1", Password: "agent1-password"}},
		Logger:    zerolog.New(zerolog.NewTestWriter(r.t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = fleet.Stop(ctx)
	})
}

// call places a citizen's call to n that goes through intake to the
// queue; the caller stays on the line.
func (r *crashRig) call(n *node, who string) {
	r.t.Helper()
	catalog, err := prompts.Default()
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, hangup := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The call's end is the node's kill: its error says nothing here.
		_, _ = caller.Call(ctx, caller.Options{
			Target: "sip:12345@" + n.sip.String(), From: who, Catalog: catalog,
			Script: caller.Script{
				{On: prompts.Greeting, BargeIn: true, Press: "3"},
				{On: prompts.ConsentMenu, BargeIn: true, Press: "2"},
			},
			Logger: zerolog.New(zerolog.NewTestWriter(r.t)).Level(zerolog.ErrorLevel),
		})
	}()
	r.t.Cleanup(func() {
		hangup()
		<-done
	})
}

// until polls cond until it holds or within passes.
func until(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last seen %s", what, within, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *crashRig) agentIs(want acd.State) func() (bool, string) {
	return func() (bool, string) {
		a, err := r.acd.Agent(r.t.Context(), "a1")
		return err == nil && a.State == want, fmt.Sprintf("%s (%v)", a.State, err)
	}
}

// record is the call record of who's call.
func (r *crashRig) record(who string) (calllog.Record, bool) {
	list, err := r.calls.List(r.t.Context(), 50)
	if err != nil {
		return calllog.Record{}, false
	}
	for _, rec := range list {
		if rec.Caller == who {
			return rec, true
		}
	}
	return calllog.Record{}, false
}

// talking puts a citizen's call on victim through to the agent.
func (r *crashRig) talking(victim *node, who string) calllog.Record {
	r.t.Helper()
	until(r.t, 20*time.Second, "agent available", r.agentIs(acd.Available))
	r.call(victim, who)
	until(r.t, time.Minute, "agent talking", r.agentIs(acd.Talking))
	rec, ok := r.record(who)
	if !ok || rec.Node != victim.name || rec.Instance != victim.instance || rec.EndedAt != nil {
		r.t.Fatalf("record during the call: %+v (found %v), want open on %s %s", rec, ok, victim.name, victim.instance)
	}
	return rec
}

// reconciled waits until the agent is free and the call record ended
// with node_lost, and returns how long after killed that was.
func (r *crashRig) reconciled(who string, killed time.Time) (time.Duration, calllog.Record) {
	r.t.Helper()
	var rec calllog.Record
	var agentFree, recordEnded time.Duration
	until(r.t, reconcileBound, "the agent free and the record ended", func() (bool, string) {
		if agentFree == 0 {
			if ok, _ := r.agentIs(acd.Available)(); ok {
				agentFree = time.Since(killed)
			}
		}
		if recordEnded == 0 {
			if got, ok := r.record(who); ok && got.EndedAt != nil {
				rec, recordEnded = got, time.Since(killed)
			}
		}
		a, _ := r.acd.Agent(r.t.Context(), "a1")
		return agentFree > 0 && recordEnded > 0, fmt.Sprintf("agent %s, record %+v", a.State, rec)
	})
	if rec.EndCause != calllog.NodeLost {
		r.t.Errorf("record ended %s (%s), want node_lost", rec.EndCause, rec.EndDetail)
	}
	r.t.Logf("after kill -9: agent available in %s, call record ended (node_lost) in %s",
		agentFree.Round(time.Millisecond), recordEnded.Round(time.Millisecond))
	return max(agentFree, recordEnded), rec
}

// worksAgain checks through survivor's API that the agent takes orders
// again: a pause is a pause, a resume a resume, a delete a delete.
func (r *crashRig) worksAgain(survivor *node) {
	r.t.Helper()
	secret, _, err := auth.NewStore(r.rdb, auth.StoreOptions{}).CreateToken(r.t.Context(),
		auth.TokenSpec{Roles: []auth.Role{auth.Supervisor, auth.Admin}, TTL: time.Hour, By: "test"})
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := client.New(survivor.api, secret)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx := r.t.Context()
	var st web.StateReply
	if err := c.Do(ctx, http.MethodPost, "/api/v1/agents/a1/pause", map[string]string{"reason": "lunch"}, &st); err != nil || st.State != acd.Paused {
		r.t.Errorf("pause after the reconcile: %+v %v", st, err)
	}
	if err := c.Do(ctx, http.MethodPost, "/api/v1/agents/a1/resume", nil, &st); err != nil || st.State != acd.Available {
		r.t.Errorf("resume after the reconcile: %+v %v", st, err)
	}
	if err := c.Do(ctx, http.MethodDelete, "/api/v1/agents/a1", nil, nil); err != nil {
		r.t.Errorf("delete after the reconcile: %v", err)
	}
	if _, err := r.acd.Agent(ctx, "a1"); !errors.Is(err, acd.ErrNotFound) {
		r.t.Errorf("the agent is still there: %v", err)
	}
}

// TestKilledNodeRestarted: hotline is killed with SIGKILL during an
// agent's call and started again under the same name. The new run proves
// the old process gone and takes over at once, well before the old lease
// (the default 15 s) would have run out: the agent is available, the call
// record ended with node_lost.
func TestKilledNodeRestarted(t *testing.T) {
	t.Parallel()
	r := newCrashRig(t)
	const lease = 15 * time.Second
	first := r.start("n1", lease)
	r.phone(first.sip)
	const who = "13900000001"
	r.talking(first, who)

	first.kill(t)
	killed := time.Now()
	second := r.start("n1", lease)
	if second.instance == first.instance {
		t.Fatalf("the restart kept the instance %s", first.instance)
	}
	took, rec := r.reconciled(who, killed)
	if took >= lease {
		t.Errorf("reconciled %s after the kill: the successor waited for the old lease (%s)", took, lease)
	}
	if !strings.Contains(rec.EndDetail, "reconciled by instance "+second.instance) {
		t.Errorf("record detail %q, want the successor %s", rec.EndDetail, second.instance)
	}
	r.worksAgain(second)
}

// TestKilledNodeReconciledByAnother: of two nodes, the one holding an
// agent's call is killed with SIGKILL and stays down; the other gives
// back what it held once its lease has run out.
func TestKilledNodeReconciledByAnother(t *testing.T) {
	t.Parallel()
	r := newCrashRig(t)
	const lease = 3 * time.Second
	victim := r.start("n1", lease)
	survivor := r.start("n2", lease)
	r.phone(survivor.sip)
	const who = "13900000002"
	r.talking(victim, who)

	victim.kill(t)
	killed := time.Now()
	took, rec := r.reconciled(who, killed)
	// Not before the lease could run out (it was renewed at most a fifth
	// of it before the kill), and not much after the next look.
	if took < lease*4/5 || took > lease*2+lease/5 {
		t.Errorf("reconciled %s after the kill, want about the lease %s", took, lease)
	}
	if !strings.Contains(rec.EndDetail, "reconciled by instance "+survivor.instance) {
		t.Errorf("record detail %q, want the survivor %s", rec.EndDetail, survivor.instance)
	}
	r.worksAgain(survivor)
}
