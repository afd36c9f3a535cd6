// Command outage measures what a Redis outage loses: hotline (built from
// the tree, a child process) takes calls on its own redis-server; as a
// first wave of callers is in the consent menu, a step before the appeal,
// Redis is killed (or frozen with SIGSTOP) for the outage; more callers
// come during it; then Redis is started again. Read straight from Redis
// afterwards: the appeals stored, under the numbers their callers heard,
// with their consent evidence, and every call's record — and how soon
// after Redis answered again the journal was replayed.
//
//	go run ./bench/outage                          # a 10-minute outage
//	go run ./bench/outage -outage 30s -calls 3     # a quick look
//	go run ./bench/outage -stop pause              # Redis frozen, not killed
//	go run ./bench/outage -outage-after 20m        # callers during the outage run the whole intake
//
// Redis runs with appendfsync always, so that what it acknowledged before
// the kill survives it: what is measured is hotline's journal, not Redis's
// own durability.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/bench/internal/rig"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/prompts"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "outage:", err)
		os.Exit(1)
	}
}

type options struct {
	outage      time.Duration
	calls       int
	every       time.Duration
	during      int
	stop        string
	outageAfter time.Duration
	binary      string
	out         string
}

func run() error {
	var o options
	flag.DurationVar(&o.outage, "outage", 10*time.Minute, "how long Redis stays down")
	flag.IntVar(&o.calls, "calls", 10, "callers in the consent menu when Redis goes down")
	flag.DurationVar(&o.every, "every", time.Minute, "how often more callers come during the outage")
	flag.IntVar(&o.during, "during", 2, "callers coming each time during the outage")
	flag.StringVar(&o.stop, "stop", "kill", "how Redis goes down: kill (SIGKILL, started again) or pause (SIGSTOP, then SIGCONT)")
	flag.DurationVar(&o.outageAfter, "outage-after", 0, "journal.outage_after of hotline (0: its default)")
	flag.StringVar(&o.binary, "hotline", "", "hotline binary (default: built from ./cmd/hotline)")
	flag.StringVar(&o.out, "out", "bench/out/outage", "folder for hotline's log")
	flag.Parse()
	if o.stop != "kill" && o.stop != "pause" {
		return fmt.Errorf("-stop %q: want kill or pause", o.stop)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hotline-outage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.binary == "" {
		if o.binary, err = rig.Build(dir); err != nil {
			return err
		}
	}
	srv, err := startRedis(dir)
	if err != nil {
		return err
	}
	defer func() { srv.Stop() }()
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Sock})
	defer rdb.Close()
	calls := calllog.NewStore(rdb, calllog.StoreOptions{})
	appeals := appeal.NewStore(rdb, appeal.StoreOptions{})

	logPath := filepath.Join(o.out, "hotline.log")
	h, err := rig.StartHotline(o.binary, dir, logPath, time.Minute, func(sip, http string) string {
		conf := fmt.Sprintf(`node: outage
sip:
  listen: %s
  transports: [udp]
http:
  listen: %s
storage:
  dir: %s
redis:
  url: unix://%s
log:
  format: json
`, sip, http, filepath.Join(dir, "node"), srv.Sock)
		if o.outageAfter > 0 {
			conf += fmt.Sprintf("journal:\n  outage_after: %s\n", o.outageAfter)
		}
		return conf
	})
	if err != nil {
		return err
	}
	defer h.Stop(time.Minute)
	fmt.Printf("hotline %s on redis-server %s; outage %s by %s; %d callers in the consent menu at its start, %d more every %s during it\n",
		o.binary, srv.Sock, o.outage, o.stop, o.calls, o.during, o.every)

	var mu sync.Mutex
	var placed []*placedCall
	var wg sync.WaitGroup
	place := func(who string, wave string) {
		c := &placedCall{who: who, wave: wave}
		mu.Lock()
		placed = append(placed, c)
		mu.Unlock()
		wg.Go(func() { c.tr, c.err = dial(h.SIP, who) })
	}

	// The first wave: the greeting is barged in on with the category,
	// and the consent menu (8 s) is answered at its end; Redis goes down
	// 3 s into it.
	for i := range o.calls {
		place(fmt.Sprintf("1370000%04d", i), "at the start")
	}
	time.Sleep(3 * time.Second)
	if err := srv.down(o.stop); err != nil {
		return err
	}
	downAt := time.Now()
	fmt.Printf("%s: redis down (%s)\n", downAt.Format(time.TimeOnly), o.stop)
	n := o.calls
	tick := time.NewTicker(o.every)
	for time.Since(downAt)+o.every <= o.outage {
		<-tick.C
		for range o.during {
			place(fmt.Sprintf("1370000%04d", n), "during")
			n++
		}
	}
	tick.Stop()
	time.Sleep(time.Until(downAt.Add(o.outage)))
	if err := srv.up(o.stop, dir); err != nil {
		return err
	}
	upAt := time.Now()
	fmt.Printf("%s: redis up again after %s\n", upAt.Format(time.TimeOnly), upAt.Sub(downAt).Round(time.Second))
	wg.Wait()

	// What Redis holds, once the journal is replayed.
	ctx := context.Background()
	// The node replays within a second of finding Redis back; what it
	// logged of it, then what Redis holds.
	var rp replay
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if rp, err = readReplay(logPath); err == nil && rp.took != "" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hotline's log does not say the journal was replayed within 2 minutes of Redis answering: %v", err)
		}
	}
	res := check(ctx, calls, appeals, placed)
	res.print(os.Stdout, o, len(placed), rp)
	if res.lost() {
		return errors.New("something callers said or were told is not in Redis")
	}
	return nil
}

type placedCall struct {
	who, wave string
	tr        caller.Transcript
	err       error
}

// dial places one citizen's call: category 1 during the greeting, consent
// 1 after the consent menu.
func dial(sip, who string) (caller.Transcript, error) {
	catalog, err := prompts.Default()
	if err != nil {
		return caller.Transcript{}, err
	}
	tr, err := caller.Call(context.Background(), caller.Options{
		Target: "sip:12345@" + sip, From: who, Catalog: catalog,
		Script: caller.Script{
			{On: prompts.Greeting, BargeIn: true, Press: "1"},
			{On: prompts.ConsentMenu, Press: "1"},
		},
		Logger: zerolog.New(io.Discard),
	})
	if errors.Is(err, caller.ErrCallEnded) {
		err = nil
	}
	return tr, err
}

// result is what Redis holds of the calls.
type result struct {
	answered                   int // calls answered (200)
	appealsTold, appealsUntold int // callers told a number, told one will be called back
	appealsStored, appealsSame int // appeals in Redis, those under the number heard
	appealsJournaled           int // stored appeals taken while Redis was down
	consentKept                int // stored appeals with the consent evidence
	recordsStored, recordsBack int // final records in Redis, those marked for a call-back
	apologies                  int // callers who heard the call-back apology
	problems                   []string
}

func (r result) lost() bool {
	return len(r.problems) > 0 || r.appealsStored != r.appealsSame+r.appealsUntold
}

func check(ctx context.Context, calls *calllog.Store, appeals *appeal.Store, placed []*placedCall) result {
	var r result
	recs, err := calls.List(ctx, calllog.MaxListLimit)
	if err != nil {
		r.problems = append(r.problems, err.Error())
		return r
	}
	byCaller := map[string]calllog.Record{}
	for _, rec := range recs {
		if rec.EndedAt != nil {
			byCaller[rec.Caller] = rec
		}
	}
	for _, c := range placed {
		if c.tr.Status == 200 {
			r.answered++
		}
		told := toldNumber(c.tr)
		heard := c.tr.HeardIDs()
		untold := false
		for _, id := range heard {
			untold = untold || id == prompts.AppealNumberLater
			if id == prompts.OutageCallback {
				r.apologies++
			}
		}
		switch {
		case told != "":
			r.appealsTold++
		case untold:
			r.appealsUntold++
		}
		rec, ok := byCaller[c.who]
		if !ok {
			r.problems = append(r.problems, c.who+": no final record")
			continue
		}
		r.recordsStored++
		if rec.Callback {
			r.recordsBack++
		}
		if told == "" && !untold {
			continue
		}
		a, err := appeals.ByCall(ctx, rec.ID)
		if err != nil {
			r.problems = append(r.problems, fmt.Sprintf("%s: appeal: %v", c.who, err))
			continue
		}
		r.appealsStored++
		if a.ID == told && rec.AppealID == told {
			r.appealsSame++
		} else if told != "" {
			r.problems = append(r.problems, fmt.Sprintf("%s: heard %s, stored %s, record %s", c.who, told, a.ID, rec.AppealID))
		}
		if a.Journaled {
			r.appealsJournaled++
		}
		if a.Consent.Given && a.Consent.Key == "1" && a.Consent.At != nil && a.Consent.PromptVersion != "" {
			r.consentKept++
		}
	}
	return r
}

func (r result) print(w io.Writer, o options, placed int, rp replay) {
	fmt.Fprintf(w, "\ncalls placed %d, answered %d; callers who heard the call-back apology %d\n", placed, r.answered, r.apologies)
	fmt.Fprintf(w, "appeal numbers heard %d (+%d told a call-back would give it); appeals in Redis %d, under the number heard %d, taken during the outage %d, with consent evidence %d\n",
		r.appealsTold, r.appealsUntold, r.appealsStored, r.appealsSame, r.appealsJournaled, r.consentKept)
	fmt.Fprintf(w, "final call records in Redis %d of %d, marked for a call-back %d\n", r.recordsStored, placed, r.recordsBack)
	fmt.Fprintf(w, "hotline: redis down for %s, %d entries journaled, replayed in %s once it answered\n", rp.downFor, rp.pending, rp.took)
	for _, p := range r.problems {
		fmt.Fprintln(w, "LOST:", p)
	}
	fmt.Fprintf(w, "\n| outage | Redis | calls | appeals heard → stored under that number | with consent evidence | call records stored | journal entries | replayed within |\n")
	fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(w, "| %s | %s | %d | %d → %d | %d | %d / %d | %d | %s |\n", o.outage, o.stop, placed,
		r.appealsTold, r.appealsSame, r.consentKept, r.recordsStored, placed, rp.pending, rp.took)
}

// replay is what hotline logged of the outage: how long it found Redis
// down, how many entries it had journaled, how long the replay took.
type replay struct {
	downFor, took string
	pending       int
}

// readReplay reads the last outage from hotline's JSON log.
func readReplay(path string) (replay, error) {
	f, err := os.Open(path)
	if err != nil {
		return replay{}, err
	}
	defer f.Close()
	var rp replay
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Message, DownFor, Took string
			Pending                int
		}
		if json.Unmarshal(sc.Bytes(), &struct {
			Message *string `json:"message"`
			DownFor *string `json:"down_for"`
			Took    *string `json:"took"`
			Pending *int    `json:"pending"`
		}{&line.Message, &line.DownFor, &line.Took, &line.Pending}) != nil {
			continue
		}
		switch line.Message {
		case "redis answers again: replaying the journal":
			rp.downFor, rp.pending = line.DownFor, line.Pending
		case "journal replayed":
			rp.took = line.Took
		}
	}
	if rp.downFor == "" {
		return rp, errors.New("hotline's log says nothing of Redis answering again")
	}
	return rp, sc.Err()
}

// toldNumber is the appeal number the caller heard read back.
func toldNumber(tr caller.Transcript) string {
	ids := tr.HeardIDs()
	for i, id := range ids {
		if id != prompts.AppealNumber {
			continue
		}
		var n []byte
		for _, d := range ids[i+1:] {
			s, ok := strings.CutPrefix(string(d), "digit_")
			if !ok || len(s) != 1 {
				break
			}
			n = append(n, s[0])
		}
		return string(n)
	}
	return ""
}

// redisServer is the benchmark's redis-server, its append-only file
// fsynced at every write.
type redisServer struct{ *rig.Redis }

func startRedis(dir string) (*redisServer, error) {
	r, err := rig.StartRedis(dir, "--appendonly", "yes", "--appendfsync", "always")
	if err != nil {
		return nil, err
	}
	return &redisServer{r}, nil
}

// down kills the server, or freezes it.
func (s *redisServer) down(how string) error {
	if how == "pause" {
		return s.Cmd.Process.Signal(syscall.SIGSTOP)
	}
	_ = s.Cmd.Process.Kill()
	_ = s.Cmd.Wait()
	return nil
}

// up starts the server again on its files, or thaws it.
func (s *redisServer) up(how, dir string) error {
	if how == "pause" {
		return s.Cmd.Process.Signal(syscall.SIGCONT)
	}
	next, err := startRedis(dir)
	if err != nil {
		return err
	}
	*s = *next
	return nil
}
