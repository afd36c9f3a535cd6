package storage

import (
	"context"
	"net"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// openInProcess serves Redis from hotline's own memory with miniredis, for
// a machine with neither a Redis URL nor redis-server. The appeal and
// calllog stores are tested against it, so their Lua scripts and commands
// work here; anything newer must be checked against it too.
func openInProcess(opts Options) *Store {
	m := miniredis.NewMiniRedis()
	// Without this, miniredis only expires keys when told to (it is made
	// for tests); here TTLs must run on the wall clock as in Redis.
	m.ClockTTL(true)
	client := redis.NewClient(&redis.Options{
		Addr: "in-process",
		// An in-memory pipe per connection: no listening port to guard.
		Dialer: func(context.Context, string, string) (net.Conn, error) {
			return m.Dial()
		},
	})
	opts.Logger.Warn().Str("redis_mode", string(InProcess)).
		Msg("storage: NO REDIS — no URL is set and no redis-server was found, so all state " +
			"(appeals, call records, queues) is kept in this process's memory and NOTHING SURVIVES A RESTART. " +
			"Install redis-server (Debian package redis-server) or set a Redis URL.")
	return &Store{Client: client, Mode: InProcess, stop: func() error {
		m.Close()
		return nil
	}}
}
