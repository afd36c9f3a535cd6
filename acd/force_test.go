package acd

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/internal/redistest"
)

// wantStateError checks err is a *StateError saying the agent is in st.
func wantStateError(t *testing.T, what string, err error, st State) {
	t.Helper()
	var se *StateError
	if !errors.As(err, &se) || !errors.Is(err, ErrState) || se.State != st {
		t.Errorf("%s: %v, want a state error saying %s", what, err, st)
	}
}

// TestResumeSaysWhatItDid: a resume that can change nothing is refused
// with the agent's state, not answered as if it had resumed the agent.
func TestResumeSaysWhatItDid(t *testing.T) {
	redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r := newRigOn(t, rdb)
		r.agent("a1", allCats...)
		if st, err := r.s.Resume(r.ctx, "a1"); err != nil || st != Available {
			t.Errorf("resume of an available agent: %s %v, want available (nothing to do)", st, err)
		}
		r.enqueue("c1", appeal.General)
		wantOffers(t, r.dispatch(), "c1>a1")
		r.answered("c1", "a1")
		_, err := r.s.Resume(r.ctx, "a1")
		wantStateError(t, "resume while talking with no pause waiting", err, Talking)
		if st, err := r.s.Pause(r.ctx, "a1", "lunch"); err != nil || st != Talking {
			t.Fatalf("pause while talking: %s %v", st, err)
		}
		if a := r.state("a1"); a.PauseNext != "lunch" {
			t.Errorf("pause waiting: %q", a.PauseNext)
		}
		// Resuming cancels the pause that waits for the call's end.
		if st, err := r.s.Resume(r.ctx, "a1"); err != nil || st != Talking {
			t.Fatalf("resume with a pause waiting: %s %v", st, err)
		}
		if a := r.state("a1"); a.PauseNext != "" {
			t.Errorf("the pause still waits: %q", a.PauseNext)
		}
		wantStateError(t, "delete while talking", r.s.Delete(r.ctx, "a1"), Talking)
		// A pause asked for during the call survives into wrap-up, and can
		// be cancelled there; with none waiting, wrap-up has nothing to resume.
		if _, err := r.s.Pause(r.ctx, "a1", "lunch"); err != nil {
			t.Fatal(err)
		}
		if err := r.s.Ended(r.ctx, "c1", "a1", time.Minute); err != nil {
			t.Fatal(err)
		}
		if st, err := r.s.Resume(r.ctx, "a1"); err != nil || st != WrapUp {
			t.Fatalf("resume in wrap-up with a pause waiting: %s %v", st, err)
		}
		_, err = r.s.Resume(r.ctx, "a1")
		wantStateError(t, "resume in wrap-up", err, WrapUp)
		if _, err := r.s.Unregistered(r.ctx, "a1"); err != nil {
			t.Fatal(err)
		}
		_, err = r.s.Resume(r.ctx, "a1")
		wantStateError(t, "resume of an offline agent", err, Offline)
		_, err = r.s.Pause(r.ctx, "a1", "lunch")
		wantStateError(t, "pause of an offline agent", err, Offline)
		if _, err := r.s.Resume(r.ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("resume of nobody: %v", err)
		}
	})
}

// TestForce: an operator forces an agent stuck in a call back to work,
// on the record; states that would be false are refused.
func TestForce(t *testing.T) {
	redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r := newRigOn(t, rdb)
		r.agent("a1", allCats...)
		r.agent("a2", allCats...)
		r.enqueue("c1", appeal.General)
		wantOffers(t, r.dispatch(), "c1>a1")
		r.answered("c1", "a1")
		if _, err := r.s.Pause(r.ctx, "a1", "lunch"); err != nil {
			t.Fatal(err)
		}

		for _, bad := range []State{Talking, Ringing, WrapUp, "asleep"} {
			if _, err := r.s.Force(r.ctx, "a1", bad, "", "admin"); !errors.Is(err, ErrInvalid) {
				t.Errorf("force %s: %v, want ErrInvalid", bad, err)
			}
		}
		if _, err := r.s.Force(r.ctx, "a1", Paused, " ", "admin"); !errors.Is(err, ErrInvalid) {
			t.Errorf("force paused without a reason: %v", err)
		}
		if _, err := r.s.Force(r.ctx, "a1", Available, "", ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("force by nobody: %v", err)
		}
		_, err := r.s.Force(r.ctx, "a1", Offline, "", "admin")
		wantStateError(t, "force offline with a phone registered", err, Talking)
		r.wantState("a1", Talking)

		r.clock.Add(time.Minute)
		a, err := r.s.Force(r.ctx, "a1", Available, "stuck after a crash", "admin")
		if err != nil {
			t.Fatal(err)
		}
		if a.State != Available || a.CallID != "" || a.PauseNext != "" || a.Forced == nil ||
			a.Forced.By != "admin" || a.Forced.From != Talking || a.Forced.To != Available ||
			a.Forced.CallID != "c1" || a.Forced.Reason != "stuck after a crash" || !a.Forced.At.Equal(r.clock.Now()) {
			t.Fatalf("forced agent %+v (forced %+v)", a, a.Forced)
		}
		// Taking calls again; the old call's late end leaves it alone.
		r.enqueue("c2", appeal.General)
		wantOffers(t, r.dispatch(), "c2>a2")
		r.enqueue("c3", appeal.General)
		wantOffers(t, r.dispatch(), "c3>a1")
		if err := r.s.Ended(r.ctx, "c1", "a1", time.Minute); err != nil {
			t.Fatal(err)
		}
		r.wantState("a1", Ringing)
		if err := r.s.Delete(r.ctx, "a2"); err == nil {
			t.Fatal("deleted a ringing agent")
		}

		// Paused with a reason; then, the phone gone, only offline is true.
		if a, err := r.s.Force(r.ctx, "a1", Paused, "meeting", "sup"); err != nil || a.State != Paused || a.Reason != "meeting" {
			t.Fatalf("force paused: %+v %v", a, err)
		}
		if _, err := r.s.Unregistered(r.ctx, "a1"); err != nil {
			t.Fatal(err)
		}
		_, err = r.s.Force(r.ctx, "a1", Available, "", "admin")
		wantStateError(t, "force available without a phone", err, Offline)
		if a, err := r.s.Force(r.ctx, "a1", Offline, "", "admin"); err != nil || a.State != Offline {
			t.Fatalf("force offline without a phone: %+v %v", a, err)
		}
		if _, err := r.s.Force(r.ctx, "nobody", Offline, "", "admin"); !errors.Is(err, ErrNotFound) {
			t.Errorf("force nobody: %v", err)
		}
		if err := r.s.Delete(r.ctx, "a1"); err != nil {
			t.Errorf("delete after the force: %v", err)
		}
	})
}
