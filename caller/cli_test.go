package caller

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/prompts"
)

// intake builds a transcript from prompt ids; "id!" is cut short.
func intake(hungUpBy string, ids ...string) Transcript {
	tr := Transcript{Status: 200, HungUpBy: hungUpBy}
	for i, id := range ids {
		cut := strings.HasSuffix(id, "!")
		tr.Heard = append(tr.Heard, prompts.Heard{
			ID: prompts.ID(strings.TrimSuffix(id, "!")), Lang: prompts.Mandarin,
			Start: time.Duration(i) * time.Second, Length: time.Second, Complete: !cut,
		})
	}
	return tr
}

var number = []string{"digit_2", "digit_6", "digit_1", "digit_1", "digit_2", "digit_7", "digit_0", "digit_0", "digit_0", "digit_1"}

func readout(extra ...string) []string {
	return append(append([]string{"appeal_number"}, number...), extra...)
}

func TestCheckIntake(t *testing.T) {
	menus := []string{"greeting", "category_menu", "consent_menu"}
	full := append(slices.Clone(menus), readout("goodbye")...)
	for _, tc := range []struct {
		name string
		tr   Transcript
		want []string
	}{
		{"whole", intake("server", full...), nil},
		{"keys pressed during the menus", intake("server", append([]string{"greeting", "category_menu!", "consent_menu!"}, readout("goodbye")...)...), nil},
		{"silence and fallbacks", intake("server", append([]string{"greeting",
			"category_menu", "no_input", "category_menu", "no_input", "category_menu", "fallback_note",
			"consent_menu", "invalid_key", "consent_menu"}, readout("goodbye")...)...), nil},
		{"nothing", intake("server"), []string{"greeting not heard (nothing was heard)"}},
		{"no consent", intake("server", append([]string{"greeting", "category_menu"}, readout("goodbye")...)...),
			[]string{"consent_menu not heard after category_menu"}},
		{"no greeting", intake("server", full[1:]...), []string{"greeting not heard"}},
		{"short number", intake("server", append(slices.Clone(menus), "appeal_number", "digit_1", "digit_2", "goodbye")...),
			[]string{"appeal number read out as 2 digits, want at least 10"}},
		{"a digit cut", intake("server", append(slices.Clone(menus), append([]string{"appeal_number", "digit_2!"}, append(number[1:], "goodbye")...)...)...),
			[]string{"digit_2 of the appeal number cut short"}},
		{"goodbye cut", intake("server", append(slices.Clone(menus), readout("goodbye!")...)...), []string{"goodbye cut short"}},
		{"no goodbye", intake("server", append(slices.Clone(menus), readout()...)...), []string{"goodbye not heard after the appeal number"}},
		{"something else", intake("server", append(slices.Clone(menus), readout("service_closed")...)...),
			[]string{"service_closed heard where goodbye should follow the appeal number"}},
		{"after goodbye", intake("server", append(slices.Clone(full), "rating")...), []string{"rating heard after goodbye"}},
		{"caller hung up", intake("caller", full...), []string{"hung up by caller, want the hotline to hang up after goodbye"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := checkIntake(tc.tr)
			if len(tc.want) == 0 && len(got) > 0 {
				t.Fatalf("problems %q, want none", got)
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, w) }) {
					t.Errorf("problems %q lack %q", got, w)
				}
			}
		})
	}
}

func TestAppealNumber(t *testing.T) {
	if got := appealNumber(intake("server", append([]string{"greeting"}, readout("goodbye")...)...)); got != "2611270001" {
		t.Errorf("appeal number %q", got)
	}
	if got := appealNumber(intake("server", "greeting", "goodbye")); got != "?" {
		t.Errorf("appeal number %q without a readout", got)
	}
}

func TestPrintTranscript(t *testing.T) {
	tr := intake("server", "greeting", "category_menu!")
	tr.Pressed = []string{"1", "1"}
	tr.Answered = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	tr.Ended = tr.Answered.Add(40 * time.Second)
	var b bytes.Buffer
	printTranscript(&b, tr)
	want := "answered: 200\n" +
		"      0.00s  greeting           zh  complete\n" +
		"      1.00s  category_menu      zh  cut after 1.00s\n" +
		"pressed: 1 1\n" +
		"hung up by server after 40.0s\n"
	if b.String() != want {
		t.Errorf("printed\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	printTranscript(&b, Transcript{Status: 486})
	if b.String() != "not answered: 486\n" {
		t.Errorf("printed %q for a busy line", b.String())
	}
}

func TestMainUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"sip:12345@127.0.0.1", "sip:12345@127.0.0.2"},
		{"--expect", "everything", "sip:12345@127.0.0.1"},
		{"--keys", "1,1,1", "sip:12345@127.0.0.1"},
		{"--keys", "9x", "sip:12345@127.0.0.1"},
		{"--dtmf", "morse", "sip:12345@127.0.0.1"},
		{"--codec", "G729", "sip:12345@127.0.0.1"},
		{"--timeout", "0s", "sip:12345@127.0.0.1"},
		{"--no-such-flag", "sip:12345@127.0.0.1"},
		{"mailto:12345@127.0.0.1"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("Main(%q) = %d, want 2", args, code)
		}
		if stdout.Len() > 0 || !strings.Contains(stderr.String(), "usage: hotline call") {
			t.Errorf("Main(%q): stdout %q, stderr %q; want the usage on stderr", args, stdout.String(), stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), []string{"-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "--keys") && !strings.Contains(stderr.String(), "-keys") {
		t.Errorf("Main(-h) = %d, stderr %q", code, stderr.String())
	}
}
