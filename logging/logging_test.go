package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/rs/zerolog"
)

// lines decodes every JSON line written to buf.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// only decodes the single JSON line written to buf.
func only(t *testing.T, buf *bytes.Buffer) map[string]any {
	t.Helper()
	ls := lines(t, buf)
	if len(ls) != 1 {
		t.Fatalf("got %d lines, want 1: %q", len(ls), buf.String())
	}
	return ls[0]
}

// checkTime asserts that line carries a UTC RFC 3339 timestamp within [from, to].
func checkTime(t *testing.T, line map[string]any, from, to time.Time) {
	t.Helper()
	s, ok := line["time"].(string)
	if !ok {
		t.Fatalf("no time string in %v", line)
	}
	if !strings.HasSuffix(s, "Z") {
		t.Errorf("time %q is not in UTC", s)
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	if ts.Before(from) || ts.After(to) {
		t.Errorf("time %v outside [%v, %v]", ts, from, to)
	}
}

func TestJSONLineCarriesCallID(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Options{Level: "info", Format: "json", Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	from := time.Now()
	call := WithCall(l, "a84b4c76e66710")
	call.Info().Str("caller", "13800000000").Msg("answered")
	to := time.Now()

	line := only(t, &buf)
	want := map[string]any{"call_id": "a84b4c76e66710", "level": "info", "message": "answered", "caller": "13800000000"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v (line %v)", k, line[k], v, line)
		}
	}
	checkTime(t, line, from, to)
}

func TestLevelFilters(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Options{Level: "warn", Format: "json", Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	l.Info().Msg("dropped")
	l.Warn().Msg("kept")
	if got := only(t, &buf)["message"]; got != "kept" {
		t.Errorf("message = %v, want kept", got)
	}
}

func TestEmptyOptionsMeanInfoAndAuto(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Options{Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	l.Debug().Msg("dropped")
	l.Info().Msg("kept")
	// A buffer is not a terminal, so auto writes JSON.
	if got := only(t, &buf)["message"]; got != "kept" {
		t.Errorf("message = %v, want kept", got)
	}
}

func TestBadLevelAndFormat(t *testing.T) {
	cases := []struct {
		opts Options
		want error
	}{
		{Options{Level: "verbose"}, ErrUnknownLevel},
		{Options{Level: "trace"}, ErrUnknownLevel},
		{Options{Level: "info", Format: "xml"}, ErrUnknownFormat},
	}
	for _, c := range cases {
		if _, err := New(c.opts); !errors.Is(err, c.want) {
			t.Errorf("New(%+v) = %v, want %v", c.opts, err, c.want)
		}
	}
}

func TestParseLevelAcceptsEveryName(t *testing.T) {
	for _, name := range []string{"debug", "info", "warn", "error", "WARN", " Error "} {
		lvl, err := ParseLevel(name)
		if err != nil {
			t.Errorf("ParseLevel(%q): %v", name, err)
			continue
		}
		if want := strings.ToLower(strings.TrimSpace(name)); lvl.String() != want {
			t.Errorf("ParseLevel(%q) = %v, want %s", name, lvl, want)
		}
	}
}

func TestConsoleFormatIsPlainTextWithoutColourInAFile(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Options{Format: "console", Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	call := WithCall(l, "c-7")
	call.Warn().Msg("media timeout")
	out := buf.String()
	if json.Valid(bytes.TrimSpace(buf.Bytes())) {
		t.Errorf("console output is JSON: %q", out)
	}
	for _, want := range []string{"WRN", "media timeout", "call_id=c-7"} {
		if !strings.Contains(out, want) {
			t.Errorf("console output %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("console output to a buffer has colour codes: %q", out)
	}
}

func TestSlogLevelsMapToZerolog(t *testing.T) {
	cases := []struct {
		logger zerolog.Level
		level  slog.Level
		want   string // "" when nothing is written
	}{
		{zerolog.DebugLevel, slog.LevelDebug - 4, ""},
		{zerolog.TraceLevel, slog.LevelDebug - 4, "debug"},
		{zerolog.DebugLevel, slog.LevelDebug, "debug"},
		{zerolog.DebugLevel, slog.LevelInfo, "info"},
		{zerolog.DebugLevel, slog.LevelInfo + 1, "info"},
		{zerolog.DebugLevel, slog.LevelWarn, "warn"},
		{zerolog.DebugLevel, slog.LevelWarn + 2, "warn"},
		{zerolog.DebugLevel, slog.LevelError, "error"},
		{zerolog.DebugLevel, slog.LevelError + 4, "error"},
		{zerolog.ErrorLevel, slog.LevelError + 4, "error"},
		{zerolog.ErrorLevel, slog.LevelWarn + 3, ""},
		{zerolog.Disabled, slog.LevelError + 4, ""},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		l, err := New(Options{Format: "json", Out: &buf})
		if err != nil {
			t.Fatal(err)
		}
		s := Slog(l.Level(c.logger))
		from := time.Now()
		s.Log(t.Context(), c.level, "transaction", "method", "INVITE")
		to := time.Now()
		if enabled := s.Enabled(t.Context(), c.level); enabled != (c.want != "") {
			t.Errorf("logger %v: slog %v enabled = %v", c.logger, c.level, enabled)
		}
		if c.want == "" {
			if buf.Len() != 0 {
				t.Errorf("logger %v: slog %v wrote %q", c.logger, c.level, buf.String())
			}
			continue
		}
		line := only(t, &buf)
		if line["level"] != c.want {
			t.Errorf("logger %v: slog %v wrote level %v, want %s", c.logger, c.level, line["level"], c.want)
		}
		if line["method"] != "INVITE" || line["message"] != "transaction" {
			t.Errorf("slog %v lost fields: %v", c.level, line)
		}
		checkTime(t, line, from, to)
	}
}

func TestSlogDropsBelowLoggerLevel(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Options{Level: "warn", Format: "json", Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	s := Slog(l)
	if s.Enabled(t.Context(), slog.LevelInfo) {
		t.Error("slog Info enabled on a warn logger")
	}
	if !s.Enabled(t.Context(), slog.LevelWarn) {
		t.Error("slog Warn disabled on a warn logger")
	}
	s.Info("dropped")
	s.Warn("kept")
	if got := only(t, &buf)["message"]; got != "kept" {
		t.Errorf("message = %v, want kept", got)
	}
}

func TestSlogCarriesCallIDAttrsAndGroups(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Options{Level: "debug", Format: "json", Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	s := Slog(WithCall(l, "c-42")).With("component", "diago").WithGroup("rtp")
	s.Debug("stream closed", "packets", 250, "err", errors.New("read: timeout"))

	line := only(t, &buf)
	if line["call_id"] != "c-42" || line["component"] != "diago" || line["level"] != "debug" {
		t.Errorf("line %v lacks call id, component or level", line)
	}
	group, ok := line["rtp"].(map[string]any)
	if !ok {
		t.Fatalf("no rtp group in %v", line)
	}
	if group["packets"] != float64(250) || group["err"] != "read: timeout" {
		t.Errorf("rtp group = %v", group)
	}
}

// TestSlogFollowsHandlerRules runs the standard library's conformance checks
// for slog handlers (attributes, groups, empty keys, zero time, LogValuer).
func TestSlogFollowsHandlerRules(t *testing.T) {
	var buf *bytes.Buffer
	slogtest.Run(t, func(t *testing.T) slog.Handler {
		buf = new(bytes.Buffer)
		l, err := New(Options{Level: "debug", Format: "json", Out: buf})
		if err != nil {
			t.Fatal(err)
		}
		return Slog(l).Handler()
	}, func(t *testing.T) map[string]any {
		line := only(t, buf)
		// zerolog names the message "message"; slogtest looks for slog's "msg".
		line[slog.MessageKey] = line[zerolog.MessageFieldName]
		delete(line, zerolog.MessageFieldName)
		return line
	})
}

// TestSlogIsSafeForConcurrentUse logs from several goroutines through one
// handler with groups and attributes, as sipgo does from its transaction
// goroutines; run with -race.
func TestSlogIsSafeForConcurrentUse(t *testing.T) {
	var buf syncBuffer
	l, err := New(Options{Level: "debug", Format: "json", Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	s := Slog(l).WithGroup("dialog").With("state", "confirmed", "err", errors.New("bye"))
	const goroutines, each = 4, 50
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				s.Info("in dialog", "cseq", 2)
			}
		})
	}
	wg.Wait()

	got := lines(t, &buf.b)
	if len(got) != goroutines*each {
		t.Fatalf("got %d lines, want %d", len(got), goroutines*each)
	}
	dialog, _ := got[len(got)-1]["dialog"].(map[string]any)
	if dialog["state"] != "confirmed" || dialog["err"] != "bye" || dialog["cseq"] != float64(2) {
		t.Errorf("dialog group = %v", dialog)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// TestDurationsCarryUnits: zerolog's Dur writes a bare number ("retry_in":
// 500), which a reader of the log must guess the unit of; durations are
// logged as Go writes them ("500ms") with Stringer.
func TestDurationsCarryUnits(t *testing.T) {
	root := ".."
	bare := regexp.MustCompile(`\.Dur\("`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if bare.MatchString(line) {
				t.Errorf("%s:%d logs a duration without its unit: use .Stringer(key, d)", path, i+1)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
