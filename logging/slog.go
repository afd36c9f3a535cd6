package logging

import (
	"context"
	"log/slog"
	"math"

	"github.com/rs/zerolog"
	slogcommon "github.com/samber/slog-common"
	slogzerolog "github.com/samber/slog-zerolog/v2"
)

// Slog returns a log/slog logger that writes through l, for sipgo and diago.
// slog's Debug, Info, Warn and Error become zerolog's debug, info, warn and
// error; levels between them round down to the named level below (slog allows
// any integer level), so Warn+2 is warn and Error+4 is error. Records below
// l's level are dropped before their attributes are built.
//
// l should come from New (or be derived from it, e.g. by WithCall): New's
// logger writes the record's own time, in UTC, and omits it when the record
// has none, as slog.Handler asks.
func Slog(l zerolog.Logger) *slog.Logger {
	inner := slogzerolog.Option{
		Level:  slog.LevelDebug,
		Logger: &l,
		// New's hook writes the time, from the record (see Handle below);
		// the handler's own stamp would be a second "time" key formatted by
		// zerolog's package-wide TimeFieldFormat.
		NoTimestamp: true,
		Converter:   fields,
	}.NewZerologHandler()
	return slog.New(standardLevels{next: inner, min: slogLevel(l.GetLevel())})
}

// recordTime is the context key under which Handle passes a record's time to
// the timestamp hook.
type recordTime struct{}

// standardLevels rounds every record's level down to one of slog's four named
// levels before handing it on. slog-zerolog looks levels up in a table of the
// four, and a level missing from it (Error+4, say) would come out as debug.
type standardLevels struct {
	next slog.Handler
	min  slog.Level
}

// Enabled reports whether level would be written, so slog skips building
// records that zerolog would drop.
func (h standardLevels) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.min
}

// Handle writes r at its standard level, stamped with r's own time.
func (h standardLevels) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		ctx = context.Background()
	}
	r.Level = standardLevel(r.Level)
	return h.next.Handle(context.WithValue(ctx, recordTime{}, r.Time), r)
}

// WithAttrs returns a handler whose lines carry attrs.
func (h standardLevels) WithAttrs(attrs []slog.Attr) slog.Handler {
	return standardLevels{next: h.next.WithAttrs(attrs), min: h.min}
}

// WithGroup returns a handler that nests later attributes under name.
func (h standardLevels) WithGroup(name string) slog.Handler {
	return standardLevels{next: h.next.WithGroup(name), min: h.min}
}

// standardLevel rounds l down to the nearest named slog level; anything
// below Debug is debug.
func standardLevel(l slog.Level) slog.Level {
	switch {
	case l >= slog.LevelError:
		return slog.LevelError
	case l >= slog.LevelWarn:
		return slog.LevelWarn
	case l >= slog.LevelInfo:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// slogLevel is the lowest slog level that a logger at zerolog level z writes.
func slogLevel(z zerolog.Level) slog.Level {
	switch {
	case z <= zerolog.TraceLevel:
		return math.MinInt
	case z == zerolog.DebugLevel:
		return slog.LevelDebug
	case z == zerolog.InfoLevel:
		return slog.LevelInfo
	case z == zerolog.WarnLevel:
		return slog.LevelWarn
	case z == zerolog.ErrorLevel:
		return slog.LevelError
	}
	// Fatal, panic, no level and disabled: slog has nothing that high, so
	// nothing from slog is written.
	return math.MaxInt
}

// fields is the slog-zerolog Converter: the record's and the handler's
// attributes as one map, following slog.Handler's rules (empty keys dropped,
// empty groups dropped, groups without a key inlined, LogValuers resolved).
//
// It replaces slog-zerolog's DefaultConverter, which rewrites the attributes
// of groups in place — attributes the handler shares between goroutines, a
// data race — and writes an error as an object {error, kind, stack} where
// zerolog writes the message alone.
func fields(_ bool, _ func([]string, slog.Attr) slog.Attr, handlerAttrs []slog.Attr, groups []string, r *slog.Record) map[string]any {
	m := map[string]any{}
	addAttrs(m, slogcommon.AppendRecordAttrsToAttrs(handlerAttrs, groups, r))
	return m
}

// addAttrs adds attrs to m without modifying them.
func addAttrs(m map[string]any, attrs []slog.Attr) {
	for _, a := range attrs {
		v := a.Value.Resolve()
		if v.Kind() != slog.KindGroup {
			if a.Key == "" {
				continue
			}
			if err, ok := v.Any().(error); ok {
				m[a.Key] = err.Error()
				continue
			}
			m[a.Key] = v.Any()
			continue
		}
		if a.Key == "" {
			addAttrs(m, v.Group())
			continue
		}
		sub, ok := m[a.Key].(map[string]any)
		if !ok {
			sub = map[string]any{}
		}
		addAttrs(sub, v.Group())
		if len(sub) > 0 {
			m[a.Key] = sub
		}
	}
}
