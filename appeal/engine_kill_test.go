package appeal_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/internal/redistest"
)

// engineChild is the process TestEngineKilledMidClaim kills: an engine
// that claims what is due, says so on stdout, and waits to be killed
// before it fires. TestMain runs it in place of the tests when the
// environment names its Redis.
func engineChild(url, now string) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		panic(err)
	}
	ms, _ := strconv.ParseInt(now, 10, 64)
	at := time.UnixMilli(ms)
	e := appeal.NewEngine(appeal.NewStore(redis.NewClient(opts), appeal.StoreOptions{}), appeal.EngineOptions{Node: "child", Now: func() time.Time { return at }})
	appeal.OnClaimed(e, func(n int) {
		os.Stdout.WriteString("claimed " + strconv.Itoa(n) + "\n")
		select {} // killed here
	})
	_, _ = e.Tick(context.Background())
}

// TestEngineKilledMidClaim: an engine process killed with SIGKILL after it
// claimed events and before it fired them loses nothing: another engine
// takes them when the claims' lease runs out, and each fires once, due
// when it was due.
func TestEngineKilledMidClaim(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	created := time.Date(2026, 11, 27, 10, 0, 0, 0, appeal.DefaultLocation())
	now := created
	s := appeal.NewStore(rdb, appeal.StoreOptions{Now: func() time.Time { return now }})
	a, err := s.Create(ctx, appeal.New{CallID: "killed", Caller: "13800000000", Category: appeal.Emergency})
	if err != nil {
		t.Fatal(err)
	}
	now = created.Add(61 * time.Minute) // the dispatch urge and overdue are due

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "HOTLINE_ENGINE_CHILD_REDIS="+srv.URL(), "HOTLINE_ENGINE_CHILD_NOW="+strconv.FormatInt(now.UnixMilli(), 10))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "claimed 2\n" {
		_ = cmd.Process.Kill()
		t.Fatalf("the child said %q, %v", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	var fired []appeal.ClockEvent
	e := appeal.NewEngine(s, appeal.EngineOptions{Node: "survivor", Now: func() time.Time { return now }, Lease: 30 * time.Second,
		Fired: func(ev appeal.ClockEvent) { fired = append(fired, ev) }, Log: zerolog.New(zerolog.NewTestWriter(t))})
	// Within the child's lease: nothing to take.
	now = now.Add(29 * time.Second)
	if n, err := e.Tick(ctx); err != nil || n != 0 || len(fired) != 0 {
		t.Fatalf("within the dead engine's lease: claimed %d, fired %v, %v", n, fired, err)
	}
	now = now.Add(2 * time.Second)
	if _, err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if len(fired) != 2 {
		t.Fatalf("after the lease: fired %+v, want the dispatch urge and overdue", fired)
	}
	for _, ev := range fired {
		want := a.DispatchDue
		if ev.Kind == appeal.Urge {
			want = a.DispatchDue.Add(-12 * time.Minute)
		}
		if ev.Appeal != a.ID || ev.Stage != appeal.StageDispatch || !ev.Due.Equal(want) || ev.Node != "survivor" {
			t.Errorf("event %+v: due %s, want %s", ev, ev.Due, want)
		}
	}
	now = now.Add(time.Minute)
	if _, err := e.Tick(ctx); err != nil || len(fired) != 2 {
		t.Errorf("fired again: %+v %v", fired, err)
	}
}
