package redistest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/redistest"
)

func TestServerIsPrivateAndDurable(t *testing.T) {
	ctx := context.Background()
	s := redistest.Start(t)
	c := s.Client(t)

	if got, err := c.ConfigGet(ctx, "appendonly").Result(); err != nil || got["appendonly"] != "yes" {
		t.Fatalf("appendonly = %v, %v; want yes", got, err)
	}
	if got, err := c.ConfigGet(ctx, "port").Result(); err != nil || got["port"] != "0" {
		t.Fatalf("port = %v, %v; want 0 (no TCP listener)", got, err)
	}
	if got, err := c.ConfigGet(ctx, "save").Result(); err != nil || got["save"] != "" {
		t.Fatalf("save = %v, %v; want no RDB snapshots", got, err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "appendonlydir")); err != nil {
		t.Fatalf("no append-only directory in the data dir: %v", err)
	}
	opts, err := redis.ParseURL(s.URL())
	if err != nil || opts.Network != "unix" || opts.Addr != s.Socket() {
		t.Fatalf("URL %q parses to %+v, %v", s.URL(), opts, err)
	}
}

func TestRestartKeepsData(t *testing.T) {
	ctx := context.Background()
	s := redistest.Start(t)
	c := s.Client(t)
	if err := c.Set(ctx, "k", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	before := s.PID()
	s.Restart(t)
	if s.PID() == before {
		t.Fatalf("Restart kept pid %d", before)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v1" {
		t.Fatalf("after Restart: %q, %v; want v1", got, err)
	}
}

func TestKillAndStartKeepData(t *testing.T) {
	ctx := context.Background()
	s := redistest.Start(t)
	c := s.Client(t)
	if err := c.Set(ctx, "k", "v2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	pid := s.PID()
	s.Kill(t)
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("pid %d still exists after Kill: %v", pid, err)
	}
	if s.PID() != 0 {
		t.Fatalf("PID() = %d while killed", s.PID())
	}
	if err := c.Get(ctx, "k").Err(); err == nil {
		t.Fatal("a command succeeded while the server was killed")
	}
	s.Start(t)
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v2" {
		t.Fatalf("after Kill+Start: %q, %v; want v2", got, err)
	}
}

func TestServersAreIndependent(t *testing.T) {
	ctx := context.Background()
	a, b := redistest.Start(t), redistest.Start(t)
	if a.URL() == b.URL() {
		t.Fatalf("two servers share %s", a.URL())
	}
	if err := a.Client(t).Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Client(t).Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("b sees a's key: %v", err)
	}
}
