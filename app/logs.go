package app

import (
	"log/slog"

	sipgo "github.com/emiago/sipgo/sip"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/logging"
)

// RouteLibraryLogs sends to log what libraries write through loggers of
// their own that are global to the process, so that hotline's log is all
// JSON (or all console) lines: go-redis's (redis.SetLogger), sipgo's
// connection code's (sip.SetDefaultLogger: "TCP ref went negative" and
// the like), and anything written through log/slog's or the log
// package's default logger.
//
// These are settings of the whole process, made once: main calls
// RouteLibraryLogs before Run, and Run never does, since a test process
// runs many hotlines, each with its own logger.
func RouteLibraryLogs(log zerolog.Logger) {
	redis.SetLogger(logging.NewGoRedis(log.With().Str("component", "go-redis").Logger()))
	sipgo.SetDefaultLogger(logging.Slog(log.With().Str("component", "sipgo").Logger()))
	// slog.SetDefault also sends the log package's output to log.
	slog.SetDefault(logging.Slog(log))
}
