package ivrtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/prompts"
)

// Harness is a backend under test, seen from the citizen's side.
type Harness struct {
	// Dial calls the hotline as callerID, runs the script with the given
	// DTMF method and returns once the call is over for the caller.
	Dial func(t *testing.T, callerID string, method ivr.DTMFMethod, script caller.Script) caller.Transcript
	// Records is the watch the runner saves records through.
	Records *RecordWatch
	// Calls and Appeals read back what the hotline stored.
	Calls interface {
		Get(ctx context.Context, id string) (calllog.Record, error)
	}
	Appeals interface {
		Get(ctx context.Context, id string) (appeal.Appeal, error)
	}
	// Methods are the DTMF methods the backend carries.
	Methods []ivr.DTMFMethod
}

// RecordWatch passes call records through to a store and lets tests wait
// for a call's final record.
type RecordWatch struct {
	Inner ivr.CallRecorder // nil keeps the records here only

	mu       sync.Mutex
	finals   map[string]calllog.Record // by caller
	wait     map[string]chan struct{}
	started  map[string]chan struct{} // closed at a call's first save
	answered map[string]chan struct{} // closed at the first save once answered
}

// signal returns the channel of callerID in m, made on first use.
func signal(m *map[string]chan struct{}, callerID string) chan struct{} {
	if *m == nil {
		*m = map[string]chan struct{}{}
	}
	ch, ok := (*m)[callerID]
	if !ok {
		ch = make(chan struct{})
		(*m)[callerID] = ch
	}
	return ch
}

// Started waits until the call from callerID has started.
func (w *RecordWatch) Started(t testing.TB, callerID string) {
	t.Helper()
	w.await(t, &w.started, callerID, "started")
}

// Answered waits until the call from callerID has been answered.
func (w *RecordWatch) Answered(t testing.TB, callerID string) {
	t.Helper()
	w.await(t, &w.answered, callerID, "answered")
}

func (w *RecordWatch) await(t testing.TB, m *map[string]chan struct{}, callerID, what string) {
	t.Helper()
	w.mu.Lock()
	ch := signal(m, callerID)
	w.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("no call from %s %s", callerID, what)
	}
}

// Save implements ivr.CallRecorder.
func (w *RecordWatch) Save(ctx context.Context, r calllog.Record) error {
	if w.Inner != nil {
		if err := w.Inner.Save(ctx, r); err != nil {
			return err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch := signal(&w.started, r.Caller); !isClosed(ch) {
		close(ch)
	}
	if ch := signal(&w.answered, r.Caller); r.AnsweredAt != nil && !isClosed(ch) {
		close(ch)
	}
	if r.EndedAt == nil {
		return nil
	}
	if w.finals == nil {
		w.finals = map[string]calllog.Record{}
	}
	w.finals[r.Caller] = r
	if ch, ok := w.wait[r.Caller]; ok {
		close(ch)
		delete(w.wait, r.Caller)
	}
	return nil
}

// Final waits for the final record of the call from callerID.
func (w *RecordWatch) Final(t testing.TB, callerID string) calllog.Record {
	t.Helper()
	w.mu.Lock()
	if r, ok := w.finals[callerID]; ok {
		w.mu.Unlock()
		return r
	}
	if w.wait == nil {
		w.wait = map[string]chan struct{}{}
	}
	ch, ok := w.wait[callerID]
	if !ok {
		ch = make(chan struct{})
		w.wait[callerID] = ch
	}
	w.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("no final record for caller %s", callerID)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.finals[callerID]
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

var callers atomic.Int64

// NewCallerID returns a caller number not used before in this process.
func NewCallerID() string {
	return fmt.Sprintf("1390000%04d", callers.Add(1))
}

// Run runs the conformance suite: every intake path, on every DTMF method
// the backend carries, and a hang-up at every step.
func Run(t *testing.T, h Harness) {
	t.Run("categories", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			keys    string
			cat     appeal.Category
			consent bool
		}{
			{"1,1", appeal.Emergency, true},
			{"2,2", appeal.Livelihood, false},
			{"3,1", appeal.General, true},
		} {
			t.Run(tc.keys, func(t *testing.T) {
				t.Parallel()
				script, err := caller.KeysScript(tc.keys)
				if err != nil {
					t.Fatal(err)
				}
				id, tr := dial(t, h, h.Methods[0], script)
				rec, a := finished(t, h, id, tr)
				if a.Category != tc.cat || a.Consent.Given != tc.consent {
					t.Errorf("appeal %s consent %v, want %s consent %v", a.Category, a.Consent.Given, tc.cat, tc.consent)
				}
				wantKey := tc.keys[len(tc.keys)-1:]
				if a.Consent.Key != wantKey || a.Consent.At == nil || a.Consent.PromptID != string(prompts.ConsentMenu) || a.Consent.PromptVersion == "" {
					t.Errorf("consent evidence %+v, want key %s with time and prompt version", a.Consent, wantKey)
				}
				wantHeard(t, tr, intakeHeard(a.ID)...)
				wantDigits(t, rec, strings.ReplaceAll(tc.keys, ",", ""))
			})
		}
	})

	t.Run("dtmf", func(t *testing.T) {
		t.Parallel()
		for _, m := range h.Methods {
			t.Run(string(m), func(t *testing.T) {
				t.Parallel()
				id, tr := dial(t, h, m, caller.Script{
					{On: prompts.CategoryMenu, Press: "2"}, {On: prompts.ConsentMenu, Press: "1"},
				})
				rec, a := finished(t, h, id, tr)
				if a.Category != appeal.Livelihood || !a.Consent.Given {
					t.Errorf("appeal %s consent %v, want livelihood with consent", a.Category, a.Consent.Given)
				}
				for _, ev := range rec.Events {
					if ev.Kind == "digit" && ev.Method != string(m) {
						t.Errorf("digit %s arrived as %s, want %s", ev.Digit, ev.Method, m)
					}
				}
				wantDigits(t, rec, "21")
			})
		}
	})

	t.Run("invalid then valid", func(t *testing.T) {
		t.Parallel()
		id, tr := dial(t, h, h.Methods[0], caller.Script{
			{On: prompts.CategoryMenu, Press: "7"},
			{On: prompts.CategoryMenu, Press: "2"},
			{On: prompts.ConsentMenu, Press: "5"},
			{On: prompts.ConsentMenu, Press: "1"},
		})
		rec, a := finished(t, h, id, tr)
		if a.Category != appeal.Livelihood || !a.Consent.Given || a.Consent.Key != "1" {
			t.Errorf("appeal %s consent %+v, want livelihood with consent by key 1", a.Category, a.Consent)
		}
		wantHeard(t, tr, append([]prompts.ID{prompts.Greeting,
			prompts.CategoryMenu, prompts.InvalidKey, prompts.CategoryMenu,
			prompts.ConsentMenu, prompts.InvalidKey, prompts.ConsentMenu}, readout(a.ID)...)...)
		wantDigits(t, rec, "7251")
	})

	t.Run("silence falls back", func(t *testing.T) {
		t.Parallel()
		id, tr := dial(t, h, h.Methods[0], nil)
		rec, a := finished(t, h, id, tr)
		if a.Category != appeal.General {
			t.Errorf("category %s, want general after silence", a.Category)
		}
		if a.Consent.Given || a.Consent.Key != "" || a.Consent.At != nil {
			t.Errorf("consent %+v, want not given and no key after silence", a.Consent)
		}
		silent := func(menu prompts.ID) []prompts.ID {
			return []prompts.ID{menu, prompts.NoInput, menu, prompts.NoInput, menu, prompts.FallbackNote}
		}
		want := append([]prompts.ID{prompts.Greeting}, silent(prompts.CategoryMenu)...)
		want = append(want, silent(prompts.ConsentMenu)...)
		wantHeard(t, tr, append(want, readout(a.ID)...)...)
		wantDigits(t, rec, "")
	})

	t.Run("english", func(t *testing.T) {
		t.Parallel()
		id, tr := dial(t, h, h.Methods[0], caller.Script{
			{On: prompts.Greeting, Press: "9", BargeIn: true},
			{On: prompts.CategoryMenu, Press: "3"},
			{On: prompts.ConsentMenu, Press: "2"},
		})
		rec, a := finished(t, h, id, tr)
		if rec.Lang != string(prompts.English) || a.Lang != string(prompts.English) || a.Consent.Lang != string(prompts.English) {
			t.Errorf("record lang %q appeal lang %q consent lang %q, want en", rec.Lang, a.Lang, a.Consent.Lang)
		}
		for _, hd := range tr.Heard[1:] {
			if hd.Lang != prompts.English {
				t.Errorf("heard %s in %s after pressing 9", hd.ID, hd.Lang)
			}
		}
		wantHeard(t, tr, intakeHeard(a.ID)...)
	})

	t.Run("hangup", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			stage  string
			script caller.Script
			appeal bool
		}{
			{ivr.StageGreeting, caller.Script{{On: prompts.Greeting, Hangup: true, BargeIn: true}}, false},
			{ivr.StageCategory, caller.Script{{On: prompts.CategoryMenu, Hangup: true, BargeIn: true}}, false},
			{ivr.StageConsent, caller.Script{{On: prompts.CategoryMenu, Press: "1"}, {On: prompts.ConsentMenu, Hangup: true, BargeIn: true}}, false},
			{ivr.StageAppealNumber, caller.Script{{On: prompts.CategoryMenu, Press: "1"}, {On: prompts.ConsentMenu, Press: "1"}, {On: prompts.AppealNumber, Hangup: true, BargeIn: true}}, true},
			{ivr.StageGoodbye, caller.Script{{On: prompts.CategoryMenu, Press: "1"}, {On: prompts.ConsentMenu, Press: "1"}, {On: prompts.Goodbye, Hangup: true, BargeIn: true}}, true},
		} {
			t.Run(tc.stage, func(t *testing.T) {
				t.Parallel()
				id, tr := dial(t, h, h.Methods[0], tc.script)
				if tr.HungUpBy != "caller" {
					t.Errorf("hung up by %q, want caller", tr.HungUpBy)
				}
				rec := h.Records.Final(t, id)
				if rec.EndCause != calllog.CallerHangup || rec.Stage != tc.stage {
					t.Errorf("record ended %s in %q, want caller_hangup in %q", rec.EndCause, rec.Stage, tc.stage)
				}
				if (rec.AppealID != "") != tc.appeal {
					t.Errorf("appeal id %q; want one: %v", rec.AppealID, tc.appeal)
				}
				stored(t, h, rec)
			})
		}
	})
}

func dial(t *testing.T, h Harness, m ivr.DTMFMethod, script caller.Script) (string, caller.Transcript) {
	t.Helper()
	id := NewCallerID()
	tr := h.Dial(t, id, m, script)
	if tr.Status != 200 {
		t.Fatalf("call not answered: status %d", tr.Status)
	}
	return id, tr
}

// finished checks a call that ran intake to its end and returns its record
// and appeal.
func finished(t *testing.T, h Harness, callerID string, tr caller.Transcript) (calllog.Record, appeal.Appeal) {
	t.Helper()
	if tr.HungUpBy != "server" {
		t.Errorf("hung up by %q, want server", tr.HungUpBy)
	}
	rec := h.Records.Final(t, callerID)
	if rec.EndCause != calllog.FlowFinished || rec.Stage != ivr.StageGoodbye {
		t.Errorf("record ended %s in %q (%s), want flow_finished in goodbye", rec.EndCause, rec.Stage, rec.EndDetail)
	}
	if rec.AnsweredAt == nil || rec.EndedAt == nil || rec.Caller != callerID {
		t.Errorf("record %+v lacks answer/end times or caller", rec)
	}
	stored(t, h, rec)
	a, err := h.Appeals.Get(context.Background(), rec.AppealID)
	if err != nil {
		t.Fatalf("appeal %q of call %s: %v", rec.AppealID, rec.ID, err)
	}
	if a.CallID != rec.ID || a.Caller != callerID {
		t.Errorf("appeal call %s caller %s, want %s %s", a.CallID, a.Caller, rec.ID, callerID)
	}
	if !a.DispatchDue.After(a.CreatedAt) || !a.SignDue.After(a.DispatchDue) || !a.FeedbackDue.After(a.DispatchDue) {
		t.Errorf("appeal clocks out of order: %+v", a)
	}
	return rec, a
}

// stored checks the record in the store is the one the runner wrote.
func stored(t *testing.T, h Harness, rec calllog.Record) {
	t.Helper()
	got, err := h.Calls.Get(context.Background(), rec.ID)
	if err != nil {
		t.Fatalf("call record %s: %v", rec.ID, err)
	}
	if got.EndCause != rec.EndCause || got.Stage != rec.Stage || got.AppealID != rec.AppealID || len(got.Events) != len(rec.Events) {
		t.Errorf("stored record %+v differs from the final one %+v", got, rec)
	}
}

func readout(appealID string) []prompts.ID {
	ids := []prompts.ID{prompts.AppealNumber}
	for _, r := range appealID {
		ids = append(ids, prompts.Digit(r))
	}
	return append(ids, prompts.Goodbye)
}

func intakeHeard(appealID string) []prompts.ID {
	return append([]prompts.ID{prompts.Greeting, prompts.CategoryMenu, prompts.ConsentMenu}, readout(appealID)...)
}

func wantHeard(t *testing.T, tr caller.Transcript, want ...prompts.ID) {
	t.Helper()
	if got := tr.HeardIDs(); !slices.Equal(got, want) {
		t.Errorf("heard\n  %v\nwant\n  %v", got, want)
	}
}

func wantDigits(t *testing.T, rec calllog.Record, want string) {
	t.Helper()
	var got strings.Builder
	for _, ev := range rec.Events {
		if ev.Kind == "digit" {
			got.WriteString(ev.Digit)
		}
	}
	if got.String() != want {
		t.Errorf("digits recorded %q, want %q", got.String(), want)
	}
}
