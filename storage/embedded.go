package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Timings of the embedded server.
const (
	// readyTimeout bounds one start; loading a large append-only file
	// takes seconds, not minutes.
	readyTimeout = 2 * time.Minute
	// stopTimeout is how long a SIGTERMed server may take to fsync its
	// append-only file before it is killed.
	stopTimeout = 10 * time.Second
	// Restart backoff after an unexpected exit: doubling from min to max,
	// back to min once a server has run for stableRun.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
	stableRun  = time.Minute
	// maxSocketPath is the room in sockaddr_un.sun_path on Linux (108
	// bytes with the terminating NUL, unix(7)).
	maxSocketPath = 107
	// logTailLines is how much of the server's log an error quotes.
	logTailLines = 20
)

// socketName is the embedded server's socket inside the data directory.
const socketName = "redis.sock"

func openEmbedded(ctx context.Context, opts Options, serverPath string) (*Store, error) {
	if opts.DataDir == "" {
		return nil, ErrNoDataDir
	}
	dir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("storage: data dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: data dir: %w", err)
	}
	sock := filepath.Join(dir, socketName)
	if len(sock) > maxSocketPath {
		return nil, fmt.Errorf("%w: %s is %d bytes, at most %d fit", ErrSocketPath, sock, len(sock), maxSocketPath)
	}
	lock, err := lockDir(dir)
	if errors.Is(err, ErrDataDirInUse) && opts.Attach {
		client := redis.NewClient(&redis.Options{Network: "unix", Addr: sock})
		return &Store{Client: client, Mode: Embedded, stop: func() error { return nil }}, nil
	}
	if err != nil {
		return nil, err
	}
	log := opts.Logger.With().Str("redis_mode", string(Embedded)).Logger()
	if err := clearSocket(ctx, sock, log); err != nil {
		_ = lock.Close()
		return nil, err
	}

	life, cancel := context.WithCancel(context.Background())
	c := &child{
		path:    serverPath,
		dir:     dir,
		sock:    sock,
		log:     log,
		onReady: opts.childReady,
		done:    make(chan struct{}),
	}
	first := make(chan error, 1)
	go c.supervise(life, first)
	select {
	case err = <-first:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		cancel()
		<-c.done
		_ = lock.Close()
		return nil, err
	}

	client := redis.NewClient(&redis.Options{Network: "unix", Addr: sock})
	stop := func() error {
		cancel()
		<-c.done
		return lock.Close()
	}
	return &Store{Client: client, Mode: Embedded, stop: stop}, nil
}

// clearSocket makes the socket path free for a new server. A socket file
// nobody listens on is what a killed server leaves: it is removed. A
// server that still answers is an earlier hotline's child that outlived
// it (its parent-death signal not yet handled, or not available on this
// system): holding the directory lock, this process owns the directory, so
// the old server is asked to SHUTDOWN, which fsyncs its append-only file
// before it exits.
func clearSocket(ctx context.Context, sock string, log zerolog.Logger) error {
	if _, err := os.Lstat(sock); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		log.Info().Str("socket", sock).Msg("storage: removing the socket left by a redis-server that did not shut down cleanly")
		if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("storage: remove stale socket: %w", err)
		}
		return nil
	}
	_ = conn.Close()
	log.Warn().Str("socket", sock).Msg("storage: a redis-server from an earlier run still serves the data directory; shutting it down")
	old := redis.NewClient(&redis.Options{Network: "unix", Addr: sock, MaxRetries: -1})
	defer func() { _ = old.Close() }()
	sctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	// The server closes the connection as it exits, after the fsync and
	// after removing its socket; go-redis reports that EOF as success.
	if err := old.Shutdown(sctx).Err(); err != nil {
		return fmt.Errorf("storage: shut down the earlier redis-server at %s: %w", sock, err)
	}
	return nil
}

// child supervises the embedded redis-server: starts it, restarts it with
// backoff when it exits unexpectedly, stops it when its context ends.
type child struct {
	path    string
	dir     string
	sock    string
	log     zerolog.Logger
	onReady func(pid int)
	done    chan struct{} // closed when supervise has returned and no server runs
}

// process is one run of redis-server.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait has returned
	ready  chan struct{} // closed at the log line that says it accepts connections
	tail   *logTail
}

// supervise runs the server until ctx ends. The result of the first start
// goes to first, and a failed first start ends supervise: Open reports it
// instead of retrying forever.
func (c *child) supervise(ctx context.Context, first chan<- error) {
	defer close(c.done)
	// The parent-death signal fires when the thread that forked the child
	// exits, not the process (prctl(2)). Every child is forked on this
	// locked thread, which lives until the last child has exited.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	backoff := minBackoff
	for {
		p, err := c.start()
		if err == nil {
			if err = c.awaitReady(ctx, p); err != nil {
				c.stop(p)
			}
		}
		if first != nil {
			first <- err
			if err != nil {
				return
			}
			first = nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Error().Err(err).Stringer("retry_in", backoff).Msg("storage: embedded redis-server did not start; retrying")
		} else {
			pid := p.cmd.Process.Pid
			c.log.Info().Int("pid", pid).Str("dir", c.dir).Msg("storage: embedded redis-server ready (append-only file on)")
			if c.onReady != nil {
				c.onReady(pid)
			}
			started := time.Now()
			select {
			case <-ctx.Done():
				c.stop(p)
				return
			case <-p.exited:
			}
			if time.Since(started) >= stableRun {
				backoff = minBackoff
			}
			c.log.Error().Int("pid", pid).Str("exit", p.cmd.ProcessState.String()).
				Str("log_tail", p.tail.String()).Stringer("restart_in", backoff).
				Msg("storage: embedded redis-server exited unexpectedly; restarting it")
		}
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// start forks a redis-server on the data directory. A SIGKILLed server
// leaves its socket file behind; redis-server unlinks it before binding.
func (c *child) start() (*process, error) {
	cmd := exec.Command(c.path,
		"--port", "0", // no TCP listener: only hotline, through the socket
		"--unixsocket", c.sock,
		"--unixsocketperm", "700",
		// Debian's redis.conf has appendonly no; without the AOF nothing
		// survives a crash. everysec loses at most a second on a power
		// failure, nothing when only the process dies.
		"--appendonly", "yes",
		"--appendfsync", "everysec",
		"--save", "",
		"--dir", c.dir,
		"--daemonize", "no",
		"--logfile", "",
	)
	cmd.Dir = c.dir
	cmd.SysProcAttr = childSysProcAttr()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		_ = r.Close()
		_ = w.Close()
		return nil, fmt.Errorf("storage: start %s: %w", c.path, err)
	}
	_ = w.Close()
	p := &process{cmd: cmd, exited: make(chan struct{}), ready: make(chan struct{}), tail: &logTail{}}
	go p.follow(r, c.log.With().Int("pid", cmd.Process.Pid).Logger())
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (c *child) awaitReady(ctx context.Context, p *process) error {
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-p.ready:
		return nil
	case <-p.exited:
		return fmt.Errorf("storage: redis-server exited before it was ready (%v):\n%s", p.cmd.ProcessState, p.tail)
	case <-timer.C:
		return fmt.Errorf("storage: redis-server not ready after %v:\n%s", readyTimeout, p.tail)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop sends SIGTERM and waits; a server still running after stopTimeout
// is killed.
func (c *child) stop(p *process) {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		c.log.Error().Err(err).Msg("storage: signal redis-server")
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		c.log.Info().Int("pid", p.cmd.Process.Pid).Msg("storage: embedded redis-server stopped")
		return
	case <-timer.C:
	}
	c.log.Error().Int("pid", p.cmd.Process.Pid).Stringer("after", stopTimeout).Msg("storage: redis-server ignored SIGTERM; killing it")
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// follow passes the server's log to hotline's logger until the pipe
// closes, and closes ready at the line that says it accepts connections:
// "The server is now ready to accept connections" in Redis 7.0, "Ready to
// accept connections" from 7.2 on. Reading to the end also keeps the
// server from blocking on a full pipe.
func (p *process) follow(r io.ReadCloser, log zerolog.Logger) {
	defer func() { _ = r.Close() }()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		p.tail.add(line)
		logLine(log, line)
		if !signalled && strings.Contains(strings.ToLower(line), "ready to accept connections") {
			signalled = true
			close(p.ready)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// logLine logs one line of the server's log. Redis marks each line's level
// after the timestamp ("pid:role dd Mon yyyy hh:mm:ss.mmm L message"):
// '#' is a warning, '*' notice, '-' verbose, '.' debug. Warnings stay
// warnings; the rest is debug, as hotline logs the events that matter.
func logLine(log zerolog.Logger, line string) {
	f := strings.Fields(line)
	if len(f) >= 6 && f[5] == "#" && !ordinary(strings.Join(f[6:], " ")) {
		log.Warn().Str("redis_log", line).Msg("redis-server")
		return
	}
	log.Debug().Str("redis_log", line).Msg("redis-server")
}

// ordinaryLines are what redis-server logs at its warning level ("#") on
// every start and stop: news, not warnings.
var ordinaryLines = []string{
	"oO0OoO0OoO0Oo Redis is starting",
	"Redis version=",
	"Configuration loaded",
	"Server initialized",
	"User requested shutdown",
	"Redis is now ready to exit",
	"Saving the final RDB snapshot",
	"DB saved on disk",
}

// ordinary reports whether a "#" line of redis-server is one it writes on
// every start or stop.
func ordinary(msg string) bool {
	for _, o := range ordinaryLines {
		if strings.HasPrefix(msg, o) {
			return true
		}
	}
	return false
}

// logTail keeps the server's last log lines for error messages.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if len(l.lines) > logTailLines {
		l.lines = l.lines[len(l.lines)-logTailLines:]
	}
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
