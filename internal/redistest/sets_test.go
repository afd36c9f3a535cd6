package redistest_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/redistest"
)

// The Sentinel set: the client reaches the master through the sentinels,
// and after the master is killed the replica takes over with what the
// master had replicated, and the same client follows it.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start := time.Now()
	s := redistest.StartSentinel(t)
	t.Logf("Sentinel set started in %v", time.Since(start))
	if !strings.HasPrefix(s.URL(), "redis-sentinel://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/"+redistest.MasterName) {
		t.Fatalf("URL %s", s.URL())
	}
	rdb := s.Client(t)
	if err := rdb.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Replication is asynchronous: wait until the replica has the write.
	if n, err := rdb.Do(ctx, "WAIT", 1, 10000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT: %d replicas, %v", n, err)
	}
	old := s.MasterAddr()
	start = time.Now()
	now := s.Failover(t)
	t.Logf("failover %s -> %s in %v", old, now, time.Since(start))
	if now == old || s.MasterAddr() != now {
		t.Fatalf("master %s after failover from %s (MasterAddr %s)", now, old, s.MasterAddr())
	}
	if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "before" {
		t.Fatalf("after failover: %q, %v", got, err)
	}
	if err := rdb.Set(ctx, "k", "after", 0).Err(); err != nil {
		t.Fatalf("write after failover: %v", err)
	}
	direct := redis.NewClient(&redis.Options{Addr: now})
	defer func() { _ = direct.Close() }()
	if got, err := direct.Get(ctx, "k").Result(); err != nil || got != "after" {
		t.Fatalf("the new master has %q, %v", got, err)
	}
}

// The cluster: three masters share the slots, the client routes keys to
// all of them, and keys of one hash tag stay together for scripts.
func TestCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start := time.Now()
	c := redistest.StartCluster(t)
	t.Logf("cluster started in %v", time.Since(start))
	if got := strings.Count(c.URL(), ","); !strings.HasPrefix(c.URL(), "redis+cluster://127.0.0.1:") || got != 2 {
		t.Fatalf("URL %s", c.URL())
	}
	rdb := c.Client(t).(*redis.ClusterClient)
	for i := range 30 {
		if err := rdb.Set(ctx, fmt.Sprint("k", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// ForEachMaster calls on every master at once.
	var holders atomic.Int32
	err := rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		if n > 0 {
			holders.Add(1)
		}
		return err
	})
	if err != nil || holders.Load() != 3 {
		t.Fatalf("keys on %d masters, want 3 (%v)", holders.Load(), err)
	}
	if err := rdb.Eval(ctx, "redis.call('SET', KEYS[1], 1); return redis.call('INCR', KEYS[2])", []string{"{t}:a", "{t}:b"}).Err(); err != nil {
		t.Fatalf("a script on one hash tag: %v", err)
	}
	if err := rdb.Eval(ctx, "return redis.call('MSET', KEYS[1], 1, KEYS[2], 2)", []string{"a", "b"}).Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("a script across slots: %v, want CROSSSLOT", err)
	}
}
