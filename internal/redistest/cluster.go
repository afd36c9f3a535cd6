package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// clusterSize is the number of masters of StartCluster: the fewest Redis
// Cluster allows.
const clusterSize = 3

// Cluster is a Redis Cluster of three local masters without replicas,
// the 16384 slots shared among them, made as an operator makes one: with
// redis-cli --cluster create.
type Cluster struct {
	nodes []*node
}

// StartCluster starts a cluster for t and stops it in t.Cleanup. It
// returns once every node says cluster_state:ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := startCluster(t, t.TempDir())
	if err != nil {
		t.Fatalf("redistest: Cluster: %v", err)
	}
	return c
}

func startCluster(cl cleaner, dir string) (*Cluster, error) {
	c := &Cluster{}
	for i := range clusterSize {
		ndir := filepath.Join(dir, fmt.Sprintf("node-%d", i+1))
		n, err := startNode(cl, ndir, readyLine, func(port int) ([]string, error) {
			// The cluster bus takes port+10000 unless told otherwise,
			// and that port may be anyone's: ask the kernel for it too.
			bus, err := freePort()
			if err != nil {
				return nil, err
			}
			return append(dataArgs(port, ndir),
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes-"+strconv.Itoa(port)+".conf",
				"--cluster-port", strconv.Itoa(bus),
				"--cluster-node-timeout", "5000",
			), nil
		})
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, n)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli not found on PATH (%v): install the Debian package redis-tools", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.waitOK(); err != nil {
		return nil, err
	}
	return c, nil
}

// waitOK waits until every node knows every other and serves a complete
// slot map.
func (c *Cluster) waitOK() error {
	return poll("cluster_state:ok on every node", func(ctx context.Context) (bool, string, error) {
		for _, n := range c.nodes {
			rdb := redis.NewClient(&redis.Options{Addr: n.addr()})
			info, err := rdb.ClusterInfo(ctx).Result()
			_ = rdb.Close()
			if err != nil {
				return false, n.addr() + ": " + err.Error(), nil
			}
			state, known := infoField(info, "cluster_state"), infoField(info, "cluster_known_nodes")
			if state != "ok" || known != strconv.Itoa(len(c.nodes)) {
				return false, fmt.Sprintf("%s: cluster_state:%s cluster_known_nodes:%s", n.addr(), state, known), nil
			}
		}
		return true, "", nil
	})
}

// URL is the cluster's address as hotline is configured with it:
// redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3.
func (c *Cluster) URL() string { return "redis+cluster://" + strings.Join(c.Addrs(), ",") }

// Addrs are the masters' addresses.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.addr())
	}
	return out
}

// Client returns a new cluster client, closed in t.Cleanup.
func (c *Cluster) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	rdb := c.client()
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func (c *Cluster) client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
}

// flush empties every master.
func (c *Cluster) flush(ctx context.Context, rdb redis.UniversalClient) error {
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return fmt.Errorf("a %T is no cluster client", rdb)
	}
	return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		return m.FlushAll(ctx).Err()
	})
}
