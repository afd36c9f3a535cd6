package caller

import (
	"errors"
	"slices"
	"testing"

	"github.com/hotline12345/hotline/prompts"
)

func TestKeysScript(t *testing.T) {
	for _, tc := range []struct {
		keys string
		want Script
	}{
		{"", nil},
		{"  ", nil},
		{"1", Script{{On: prompts.CategoryMenu, Press: "1"}}},
		{"1,1", Script{{On: prompts.CategoryMenu, Press: "1"}, {On: prompts.ConsentMenu, Press: "1"}}},
		{" 3 , 2 ", Script{{On: prompts.CategoryMenu, Press: "3"}, {On: prompts.ConsentMenu, Press: "2"}}},
		{"*,#", Script{{On: prompts.CategoryMenu, Press: "*"}, {On: prompts.ConsentMenu, Press: "#"}}},
	} {
		got, err := KeysScript(tc.keys)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("KeysScript(%q) = %v, %v; want %v", tc.keys, got, err, tc.want)
		}
	}
	for _, keys := range []string{"1,1,1", "x", "1,", ",1", "12", "1;1", "e", "1,2,3,4"} {
		if s, err := KeysScript(keys); err == nil {
			t.Errorf("KeysScript(%q) = %v, want an error", keys, s)
		}
	}
}

func TestPlanChecksSteps(t *testing.T) {
	c := catalog(t)
	for _, st := range []Step{
		{On: "no_such_prompt", Press: "1"},
		{On: prompts.CategoryMenu, Press: "1", Hangup: true},
		{On: prompts.CategoryMenu, Press: "1x"},
	} {
		_, err := plan(Options{Target: "sip:12345@127.0.0.1:5060", Catalog: c, Script: Script{st}})
		if !errors.Is(err, ErrBadOptions) {
			t.Errorf("step %+v: error %v, want ErrBadOptions", st, err)
		}
	}
}

func TestPlan(t *testing.T) {
	c := catalog(t)
	p, err := plan(Options{Target: "sip:12345@127.0.0.1:5060;transport=TCP", Catalog: c, Codec: "pcma"})
	if err != nil {
		t.Fatal(err)
	}
	if p.transport != "tcp" || p.From != DefaultFrom || p.DTMF != DTMFRFC4733 || p.Timeout != DefaultTimeout ||
		p.StepTimeout != DefaultStepTimeout || p.LocalIP != "127.0.0.1" || p.codecs[0].name != "PCMA" || p.codecs[1].name != "PCMU" {
		t.Errorf("plan %+v", p)
	}
	for _, opts := range []Options{
		{Target: "sip:12345@127.0.0.1", Catalog: nil},
		{Target: "tel:12345", Catalog: c},
		{Target: "sip:12345@127.0.0.1;transport=sctp", Catalog: c},
		{Target: "sip:12345@127.0.0.1", Catalog: c, DTMF: "morse"},
		{Target: "sip:12345@127.0.0.1", Catalog: c, Codec: "G729"},
		{Target: "sip:12345@127.0.0.1", Catalog: c, LocalIP: "0.0.0.0"},
		{Target: "sip:12345@127.0.0.1", Catalog: c, Timeout: -1},
	} {
		if _, err := plan(opts); !errors.Is(err, ErrBadOptions) {
			t.Errorf("plan(%+v): %v, want ErrBadOptions", opts, err)
		}
	}
}

func TestHeardIDs(t *testing.T) {
	tr := Transcript{Heard: []prompts.Heard{{ID: prompts.Greeting}, {ID: prompts.Goodbye}}}
	if got := tr.HeardIDs(); !slices.Equal(got, []prompts.ID{prompts.Greeting, prompts.Goodbye}) {
		t.Errorf("HeardIDs = %v", got)
	}
}
