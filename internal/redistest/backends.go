package redistest

import (
	"context"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The names of Backends' subtests.
const (
	BackendServer   = "server"
	BackendSentinel = "sentinel"
	BackendCluster  = "cluster"
)

// Backends runs f as three subtests of t, each with a client of a real
// Redis deployment as production runs one:
//
//	server    a private redis-server of the subtest's own (Start)
//	sentinel  a master and a replica behind three sentinels (StartSentinel)
//	cluster   three masters of a Redis Cluster (StartCluster)
//
// Starting a Sentinel set or a cluster takes seconds, so one of each is
// shared by the package's tests, started by the first test that needs it
// and stopped by RunTests, which the package's TestMain must call. A
// shared set serves one subtest at a time and is emptied (FLUSHALL on
// every master) before each. So f must not call t.Parallel: the set would
// stay held while the subtest waits; call t.Parallel on the test before
// Backends instead. The client is closed when the subtest ends.
//
// With -short only the server subtest runs.
func Backends(t *testing.T, f func(t *testing.T, rdb redis.UniversalClient)) {
	t.Helper()
	run := func(name string, body func(t *testing.T)) {
		t.Helper()
		var done atomic.Bool
		t.Run(name, func(t *testing.T) {
			defer done.Store(true)
			body(t)
		})
		if !done.Load() {
			// t.Run returned before the subtest ended, with its set
			// held: f called t.Parallel.
			t.Fatalf("redistest: Backends: the %s subtest called t.Parallel; call it on %s before Backends", name, t.Name())
		}
	}
	run(BackendServer, func(t *testing.T) {
		f(t, Start(t).Client(t))
	})
	run(BackendSentinel, func(t *testing.T) {
		if testing.Short() {
			t.Skip("redistest: no Sentinel with -short")
		}
		shared.sentinel.use(t, f)
	})
	run(BackendCluster, func(t *testing.T) {
		if testing.Short() {
			t.Skip("redistest: no Cluster with -short")
		}
		shared.cluster.use(t, f)
	})
}

// RunTests runs the package's tests and then stops the Sentinel set and
// the cluster that Backends shared among them. A package whose tests call
// Backends calls it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(redistest.RunTests(m)) }
func RunTests(m *testing.M) int {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.stop()
	return code
}

// deployment is a Sentinel set or a cluster as Backends shares it.
type deployment struct {
	client func() redis.UniversalClient
	flush  func(ctx context.Context, rdb redis.UniversalClient) error
}

// sharedSet is one shared deployment: started once, then lent to one
// subtest at a time.
type sharedSet struct {
	name  string
	start func(c cleaner, dir string) (deployment, error)

	once sync.Once
	d    deployment
	err  error
	lent sync.Mutex // held by the subtest using the set
}

// sharedSets are what Backends shares among a package's tests.
type sharedSets struct {
	mu       sync.Mutex
	main     bool     // RunTests runs the tests
	cleanups []func() // stop the shared sets

	sentinel, cluster *sharedSet
}

var shared = &sharedSets{
	sentinel: &sharedSet{name: "Sentinel", start: func(c cleaner, dir string) (deployment, error) {
		s, err := startSentinel(c, dir)
		if err != nil {
			return deployment{}, err
		}
		return deployment{client: func() redis.UniversalClient { return s.client() }, flush: s.flush}, nil
	}},
	cluster: &sharedSet{name: "Cluster", start: func(c cleaner, dir string) (deployment, error) {
		cl, err := startCluster(c, dir)
		if err != nil {
			return deployment{}, err
		}
		return deployment{client: func() redis.UniversalClient { return cl.client() }, flush: cl.flush}, nil
	}},
}

// Cleanup runs f when RunTests has run the tests: the shared sets live as
// long as the package's tests.
func (s *sharedSets) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

// stop runs the cleanups, last first, as testing does.
func (s *sharedSets) stop() {
	s.mu.Lock()
	cleanups := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
}

func (s *sharedSet) use(t *testing.T, f func(t *testing.T, rdb redis.UniversalClient)) {
	t.Helper()
	shared.mu.Lock()
	main := shared.main
	shared.mu.Unlock()
	if !main {
		t.Fatalf("redistest: Backends shares a %s among the package's tests, which needs TestMain to call redistest.RunTests", s.name)
	}
	s.once.Do(func() {
		dir, err := os.MkdirTemp("", "redistest-"+s.name+"-")
		if err != nil {
			s.err = err
			return
		}
		shared.Cleanup(func() { _ = os.RemoveAll(dir) })
		s.d, s.err = s.start(shared, dir)
	})
	if s.err != nil {
		t.Fatalf("redistest: the shared %s did not start: %v", s.name, s.err)
	}
	s.lent.Lock()
	t.Cleanup(s.lent.Unlock)
	rdb := s.d.client()
	t.Cleanup(func() { _ = rdb.Close() })
	if err := s.d.flush(t.Context(), rdb); err != nil {
		t.Fatalf("redistest: emptying the shared %s: %v", s.name, err)
	}
	f(t, rdb)
}

// Keys lists the keys matching pattern in rdb's deployment, sorted. On
// Cluster that is every master's: KEYS runs on one node only.
func Keys(t testing.TB, rdb redis.UniversalClient, pattern string) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		k, err := rdb.Keys(ctx, pattern).Result()
		if err != nil {
			t.Fatalf("redistest: KEYS %s: %v", pattern, err)
		}
		keys = k
	} else {
		var mu sync.Mutex
		err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			k, err := m.Keys(ctx, pattern).Result()
			mu.Lock()
			keys = append(keys, k...)
			mu.Unlock()
			return err
		})
		if err != nil {
			t.Fatalf("redistest: KEYS %s on every master: %v", pattern, err)
		}
	}
	slices.Sort(keys)
	return keys
}
