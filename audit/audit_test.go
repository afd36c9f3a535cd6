package audit

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.RunTests(m)) }

// TestRecordAndPage checks that events are kept whole, listed newest
// first in pages, and read by time range oldest first.
func TestRecordAndPage(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
		l := New(rdb, Options{Now: func() time.Time { return at }})
		actions := []string{"login", "agents.pause", "agents.resume", "complaints.review", "logout"}
		for _, a := range actions {
			e := Entry{User: "alice", Roles: []string{"agent"}, Source: "192.0.2.7", Action: a, Method: "POST", Path: "/api/v1/x", Status: 200, Subject: "a1001", Detail: map[string]string{"reason": "lunch"}}
			if err := l.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		first, next, err := l.Page(ctx, 3, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(first) != 3 || next == "" || first[0].Action != "logout" || first[2].Action != "agents.resume" {
			t.Fatalf("first page %+v next %q; want the 3 newest and a cursor", first, next)
		}
		if e := first[0]; e.User != "alice" || e.Source != "192.0.2.7" || e.Detail["reason"] != "lunch" || !e.At.Equal(at) || e.ID == "" || e.Roles[0] != "agent" {
			t.Fatalf("event not kept whole: %+v", e)
		}
		rest, next, err := l.Page(ctx, 3, next)
		if err != nil || len(rest) != 2 || next != "" || rest[1].Action != "login" {
			t.Fatalf("second page %+v %q %v; want the 2 oldest, last", rest, next, err)
		}
		var all []string
		err = l.Each(ctx, at.Add(-time.Hour), at.Add(time.Hour), func(e Entry) error {
			all = append(all, e.Action)
			return nil
		})
		if err != nil || len(all) != 5 || all[0] != "login" || all[4] != "logout" {
			t.Fatalf("Each: %v %v; want the five oldest first", all, err)
		}
	})
}

// TestClockBehind checks that an entry whose clock is behind the newest
// entry's (another node's clock a little ahead) is kept, after it.
func TestClockBehind(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	l := New(srv.Client(t), Options{Now: func() time.Time { return at }})
	if err := l.Record(ctx, Entry{Action: "first"}); err != nil {
		t.Fatal(err)
	}
	at = at.Add(-time.Second)
	if err := l.Record(ctx, Entry{Action: "second"}); err != nil {
		t.Fatal(err)
	}
	got, _, err := l.Page(ctx, 10, "")
	if err != nil || len(got) != 2 || got[0].Action != "second" {
		t.Fatalf("entries %+v %v; want the second newest", got, err)
	}
}

// TestBounded checks that a flood of events (failed logins from
// anywhere) does not grow the log past its bound.
func TestBounded(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	l := New(rdb, Options{MaxEntries: 100})
	for i := range 1000 {
		if err := l.Record(ctx, Entry{User: "x", Action: "login.failed", Status: 401, Source: "198.51.100." + string(rune('0'+i%10))}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := rdb.XLen(ctx, l.key).Result()
	if err != nil {
		t.Fatal(err)
	}
	// MAXLEN ~ trims whole nodes of the stream: a little above the bound.
	if n < 100 || n > 300 {
		t.Fatalf("%d events kept; want about 100", n)
	}
}

// TestFind checks the filters, and that a page of a filtered search
// ends where its reading stopped.
func TestFind(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	l := New(srv.Client(t), Options{})
	for i := range 1200 {
		e := Entry{User: "wang", Action: "agents.pause"}
		switch {
		case i == 3:
			e = Entry{User: "Zhao", Action: "login.failed"}
		case i == 700:
			e = Entry{User: "zhao", Action: "login"}
		case i%2 == 0:
			e.Action = "agents.resume"
		}
		if err := l.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	got, next, err := l.Find(ctx, Filter{User: "zhao"}, 10, "")
	if err != nil || len(got) != 2 || next != "" || got[0].Action != "login" || got[1].Action != "login.failed" {
		t.Fatalf("zhao's entries %+v %q %v; want both, newest first, and no next page", got, next, err)
	}
	got, _, err = l.Find(ctx, Filter{Action: "login"}, 10, "")
	if err != nil || len(got) != 2 {
		t.Fatalf("action login %+v %v; want login and login.failed", got, err)
	}
	got, next, err = l.Find(ctx, Filter{Action: "agents.pause", User: "wang"}, 3, "")
	if err != nil || len(got) != 3 || next != got[2].ID {
		t.Fatalf("a page of wang's pauses %+v %q %v", got, next, err)
	}
	more, _, err := l.Find(ctx, Filter{Action: "agents.pause", User: "wang"}, 3, next)
	if err != nil || len(more) != 3 || more[0].ID == got[2].ID || more[0].ID == got[0].ID {
		t.Fatalf("the next page %+v %v; want three older ones", more, err)
	}
	if got, _, err := l.Find(ctx, Filter{Action: "agents"}, 2000, ""); err != nil || len(got) != 1198 {
		t.Fatalf("every agents action: %d %v; want 1198", len(got), err)
	}
}
