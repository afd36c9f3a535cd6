package asteriskconf_test

// These tests start a real Asterisk 22 (internal/asterisktest) with the
// files of this directory, as they go to /etc/asterisk, only ARI's and
// PJSIP's ports and the ARI password changed.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	asteriskconf "github.com/hotline12345/hotline/asterisk-conf"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/internal/asterisktest"
	"github.com/hotline12345/hotline/prompts"
)

// shippedNames are the files of the set.
func shippedNames(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(asteriskconf.Files, "*.conf")
	if err != nil || len(names) == 0 {
		t.Fatalf("the embedded files: %v %v", names, err)
	}
	return names
}

// namedModules reads modules.conf's require, load and noload lines.
func namedModules(t *testing.T) (loaded, refused []string) {
	t.Helper()
	b, err := fs.ReadFile(asteriskconf.Files, "modules.conf")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^\s*(preload-require|require|preload|load|noload)\s*=\s*(\S+)`)
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		if m[1] == "noload" {
			refused = append(refused, m[2])
		} else {
			loaded = append(loaded, m[2])
		}
	}
	return loaded, refused
}

// moduleStates reads `module show`: module file → status ("Running", ...).
func moduleStates(t *testing.T, a *asterisktest.Asterisk) map[string]string {
	t.Helper()
	states := map[string]string{}
	for _, line := range strings.Split(a.CLI(t, "module show"), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasSuffix(f[0], ".so") {
			continue
		}
		// The status is the second last column; the description has
		// blanks, the use count and support level do not.
		states[f[0]] = f[len(f)-2]
	}
	return states
}

// loadProblems lists what is wrong with how Asterisk took the files: a
// module modules.conf names that does not run, one it refuses that does,
// and every warning or error of the log that names a file of the set or
// such a module.
func loadProblems(t *testing.T, a *asterisktest.Asterisk) []string {
	t.Helper()
	var problems []string
	loaded, refused := namedModules(t)
	states := moduleStates(t, a)
	for _, m := range loaded {
		if states[m] != "Running" {
			problems = append(problems, fmt.Sprintf("module %s is %q, want Running", m, states[m]))
		}
	}
	for _, m := range refused {
		if st, ok := states[m]; ok {
			problems = append(problems, fmt.Sprintf("module %s is %s, want it not loaded", m, st))
		}
	}
	var words []string
	for _, name := range shippedNames(t) {
		words = append(words, regexp.QuoteMeta(name))
	}
	for _, m := range loaded {
		words = append(words, regexp.QuoteMeta(strings.TrimSuffix(m, ".so"))+` (declined|failed)`)
	}
	named := regexp.MustCompile(`\b(` + strings.Join(words, "|") + `)`)
	for _, line := range strings.Split(a.Log(), "\n") {
		if (strings.Contains(line, "WARNING[") || strings.Contains(line, "ERROR[")) && named.MatchString(line) {
			problems = append(problems, "log: "+line)
		}
	}
	return problems
}

// Asterisk runs what the files configure: every module modules.conf
// requires or loads and none it refuses, the transports, the trunk and
// agents' endpoints, ARI on loopback with its user, and the dialplan; its
// log has no warning or error about the files or those modules.
func TestLoadsInAsterisk(t *testing.T) {
	t.Parallel()
	a := asterisktest.Start(t, asterisktest.Options{})
	for _, p := range loadProblems(t, a) {
		t.Error(p)
	}
	for _, c := range []struct {
		command string
		want    []string
	}{
		{"pjsip show endpoints", []string{"Endpoint:  carrier", "Endpoint:  1001/1001", "Endpoint:  1002/1002", "Match: 192.0.2.10/32"}},
		{"pjsip show transports", []string{"transport-udp             udp", "transport-tcp             tcp"}},
		{"http show status", []string{"Server Enabled and Bound to " + strings.TrimSuffix(strings.TrimPrefix(a.ARI, "http://"), "/ari"), "/ari/... => Asterisk RESTful API"}},
		{"ari show users", []string{asterisktest.Username}},
		{"dialplan show 12345@from-trunk", []string{"Stasis(hotline)", `GotoIf($["${STASISSTATUS}" = "FAILED"]?hotline-fallback,s,1)`}},
		{"dialplan show s@hotline-fallback", []string{"Playback(hotline/app_unavailable)", "Record(", "Hangup()"}},
		{"dialplan show 600@agents", []string{"Echo()"}},
	} {
		out := a.CLI(t, c.command)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s lacks %q:\n%s", c.command, w, out)
			}
		}
	}
}

// The check above sees a mistake: an option PJSIP does not have.
func TestLoadProblemsAreSeen(t *testing.T) {
	t.Parallel()
	a := asterisktest.Start(t, asterisktest.Options{Append: map[string]string{
		"pjsip.conf": "\n[1003](agent-endpoint)\nauth = 1001\naors = 1001\nno_such_option = yes\n",
	}})
	problems := loadProblems(t, a)
	if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "'1003'") }) {
		t.Errorf("an endpoint with an unknown option went unnoticed: %q", problems)
	}
}

// When hotline is down (no application "hotline"), a citizen calling
// through the trunk hears the apology, leaves a message after the beep
// (silence ends it) and hears that the call back is noted; the message is
// in the spool folder and the call's CDR line names it and the caller.
func TestFallbackWhenHotlineIsDown(t *testing.T) {
	t.Parallel()
	const carrier, who = "127.0.0.2", "13800000501"
	a := asterisktest.Start(t, asterisktest.Options{Trunk: carrier})
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr, err := caller.Call(ctx, caller.Options{
		Target: "sip:12345@" + a.SIP.String(), LocalIP: carrier, From: who, Catalog: catalog,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil && !errors.Is(err, caller.ErrCallEnded) {
		t.Fatalf("call: %v", err)
	}
	// On a loaded machine the test caller, which follows the RTP clock,
	// may hear one prompt as two in a row (Asterisk re-stamps its RTP when
	// it falls behind): the order of the prompts is what is checked.
	if got, want := slices.Compact(tr.HeardIDs()), []prompts.ID{prompts.AppUnavailable, prompts.CallbackNoted}; tr.Status != 200 || tr.HungUpBy != "server" || !slices.Equal(got, want) {
		t.Errorf("status %d, hung up by %q, heard %v; want the apology, then the call back noted", tr.Status, tr.HungUpBy, tr.HeardIDs())
	}

	messages, err := filepath.Glob(filepath.Join(a.Dir, "spool", "hotline-fallback", "*.wav"))
	if err != nil || len(messages) != 1 {
		t.Fatalf("messages %v (%v), want one", messages, err)
	}
	if st, err := os.Stat(messages[0]); err != nil || st.Size() <= 44 {
		t.Errorf("the message %s holds no audio: %v", messages[0], err)
	}
	// The CDR is written as the channel goes, after the caller heard the
	// BYE.
	note := "hotline-fallback message " + messages[0] + " from " + who
	csv := filepath.Join(a.Dir, "log", "cdr-csv", "Master.csv")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(csv)
		if strings.Contains(string(b), note) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CDR with %q in %s:\n%s", note, csv, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
