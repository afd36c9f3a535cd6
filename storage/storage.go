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
	"os/exec"
	"sync"
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

// pingTimeout bounds the reachability check of an external Redis at Open.
const pingTimeout = 3 * time.Second

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
}

// Open connects to the Redis the options name. An external server that
// cannot be reached is not an error (the client keeps trying on each
// command) but is logged as a warning; a bad URL is an error wrapping
// ErrBadURL.
func Open(ctx context.Context, opts Options) (*Store, error) {
	mode, serverPath, err := pickMode(opts)
	if err != nil {
		return nil, err
	}
	switch mode {
	case External:
		return openExternal(ctx, opts)
	case Embedded:
		return openEmbedded(ctx, opts, serverPath)
	default:
		return openInProcess(opts), nil
	}
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

func openExternal(ctx context.Context, opts Options) (*Store, error) {
	t, err := parseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	client := t.client()
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		opts.Logger.Warn().Err(err).Str("redis_url", redact(opts.URL)).
			Msg("storage: Redis does not answer yet; starting anyway, the client reconnects on its own")
	}
	return &Store{Client: client, Mode: External, stop: func() error { return nil }}, nil
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
