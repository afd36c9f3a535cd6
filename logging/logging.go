// Package logging builds the hotline's zerolog logger: JSON lines in
// production, a readable console format at a terminal, and a log/slog bridge
// for sipgo and diago, which log through slog. Every line about a call carries
// its call id (WithCall), so one grep follows a call through the IVR, the SIP
// stack and the agent queue.
//
// The package keeps no global state and never touches zerolog's package
// variables (TimeFieldFormat, TimestampFunc, the global logger): everything it
// does is carried by the returned Logger.
package logging

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// CallIDKey is the field that names the call on every line about it.
const CallIDKey = "call_id"

// Format is how lines are written.
type Format string

// The formats of Options.Format.
const (
	FormatAuto    Format = "auto"    // console when Out is a terminal, JSON otherwise
	FormatJSON    Format = "json"    // one JSON object per line, for collectors
	FormatConsole Format = "console" // aligned, human-readable; coloured at a terminal
)

// ErrUnknownLevel and ErrUnknownFormat are wrapped by the errors of New,
// ParseLevel and ParseFormat.
var (
	ErrUnknownLevel  = errors.New("unknown log level")
	ErrUnknownFormat = errors.New("unknown log format")
)

// Options configure New.
type Options struct {
	Level  string    // debug, info, warn or error; "" means info
	Format string    // auto, json or console; "" means auto
	Out    io.Writer // where lines go; nil means os.Stderr
}

// consoleTimeFormat is for people at a terminal: the date matters on a
// service that runs for weeks, milliseconds matter when reading SIP timers.
const consoleTimeFormat = "2006-01-02 15:04:05.000"

// New returns a logger as opts describe. JSON lines carry a "time" field in
// RFC 3339 with nanoseconds, in UTC, so lines from several nodes sort and merge
// without knowing each node's time zone.
func New(opts Options) (zerolog.Logger, error) {
	level, err := ParseLevel(opts.Level)
	if err != nil {
		return zerolog.Nop(), err
	}
	format, err := ParseFormat(opts.Format)
	if err != nil {
		return zerolog.Nop(), err
	}
	out := opts.Out
	if out == nil {
		out = os.Stderr
	}
	tty := isTerminal(out)
	if format == FormatAuto {
		format = FormatJSON
		if tty {
			format = FormatConsole
		}
	}
	if format == FormatConsole {
		out = zerolog.ConsoleWriter{
			Out: out,
			// Colour codes are noise in a file or a pipe.
			NoColor:    !tty,
			TimeFormat: consoleTimeFormat,
		}
	}
	// The timestamp is added by a hook rather than by Context().Timestamp(),
	// which formats with zerolog's package-wide TimeFieldFormat; changing that
	// global would change every other logger in the process.
	return zerolog.New(out).Level(level).Hook(utcTimestamp{}), nil
}

// utcTimestamp stamps each line with the time it was written, or for a line
// from the slog bridge with its record's time.
type utcTimestamp struct{}

// Run adds the time field, in UTC with nanoseconds.
func (utcTimestamp) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	t := time.Now()
	if rt, ok := e.GetCtx().Value(recordTime{}).(time.Time); ok {
		// slog.Handler: "If r.Time is the zero time, ignore the time."
		if rt.IsZero() {
			return
		}
		t = rt
	}
	e.Str(zerolog.TimestampFieldName, t.UTC().Format(time.RFC3339Nano))
}

// ParseLevel reads a level name: debug, info, warn or error, in any case.
// The empty string is info.
func ParseLevel(s string) (zerolog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return zerolog.DebugLevel, nil
	case "", "info":
		return zerolog.InfoLevel, nil
	case "warn":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return zerolog.NoLevel, fmt.Errorf("%w %q: want debug, info, warn or error", ErrUnknownLevel, s)
}

// ParseFormat reads a format name: auto, json or console, in any case.
// The empty string is auto.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "":
		return FormatAuto, nil
	case FormatAuto, FormatJSON, FormatConsole:
		return f, nil
	}
	return "", fmt.Errorf("%w %q: want auto, json or console", ErrUnknownFormat, s)
}

// WithCall returns l with the call's id on every line, under CallIDKey.
func WithCall(l zerolog.Logger, callID string) zerolog.Logger {
	return l.With().Str(CallIDKey, callID).Logger()
}

// isTerminal reports whether w is a file open on a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}
