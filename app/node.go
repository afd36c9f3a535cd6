package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/journal"
)

// joinCluster takes this node's liveness lease: as the successor of the
// name's previous run when that one stopped without leaving. What a lost
// node held in the queue is given back by acd; its call records are ended
// here, with node_lost, counted in ended.
func joinCluster(ctx context.Context, cfg config.Config, agents *acd.Store, calls *calllog.Store, ended *prometheus.CounterVec, log zerolog.Logger) (*acd.NodeLease, error) {
	me := thisProcess()
	lease, err := agents.JoinNode(ctx, acd.NodeOptions{
		Name:    nodeName(cfg),
		Lease:   time.Duration(cfg.Cluster.Lease),
		WrapUp:  time.Duration(cfg.ACD.WrapUp),
		Process: me,
		Gone:    func(p acd.Process) bool { return processGone(me, p) },
		CloseCalls: func(ctx context.Context, l acd.LostNode) error {
			at := l.LastRenewed
			if at.IsZero() {
				at = l.LostAt
			}
			detail := fmt.Sprintf("node %s (instance %s) lost: it last renewed its lease at %s; reconciled by instance %s",
				l.Name, l.Instance, l.LastRenewed.UTC().Format(time.RFC3339Nano), l.By)
			n, err := calls.CloseOpen(ctx, l.Instance, at, calllog.NodeLost, detail)
			ended.WithLabelValues(string(calllog.NodeLost)).Add(float64(n))
			if n > 0 {
				log.Warn().Str("lost_node", l.Name).Str("lost_instance", l.Instance).Int("calls", n).Msg("node: the lost node's call records ended")
			}
			return err
		},
		Log: log,
	})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", nodeName(cfg), err)
	}
	log.Info().Str("node", lease.Name()).Str("instance", lease.Instance()).Stringer("lease", time.Duration(cfg.Cluster.Lease)).Msg("node lease")
	return lease, nil
}

// leaveCluster ends the lease once every call has ended: a record left
// open (its final save never reached Redis) is ended as the shutdown's,
// and the name is free for the next run at once. It gives up by stopBy
// (when not zero), and does not try while Redis does not answer: the
// final records are in the journal then, and the lease runs out.
func leaveCluster(lease *acd.NodeLease, calls *calllog.Store, keeper *journal.Keeper, stopBy time.Time, log zerolog.Logger) {
	if keeper.Down() {
		log.Warn().Int("journaled", keeper.Pending()).Msg("node: redis does not answer at the stop: the lease runs out, and the journal is replayed at the next start")
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	if !stopBy.IsZero() && stopBy.Before(deadline) {
		deadline = stopBy
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	// Final records still in the journal go first, or they would be
	// ended below as cut short by the stop.
	if err := keeper.Replay(ctx); err != nil {
		log.Warn().Err(err).Int("journaled", keeper.Pending()).Msg("node: replaying the journal at the stop; the next start does")
		return
	}
	if n, err := calls.CloseOpen(ctx, lease.Instance(), time.Now(), calllog.Shutdown, "the node stopped before the call's record was saved"); err != nil {
		log.Warn().Err(err).Msg("node: ending the calls left open; the other nodes will, once the lease runs out")
		return
	} else if n > 0 {
		log.Warn().Int("calls", n).Msg("node: call records left open at the stop ended")
	}
	if err := lease.Leave(ctx); err != nil {
		log.Warn().Err(err).Msg("node: leaving; the lease runs out instead")
	}
}

// thisProcess identifies this process for its successor: on Linux, the
// kernel's boot id, the pid namespace and the process's start time (field
// 22 of /proc/self/stat) tell it from any later process given the same
// pid. Elsewhere those stay empty and prove nothing.
func thisProcess() acd.Process {
	p := acd.Process{PID: os.Getpid()}
	p.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		p.Boot = strings.TrimSpace(string(b))
	}
	p.PIDNS, _ = os.Readlink("/proc/self/ns/pid")
	p.Start, _ = procStart(p.PID)
	return p
}

// processGone reports whether p, a previous run, provably no longer runs:
// it ran under this kernel's boot and in this pid namespace, and no live
// process with its pid and start time is there now. A process of another
// machine or container cannot be looked at, so it is never proven gone:
// its lease has to run out.
func processGone(me, p acd.Process) bool {
	if me.Boot == "" || me.PIDNS == "" || p.Start == "" || p.Boot != me.Boot || p.PIDNS != me.PIDNS || p.PID <= 0 {
		return false
	}
	start, alive := procStart(p.PID)
	return !alive || start != p.Start
}

// procStart reads a process's start time from /proc/<pid>/stat; alive is
// false when there is no such process, or only its zombie (a process
// killed but not yet reaped by its parent runs no more).
func procStart(pid int) (start string, alive bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", false
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses,
	// so fields are counted after the last ')'. state is field 3,
	// starttime field 22 (proc(5)).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return "", false
	}
	return f[19], f[0] != "Z" && f[0] != "X"
}
