// Package storage gives hotline its Redis: an external server, Sentinel or
// Cluster named by a URL; else a private redis-server child that keeps its
// append-only file in a data directory; else, with a loud warning, an
// in-process store that forgets everything when hotline stops.
//
// Domain packages receive the redis.UniversalClient and own their keys;
// this package only opens and closes the connection.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Mode is where the Redis of a Store lives.
type Mode string

// Modes.
const (
	// External is a Redis, Sentinel or Cluster named by Options.URL.
	External Mode = "external"
	// Embedded is a redis-server child of hotline with its append-only
	// file in Options.DataDir.
	Embedded Mode = "embedded"
	// InProcess is an in-memory store inside hotline: nothing survives a
	// restart.
	InProcess Mode = "in-process"
)

// Errors of Open; test with errors.Is.
var (
	ErrBadURL        = errors.New("storage: bad Redis URL")
	ErrBadMode       = errors.New("storage: bad mode")
	ErrNoRedisServer = errors.New("storage: redis-server not found")
	ErrNoDataDir     = errors.New("storage: no data directory for the embedded redis-server")
	ErrDataDirInUse  = errors.New("storage: data directory in use by another hotline")
	ErrSocketPath    = errors.New("storage: data directory path too long for a unix socket")
)

// pingTimeout bounds each reachability check of WaitReady.
const pingTimeout = 3 * time.Second

// WaitReady's waits between checks: doubling from the first to the last,
// which then repeats, so that a Redis back after a long outage is seen
// within half a minute and the log gets a line at most that often.
const (
	firstRetry = time.Second
	lastRetry  = 30 * time.Second
)

// Options says which Redis to use.
type Options struct {
	// URL names an external Redis; see AcceptedURLs for the forms. Empty
	// means embedded or in-process.
	URL string
	// DataDir is where the embedded redis-server keeps its append-only
	// file and socket; it is created 0700. Required in Embedded mode.
	DataDir string
	// RedisServerPath is the redis-server binary for Embedded mode. Empty
	// means "redis-server" looked up on PATH, with the in-process store as
	// the fallback when there is none; a path that is set must exist.
	RedisServerPath string
	// Mode forces a mode. Empty picks one: External when URL is set, else
	// Embedded when redis-server is found, else InProcess.
	Mode Mode
	// Attach, in Embedded mode, connects to the redis-server of the
	// hotline that holds the data directory, instead of failing with
	// ErrDataDirInUse: commands run beside a server reach its store.
	Attach bool
	// Logger receives warnings and the embedded server's log. The zero
	// Logger discards.
	Logger zerolog.Logger

	// childReady, when set, is told the pid of each embedded redis-server
	// once it accepts connections (tests use it to see a restart).
	childReady func(pid int)
	// firstRetry, when set, replaces WaitReady's first wait (tests).
	firstRetry time.Duration
}

// Store is an open Redis connection and, in Embedded and InProcess modes,
// the server behind it.
type Store struct {
	// Client is safe for concurrent use; it reconnects by itself after
	// the server restarts.
	Client redis.UniversalClient
	// Mode is where the server lives.
	Mode Mode

	closeOnce sync.Once
	closeErr  error
	stop      func() error // stops what Open started besides the client

	log        zerolog.Logger
	where      string // the URL without passwords, or the mode
	firstRetry time.Duration
}

// Open connects to the Redis the options name. It does not wait for an
// external server to answer (the client dials on each command; WaitReady
// waits); a bad URL is an error wrapping ErrBadURL. An embedded server is
// started and answers when Open returns.
func Open(ctx context.Context, opts Options) (*Store, error) {
	mode, serverPath, err := pickMode(opts)
	if err != nil {
		return nil, err
	}
	var s *Store
	switch mode {
	case External:
		s, err = openExternal(opts)
	case Embedded:
		s, err = openEmbedded(ctx, opts, serverPath)
	default:
		s = openInProcess(opts)
	}
	if err != nil {
		return nil, err
	}
	s.log, s.where, s.firstRetry = opts.Logger, string(s.Mode), opts.firstRetry
	if mode == External {
		s.where = redact(opts.URL)
	}
	if s.firstRetry <= 0 {
		s.firstRetry = firstRetry
	}
	return s, nil
}

// pickMode decides the mode and, for Embedded, the redis-server binary.
func pickMode(opts Options) (Mode, string, error) {
	switch opts.Mode {
	case "", External, Embedded, InProcess:
	default:
		return "", "", fmt.Errorf("%w %q: want %s, %s or %s", ErrBadMode, opts.Mode, External, Embedded, InProcess)
	}
	if opts.Mode == External || (opts.Mode == "" && opts.URL != "") {
		if opts.URL == "" {
			return "", "", fmt.Errorf("%w: external mode needs a URL; accepted forms: %s", ErrBadURL, AcceptedURLs)
		}
		return External, "", nil
	}
	if opts.URL != "" {
		return "", "", fmt.Errorf("%w: a URL is set but the mode is %s", ErrBadMode, opts.Mode)
	}
	if opts.Mode == InProcess {
		return InProcess, "", nil
	}
	name := opts.RedisServerPath
	if name == "" {
		name = "redis-server"
	}
	path, err := exec.LookPath(name)
	switch {
	case err == nil:
		return Embedded, path, nil
	case opts.Mode == "" && opts.RedisServerPath == "":
		return InProcess, "", nil
	default:
		return "", "", fmt.Errorf("%w: %q: %v (install the Debian package redis-server, or set a URL)", ErrNoRedisServer, name, err)
	}
}

func openExternal(opts Options) (*Store, error) {
	t, err := parseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	return &Store{Client: t.client(), Mode: External, stop: func() error { return nil }}, nil
}

// WaitReady waits until the server answers a PING, or ctx is done. While
// it does not, it logs a warning at each check, at growing intervals
// (1 s, 2 s, 4 s … 30 s), saying since when and when it tries again:
//
//	redis at redis://10.0.0.5:6379 unreachable: retrying in 2s (since 10:00:01)
//
// An error that waiting cannot mend (the server refuses the password or
// the user) ends the wait at once. The error when ctx ends says since
// when the server has not answered, and wraps ctx's cause.
func (s *Store) WaitReady(ctx context.Context) error {
	since := time.Now()
	wait := s.firstRetry
	for attempt := 1; ; attempt++ {
		err := s.ping(ctx)
		if err == nil {
			if attempt > 1 {
				s.log.Info().Str("redis", s.where).Stringer("down_for", time.Since(since).Round(time.Millisecond)).Int("attempts", attempt).
					Msgf("redis at %s answers", s.where)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("storage: redis at %s unreachable since %s: %w", s.where, since.Format(time.TimeOnly), context.Cause(ctx))
		}
		if refused(err) {
			return fmt.Errorf("storage: redis at %s: %w", s.where, err)
		}
		s.log.Warn().Err(err).Str("redis", s.where).Stringer("retry_in", wait).Time("since", since.UTC()).Int("attempt", attempt).
			Msgf("redis at %s unreachable: retrying in %s (since %s)", s.where, wait, since.Format(time.TimeOnly))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("storage: redis at %s unreachable since %s: %w", s.where, since.Format(time.TimeOnly), context.Cause(ctx))
		case <-timer.C:
		}
		wait = min(2*wait, lastRetry)
	}
}

// ping is one PING, bounded by pingTimeout.
func (s *Store) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	return s.Client.Ping(ctx).Err()
}

// refused reports whether err is Redis refusing the client (its password,
// user or permissions), which no wait mends, rather than a server not
// answering yet.
func refused(err error) bool {
	for _, prefix := range []string{"WRONGPASS", "NOAUTH", "NOPERM", "AUTH"} {
		if redis.HasErrorPrefix(err, prefix) {
			return true
		}
	}
	return false
}

// Unreachable reports whether err says Redis could not be reached, or is
// not serving yet (loading, failing over), rather than that it refused
// what was asked: asking again later may work.
func Unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed) ||
		redis.HasErrorPrefix(err, "LOADING") || redis.HasErrorPrefix(err, "MASTERDOWN") ||
		redis.HasErrorPrefix(err, "CLUSTERDOWN") || redis.HasErrorPrefix(err, "TRYAGAIN")
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.Client.Ping(ctx).Err()
}

// Close closes the client and stops the server that Open started, if any:
// an embedded redis-server gets SIGTERM (it fsyncs its append-only file and
// exits) and SIGKILL if it has not exited in time. Close is safe to call
// more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.Client.Close(), s.stop())
	})
	return s.closeErr
}
