package logging

import (
	"context"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
)

// GoRedis is a logger for github.com/redis/go-redis, which logs through a
// process-wide value of its own (redis.SetLogger) that writes raw lines to
// stderr unless replaced; its Printf writes each line through l instead.
// go-redis gives its lines no level: those that report a failure are
// warnings, the rest (a Sentinel naming a new master, say) are info.
type GoRedis struct {
	l zerolog.Logger
}

// NewGoRedis returns a go-redis logger that writes through l.
func NewGoRedis(l zerolog.Logger) GoRedis { return GoRedis{l: l} }

// Printf logs one line of go-redis.
func (g GoRedis) Printf(ctx context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	ev := g.l.Info()
	if lower := strings.ToLower(msg); strings.Contains(lower, "fail") || strings.Contains(lower, "error") {
		ev = g.l.Warn()
	}
	if ctx != nil {
		ev = ev.Ctx(ctx)
	}
	ev.Msg(msg)
}
