package redistest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// cleaner is what a set of servers needs of its owner: a test (its
// t.Cleanup), or the package's shared sets (stopped by RunTests).
type cleaner interface {
	Cleanup(func())
}

// node is a redis-server, or a sentinel, on a TCP port of loopback.
type node struct {
	port int

	tail *logTail // kept after the process is gone

	mu   sync.Mutex
	proc *process // nil once killed
}

func (n *node) addr() string { return addr(n.port) }

// kill ends the process with SIGKILL and waits until it is gone; a node
// already stopped is left alone.
func (n *node) kill() error {
	n.mu.Lock()
	p := n.proc
	n.proc = nil
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := p.stop(syscall.SIGKILL, waitTimeout); err != nil {
		return fmt.Errorf("%s: %w", n.addr(), err)
	}
	return nil
}

func (n *node) log() string { return n.tail.String() }

// startNode starts redis-server with the arguments args gives for a free
// port (it may take more ports itself, as a cluster node's bus port), in
// dir, trying other ports when one was taken before the server bound it.
// The node is killed in c's cleanup.
func startNode(c cleaner, dir, ready string, args func(port int) ([]string, error)) (*node, error) {
	path, err := redisServer()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for try := 1; ; try++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		a, err := args(port)
		if err != nil {
			return nil, err
		}
		p, err := startProcess(path, a, ready)
		if errors.Is(err, errAddrInUse) && try < startTries {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("redis-server on port %d: %w", port, err)
		}
		n := &node{port: port, proc: p, tail: p.log}
		c.Cleanup(func() { _ = n.kill() })
		return n, nil
	}
}

// redisServer finds the redis-server binary.
func redisServer() (string, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server not found on PATH (%v): install the Debian package redis-server (apt-get install -y redis-server)", err)
	}
	return path, nil
}

// dataArgs are the arguments every data node of a Sentinel set or a
// cluster runs with: loopback only, no persistence (these sets are for
// replication and failover, not for crash tests: Start is), the log on
// stdout.
func dataArgs(port int, dir string) []string {
	return []string{
		"--port", fmt.Sprint(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", "",
	}
}
