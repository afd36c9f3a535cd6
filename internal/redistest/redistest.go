// Package redistest runs real Redis for tests, as production runs it:
//
//   - Start: a private redis-server with its own temporary directory, a unix
//     socket instead of a TCP port (so parallel tests never race for ports),
//     and the append-only file turned on, so tests can restart or crash it
//     and check what survives;
//   - StartSentinel: a master, a replica and three sentinels, with timings
//     short enough that a failover (Sentinel.Failover) takes seconds;
//   - StartCluster: a Redis Cluster of three masters made with
//     redis-cli --cluster create;
//   - Backends: a test's body run on each of the three, the Sentinel set and
//     the cluster shared by the package's tests (see RunTests).
//
// Every process is a child of the test binary, on ports the kernel handed
// out, stopped in cleanup and killed by the kernel if the test binary dies.
package redistest

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// stopTimeout bounds how long Restart and cleanup wait for a SIGTERMed
// server to flush its append-only file and exit.
const stopTimeout = 30 * time.Second

// maxSocketPath is the room in sockaddr_un.sun_path on Linux (108 bytes with
// the terminating NUL, unix(7)).
const maxSocketPath = 107

// Server is one redis-server child of the test process. Its methods are
// called from the test's goroutine.
type Server struct {
	path string // redis-server binary
	dir  string // data directory, also holds the socket
	sock string

	mu   sync.Mutex
	proc *process // nil while stopped
}

// Start starts a redis-server for t and stops it in t.Cleanup. The server
// listens only on a unix socket (--port 0), keeps its data in a private
// temporary directory with --appendonly yes and no RDB snapshots, and is
// ready when its log says it accepts connections.
func Start(t testing.TB) *Server {
	t.Helper()
	s := New(t)
	s.Start(t)
	return s
}

// New is Start without starting the server: its URL is known, and its
// Start method starts it, for tests of what waits for a Redis that is not
// there yet.
func New(t testing.TB) *Server {
	t.Helper()
	path, err := redisServer()
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	dir := tempDir(t)
	s := &Server{path: path, dir: dir, sock: filepath.Join(dir, "redis.sock")}
	t.Cleanup(func() {
		s.mu.Lock()
		p := s.proc
		s.proc = nil
		s.mu.Unlock()
		if p != nil {
			if err := p.stop(syscall.SIGTERM, stopTimeout); err != nil {
				t.Errorf("redistest: stopping redis-server: %v\n%s", err, p.log)
			}
		}
	})
	return s
}

// tempDir makes a private directory whose socket path fits in sun_path:
// t.TempDir can be too deep under a long TMPDIR or test name.
func tempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if len(filepath.Join(dir, "redis.sock")) <= maxSocketPath {
		return dir
	}
	dir, err := os.MkdirTemp("/tmp", "redistest-")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// URL is the server's address as a unix:// URL, accepted by storage.Open
// and redis.ParseURL.
func (s *Server) URL() string { return "unix://" + s.sock }

// Socket is the path of the server's unix socket.
func (s *Server) Socket() string { return s.sock }

// Dir is the server's data directory (the append-only files live in its
// appendonlydir).
func (s *Server) Dir() string { return s.dir }

// PID is the process id of the running server, 0 while it is stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Client returns a new client of the server, closed in t.Cleanup. It
// survives Restart and Kill+Start: go-redis drops broken connections and
// dials again.
func (s *Server) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	opts, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Restart stops the server with SIGTERM (it fsyncs its append-only file on
// the way out), waits for it to exit and starts it again on the same socket
// and directory.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.halt(t, syscall.SIGTERM)
	s.Start(t)
}

// Kill crashes the server with SIGKILL and waits until it is gone. What it
// had acknowledged is still in the append-only file (written before the
// reply), so Start brings it back.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.halt(t, syscall.SIGKILL)
}

func (s *Server) halt(t testing.TB, sig syscall.Signal) {
	t.Helper()
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		t.Fatalf("redistest: redis-server is not running")
	}
	if err := p.stop(sig, stopTimeout); err != nil {
		t.Fatalf("redistest: stopping redis-server: %v\n%s", err, p.log)
	}
}

// Start starts the server (again after Kill, on the same socket and
// directory) and waits until it accepts connections.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	running := s.proc != nil
	s.mu.Unlock()
	if running {
		t.Fatalf("redistest: redis-server is already running")
	}
	// A SIGKILLed server leaves its socket file behind; redis-server
	// unlinks it before binding, so nothing needs doing here.
	p, err := startProcess(s.path, []string{
		"--port", "0",
		"--unixsocket", s.sock,
		"--unixsocketperm", "700",
		"--dir", s.dir,
		"--appendonly", "yes",
		"--save", "",
		"--daemonize", "no",
		"--logfile", "",
	}, readyLine)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
}
