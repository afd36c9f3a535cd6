package redistest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinels of StartSentinel monitor.
const MasterName = "hotline"

// Sentinel timings, short so that a failover takes seconds: the master is
// taken for down after a second without an answer, and a failover that
// stalls is tried again after failoverTimeout.
const (
	downAfter       = "1000"
	failoverTimeout = "3000"
)

// Sentinel is a Redis Sentinel set of local processes: a master, a
// replica of it, and three sentinels monitoring it with a quorum of two,
// as production runs it.
type Sentinel struct {
	sentinels []*node

	mu     sync.Mutex
	data   []*node // the master and the replica
	master *node   // the one the sentinels named last
}

// StartSentinel starts a Sentinel set for t and stops it in t.Cleanup. It
// returns once the replica has synced with the master and every sentinel
// monitors it.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s, err := startSentinel(t, t.TempDir())
	if err != nil {
		t.Fatalf("redistest: Sentinel: %v", err)
	}
	return s
}

func startSentinel(c cleaner, dir string) (*Sentinel, error) {
	s := &Sentinel{}
	master, err := startNode(c, filepath.Join(dir, "master"), readyLine, func(port int) ([]string, error) {
		return append(dataArgs(port, filepath.Join(dir, "master")), replicationArgs...), nil
	})
	if err != nil {
		return nil, err
	}
	replica, err := startNode(c, filepath.Join(dir, "replica"), readyLine, func(port int) ([]string, error) {
		return append(dataArgs(port, filepath.Join(dir, "replica")), append(replicationArgs,
			"--replicaof", "127.0.0.1", strconv.Itoa(master.port))...), nil
	})
	if err != nil {
		return nil, err
	}
	s.data, s.master = []*node{master, replica}, master
	// The replica first, so that each sentinel finds it in the master's
	// first INFO reply rather than ten seconds later.
	if err := waitReplicaSynced(replica); err != nil {
		return nil, err
	}
	for i := range 3 {
		sdir := filepath.Join(dir, fmt.Sprintf("sentinel-%d", i+1))
		n, err := startNode(c, sdir, "+monitor master "+MasterName, func(port int) ([]string, error) {
			// A sentinel rewrites its configuration file: it must be
			// its own and writable.
			conf := filepath.Join(sdir, "sentinel.conf")
			text := strings.Join([]string{
				"port " + strconv.Itoa(port),
				"bind 127.0.0.1",
				"dir " + sdir,
				"sentinel monitor " + MasterName + " 127.0.0.1 " + strconv.Itoa(master.port) + " 2",
				"sentinel down-after-milliseconds " + MasterName + " " + downAfter,
				"sentinel failover-timeout " + MasterName + " " + failoverTimeout,
				"sentinel parallel-syncs " + MasterName + " 1",
			}, "\n") + "\n"
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				return nil, err
			}
			return []string{conf, "--sentinel", "--daemonize", "no", "--logfile", ""}, nil
		})
		if err != nil {
			return nil, err
		}
		s.sentinels = append(s.sentinels, n)
	}
	return s, nil
}

// replicationArgs make a replica's first sync immediate: Redis 7 waits
// five seconds for more replicas before a diskless sync by default.
var replicationArgs = []string{"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"}

func waitReplicaSynced(replica *node) error {
	rdb := redis.NewClient(&redis.Options{Addr: replica.addr()})
	defer func() { _ = rdb.Close() }()
	return poll("replica "+replica.addr()+" in sync", func(ctx context.Context) (bool, string, error) {
		info, err := rdb.Info(ctx, "replication").Result()
		if err != nil {
			return false, err.Error(), nil
		}
		st := infoField(info, "master_link_status")
		return st == "up", "master_link_status " + st, nil
	})
}

// URL is the set's address as hotline is configured with it:
// redis-sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/hotline.
func (s *Sentinel) URL() string {
	return "redis-sentinel://" + strings.Join(s.SentinelAddrs(), ",") + "/" + MasterName
}

// SentinelAddrs are the sentinels' addresses.
func (s *Sentinel) SentinelAddrs() []string {
	var out []string
	for _, n := range s.sentinels {
		out = append(out, n.addr())
	}
	return out
}

// Client returns a new client of the set's master, found through the
// sentinels, closed in t.Cleanup. It follows a failover.
func (s *Sentinel) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	c := s.client()
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *Sentinel) client() *redis.Client {
	return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: MasterName, SentinelAddrs: s.SentinelAddrs()})
}

// MasterAddr is the address of the master, as the sentinels named it
// last (at start, or at the end of WaitFailover).
func (s *Sentinel) MasterAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.master.addr()
}

// KillMaster crashes the master with SIGKILL, once the sentinels are ready
// to fail over (they know each other and the replica), and returns its
// address. WaitFailover then waits for the replica to take over.
func (s *Sentinel) KillMaster(t testing.TB) string {
	t.Helper()
	if err := s.waitFailoverReady(); err != nil {
		t.Fatalf("redistest: Sentinel: %v\n%s", err, s.logs())
	}
	s.mu.Lock()
	m := s.master
	s.mu.Unlock()
	if err := m.kill(); err != nil {
		t.Fatalf("redistest: Sentinel: killing the master: %v", err)
	}
	return m.addr()
}

// WaitFailover waits until every sentinel names a master other than old
// and that server says it is a master, and returns its address.
func (s *Sentinel) WaitFailover(t testing.TB, old string) string {
	t.Helper()
	var now string
	err := poll("failover from "+old, func(ctx context.Context) (bool, string, error) {
		named, why := s.agreedMaster(ctx)
		if named == "" || named == old {
			return false, why, nil
		}
		role, err := role(ctx, named)
		if err != nil || role != "master" {
			return false, fmt.Sprintf("sentinels name %s, whose role is %q (%v)", named, role, err), nil
		}
		now = named
		return true, "", nil
	})
	if err != nil {
		t.Fatalf("redistest: Sentinel: %v\n%s", err, s.logs())
	}
	s.mu.Lock()
	for _, n := range s.data {
		if n.addr() == now {
			s.master = n
		}
	}
	s.mu.Unlock()
	return now
}

// Failover crashes the master and waits for the replica to take over; it
// returns the new master's address.
func (s *Sentinel) Failover(t testing.TB) string {
	t.Helper()
	return s.WaitFailover(t, s.KillMaster(t))
}

// waitFailoverReady waits until every sentinel knows the replica and the
// two other sentinels (they learn of each other through hello messages
// every two seconds), without which they cannot agree on a failover.
func (s *Sentinel) waitFailoverReady() error {
	return poll("sentinels ready to fail over", func(ctx context.Context) (bool, string, error) {
		for _, n := range s.sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: n.addr()})
			m, err := sc.Master(ctx, MasterName).Result()
			_ = sc.Close()
			if err != nil {
				return false, n.addr() + ": " + err.Error(), nil
			}
			if m["num-slaves"] == "0" || m["num-other-sentinels"] != strconv.Itoa(len(s.sentinels)-1) {
				return false, fmt.Sprintf("%s knows %s replicas and %s other sentinels", n.addr(), m["num-slaves"], m["num-other-sentinels"]), nil
			}
		}
		return true, "", nil
	})
}

// agreedMaster is the master every sentinel names, or "" and why not.
func (s *Sentinel) agreedMaster(ctx context.Context) (string, string) {
	named := ""
	for _, n := range s.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: n.addr()})
		a, err := sc.GetMasterAddrByName(ctx, MasterName).Result()
		_ = sc.Close()
		if err != nil || len(a) != 2 {
			return "", fmt.Sprintf("%s: %v %v", n.addr(), a, err)
		}
		addr := a[0] + ":" + a[1]
		if named != "" && addr != named {
			return "", fmt.Sprintf("the sentinels name %s and %s", named, addr)
		}
		named = addr
	}
	return named, ""
}

func role(ctx context.Context, addr string) (string, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer func() { _ = rdb.Close() }()
	info, err := rdb.Info(ctx, "replication").Result()
	if err != nil {
		return "", err
	}
	return infoField(info, "role"), nil
}

// flush empties the master (the replica follows).
func (s *Sentinel) flush(ctx context.Context, rdb redis.UniversalClient) error {
	return rdb.FlushAll(ctx).Err()
}

// logs are the recent log lines of every process of the set, for failure
// messages.
func (s *Sentinel) logs() string {
	var b strings.Builder
	s.mu.Lock()
	nodes := append(append([]*node{}, s.data...), s.sentinels...)
	s.mu.Unlock()
	for _, n := range nodes {
		fmt.Fprintf(&b, "--- %s\n%s\n", n.addr(), n.log())
	}
	return b.String()
}
