package systemd_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/config"
)

const unitFile = "hotline.service"

// maxExposure bounds the overall exposure systemd-analyze security gives
// the unit, in tenths as its --threshold takes it: 14 is the 1.4 the unit
// scores on systemd 252 (Debian 12), so that a hardening line dropped fails
// the test. Lower it as the unit gets tighter.
const maxExposure = 14

// redisStop is how long the embedded redis-server may take to stop after
// the drain (storage's stopTimeout): the stop timeout must cover it too.
const redisStop = 10 * time.Second

// The unit as systemd reads it: systemd-analyze verify has nothing to say
// about it (an unknown or misspelt directive, a value it cannot parse, a
// program it cannot run are only warnings, so any output fails), its
// exposure score stays within maxExposure, and ExecStart's arguments are
// ones hotline takes. verify needs ExecStart's program to exist, so the
// unit is checked as a copy that runs a hotline built from this tree.
func TestUnit(t *testing.T) {
	analyze := systemdAnalyze(t)
	unit, args := installedCopy(t)

	t.Run("verify", func(t *testing.T) {
		// --man=no: Debian's container images leave the man pages out.
		out, err := exec.CommandContext(t.Context(), analyze, "verify", "--man=no", unit).CombinedOutput()
		if err != nil || len(out) > 0 {
			status := "exit status 0"
			if err != nil {
				status = err.Error()
			}
			t.Fatalf("systemd-analyze verify %s: %s, and any line it writes fails:\n%s", unitFile, status, out)
		}
	})

	t.Run("security", func(t *testing.T) {
		out, err := exec.CommandContext(t.Context(), analyze, "security", "--offline=true", "--no-pager",
			"--threshold="+strconv.Itoa(maxExposure), unit).CombinedOutput()
		if err != nil {
			overall := regexp.MustCompile(`Overall exposure level.*`).Find(out)
			t.Fatalf("systemd-analyze security %s: %v: %s, over %.1f; what each setting adds:\n%s",
				unitFile, err, overall, float64(maxExposure)/10, out)
		}
	})

	t.Run("arguments", func(t *testing.T) {
		// Flags are parsed in order: --help after them answers 0 only when
		// every flag before it is one serve takes.
		cmd := exec.CommandContext(t.Context(), args[0], append(args[1:], "--help")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ExecStart's arguments %q: %v\n%s", args[1:], err, out)
		}
	})
}

// The unit's limits fit what hotline does on its defaults: the pacer may
// take its SCHED_FIFO priority, and a drain's grace ends before systemd's
// SIGKILL.
func TestUnitFitsDefaults(t *testing.T) {
	analyze := systemdAnalyze(t)
	service := readUnit(t, unitFile)["Service"]
	defaults := config.Default()

	if prio := defaults.SIP.RTPPriority; prio > 0 {
		limit, err := strconv.Atoi(last(service, "LimitRTPRIO"))
		if err != nil || limit < prio {
			t.Errorf("LimitRTPRIO=%s: want at least sip.rtp_priority's default, %d", last(service, "LimitRTPRIO"), prio)
		}
		if v := last(service, "RestrictRealtime"); isTrue(v) {
			t.Errorf("RestrictRealtime=%s forbids the pacer's SCHED_FIFO", v)
		}
	}

	stop := last(service, "TimeoutStopSec")
	out, err := exec.CommandContext(t.Context(), analyze, "timespan", stop).CombinedOutput()
	if err != nil {
		t.Fatalf("TimeoutStopSec=%s: %v\n%s", stop, err, out)
	}
	m := regexp.MustCompile(`μs: (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze timespan %s: no μs in\n%s", stop, out)
	}
	us, _ := strconv.ParseInt(string(m[1]), 10, 64)
	if need := time.Duration(defaults.Shutdown.Grace) + redisStop; time.Duration(us)*time.Microsecond <= need {
		t.Errorf("TimeoutStopSec=%s: want more than shutdown.grace's default and the embedded Redis's stop, %v", stop, need)
	}
}

// systemdAnalyze is systemd-analyze's path. test.sh installs it (Debian
// package systemd): without it the test fails.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze not found (Debian package systemd, which test.sh installs): %v", err)
	}
	return path
}

// installedCopy writes the unit into a temporary directory with ExecStart's
// program replaced by a hotline built from this tree, and returns the
// copy's path and ExecStart's command line in it.
func installedCopy(t *testing.T) (string, []string) {
	t.Helper()
	args := strings.Fields(last(readUnit(t, unitFile)["Service"], "ExecStart"))
	if len(args) == 0 || !filepath.IsAbs(args[0]) || filepath.Base(args[0]) != "hotline" {
		t.Fatalf("ExecStart=%s: want an absolute path to hotline, then its arguments", strings.Join(args, " "))
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "hotline")
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(t.Context(), goTool, "build", "-o", bin, "github.com/hotline12345/hotline/cmd/hotline").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	text, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	copied := strings.Replace(string(text), "ExecStart="+args[0]+" ", "ExecStart="+bin+" ", 1)
	path := filepath.Join(dir, unitFile)
	if err := os.WriteFile(path, []byte(copied), 0o644); err != nil {
		t.Fatal(err)
	}
	args[0] = bin
	return path, args
}

// readUnit reads a unit file's settings: each section's keys with their
// values in order (a key may be given more than once). Continuation lines
// are not used in the unit, so not read.
func readUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sections := map[string]map[string][]string{}
	var section map[string][]string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = map[string][]string{}
			sections[line[1:len(line)-1]] = section
		case section == nil:
			t.Fatalf("%s:%d: a setting before any section", path, n)
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s:%d: no = in %q", path, n, line)
			}
			key = strings.TrimSpace(key)
			section[key] = append(section[key], strings.TrimSpace(value))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sections
}

// last is the value of key that systemd uses for a single-valued setting:
// the last one given, or "" when none is.
func last(section map[string][]string, key string) string {
	if v := section[key]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// isTrue reports whether v is one of systemd's ways of writing true.
func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "yes", "y", "true", "t", "on":
		return true
	}
	return false
}
