package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// readyLine is what redis-server logs once it accepts connections: Redis
// 7.0 says "The server is now ready to accept connections", 7.2 and later
// "Ready to accept connections". Compared in lower case.
const readyLine = "ready to accept connections"

// pollInterval is how often a wait for a state of Redis (a replica's
// link, a cluster's state, a failover) asks again. Redis changes these
// states on its own timers of 100 ms to 1 s.
const pollInterval = 50 * time.Millisecond

// waitTimeout bounds the waits for a state of Redis: a replica's first
// sync, a cluster agreeing on its slots, a failover. Each takes seconds;
// reaching this bound means it is not coming.
const waitTimeout = 60 * time.Second

// startTries bounds the attempts at starting a server on TCP ports that
// another process took between the test asking the kernel for them and
// the server binding them.
const startTries = 5

type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait has returned
	log    *logTail
}

// errAddrInUse is returned by startProcess when the server could not bind
// its port: the caller picks other ports and tries again.
var errAddrInUse = errors.New("address already in use")

// startProcess runs path with args and waits until its log has a line
// containing ready (in lower case). The process is killed if its parent
// (the test binary) dies, so no server outlives a crashed test run.
func startProcess(path string, args []string, ready string) (*process, error) {
	cmd := exec.Command(path, args...)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := startCmd(cmd); err != nil {
		_ = r.Close()
		_ = w.Close()
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	_ = w.Close()
	p := &process{cmd: cmd, exited: make(chan struct{}), log: &logTail{}}
	readyc := make(chan struct{})
	go p.log.follow(r, ready, readyc)
	go func() {
		_ = cmd.Wait()
		exited()
		close(p.exited)
	}()

	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case <-readyc:
		return p, nil
	case <-p.exited:
		if strings.Contains(strings.ToLower(p.log.String()), "address already in use") {
			return nil, errAddrInUse
		}
		return nil, fmt.Errorf("%s exited before it was ready: %v\n%s", path, cmd.ProcessState, p.log)
	case <-timer.C:
		_ = p.stop(syscall.SIGKILL, waitTimeout)
		return nil, fmt.Errorf("%s not ready after %v\n%s", path, waitTimeout, p.log)
	}
}

// stop signals the process and waits for it to exit; a process that
// ignores the signal past timeout is killed.
func (p *process) stop(sig syscall.Signal, timeout time.Duration) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		return nil
	case <-timer.C:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return errors.New("redis-server ignored " + sig.String() + " and was killed")
}

// freePort is a TCP port on loopback that the kernel handed out for ":0"
// a moment ago. Redis cannot take ":0" itself (--port 0 means no TCP),
// and Sentinel and Cluster speak TCP only; a port taken again meanwhile
// makes the server fail with errAddrInUse, and the caller tries again.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// poll calls cond every pollInterval until it reports true, returns an
// error, or waitTimeout passes; the last reason cond gave is in the
// timeout's error.
func poll(what string, cond func(ctx context.Context) (bool, string, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	last := ""
	for {
		ok, why, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		last = why
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not after %v (%s)", what, waitTimeout, last)
		case <-tick.C:
		}
	}
}

// infoField is the value of field in the text of an INFO reply.
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// logTail keeps the server's recent log lines for failure messages.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

const tailLines = 40

// follow reads the server's log until the pipe closes, closing readyc at
// the first line that contains ready.
func (l *logTail) follow(r io.ReadCloser, ready string, readyc chan<- struct{}) {
	defer func() { _ = r.Close() }()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		l.mu.Lock()
		l.lines = append(l.lines, line)
		if len(l.lines) > tailLines {
			l.lines = l.lines[len(l.lines)-tailLines:]
		}
		l.mu.Unlock()
		if !signalled && strings.Contains(strings.ToLower(line), ready) {
			signalled = true
			close(readyc)
		}
	}
	// Drain to EOF so the server never blocks on a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
