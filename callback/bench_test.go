package callback_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/internal/redistest"
)

// BenchmarkWorklist measures return-visit agents at work: 100,000 visits
// wait (one in ten an emergency, 50 lead organizers), and 200 agents (200
// goroutines) each take the next visit and complete it with its
// three answers, over and over; each completion counts in the rates (the
// hotline, its lead organizer, category and district).
// One op is one visit taken and completed. Reported: takes/s, and the
// latency of Next (take) and of the completion at p50 and p99.
// "flat-out" has each agent take its next visit the instant it completed
// the last: the most the worklist takes, and its latency then;
// "paced-1000/s" has each agent take one every 200 ms, 1,000 takes a
// second in all — still hundreds of times what 200 people on the phone
// ask of it.
//
// "flat-out-no-rewrite" is flat-out with Redis's rewrite of its
// append-only file held off while it is measured: the rewrite's child
// process, which a Redis host of its own runs on another core, otherwise
// shares the two cores here with Redis and the agents.
func BenchmarkWorklist(b *testing.B) {
	b.Run("flat-out", func(b *testing.B) { benchmarkWorklist(b, 0, true) })
	b.Run("flat-out-no-rewrite", func(b *testing.B) { benchmarkWorklist(b, 0, false) })
	b.Run("paced-1000/s", func(b *testing.B) { benchmarkWorklist(b, 200*time.Millisecond, true) })
}

func benchmarkWorklist(b *testing.B, every time.Duration, rewrite bool) {
	const waiting, agents = 100000, 200
	ctx := context.Background()
	// As the server runs (cmd/hotline sets it unless GOGC is set).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	rdb := redistest.Start(b).Client(b)
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, cst)
	s := callback.NewStore(rdb, callback.StoreOptions{Now: func() time.Time { return now }, Lease: time.Hour})
	if b.N > waiting/2 {
		b.Fatalf("b.N %d: at most %d, so that the worklist stays half full at least", b.N, waiting/2)
	}
	var fill sync.WaitGroup
	for w := range 8 {
		fill.Go(func() {
			for i := w; i < waiting; i += 8 {
				cat := appeal.Livelihood
				if i%10 == 0 {
					cat = appeal.Emergency
				}
				v := callback.Visit{ID: fmt.Sprintf("bench-%06d", i), Kind: callback.ReturnVisit, Appeal: fmt.Sprintf("bench-%06d", i), Category: cat,
					Organizers: []string{fmt.Sprintf("org-%d", i%50)}, District: fmt.Sprintf("district-%d", i%8), State: callback.Waiting, CreatedAt: now, Due: now.Add(-time.Duration(i) * time.Second)}
				if err := s.AddVisit(ctx, v); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	fill.Wait()
	if !rewrite {
		// Redis's append-only file is rewritten by a child process
		// when it has doubled: on a Redis host of its own that child has
		// a core of its own; here it would take the agents'.
		if err := rdb.ConfigSet(ctx, "auto-aof-rewrite-percentage", "0").Err(); err != nil {
			b.Fatal(err)
		}
	}
	answers := []callback.Answers{
		{Response: callback.Contacted, Solution: callback.Solved, Satisfaction: callback.Satisfied},
		{Response: callback.Contacted, Solution: callback.PartlySolved, Satisfaction: callback.BasicallySatisfied},
		{Response: callback.NotContacted, Solution: callback.NotSolved, Satisfaction: callback.Dissatisfied},
	}
	var mu sync.Mutex
	var takes, completions []time.Duration
	var agentSeq atomic.Int64
	b.SetParallelism(agents / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		seq := agentSeq.Add(1)
		agent := fmt.Sprintf("agent-%d", seq)
		var ts, cs []time.Duration
		var tick <-chan time.Time
		if every > 0 {
			// The agents' takes spread over the period.
			time.Sleep(every * time.Duration(seq%agents) / agents)
			t := time.NewTicker(every)
			defer t.Stop()
			tick = t.C
		}
		for i := 0; pb.Next(); i++ {
			if tick != nil {
				<-tick
			}
			t0 := time.Now()
			l, err := s.Next(ctx, agent, 0)
			t1 := time.Now()
			if err != nil {
				b.Error(err)
				return
			}
			a := answers[i%len(answers)]
			if _, err := s.Attempted(ctx, l.Visit.ID, agent, callback.Attempt{Outcome: callback.Completed, Answers: &a}, ""); err != nil {
				b.Error(err)
				return
			}
			ts, cs = append(ts, t1.Sub(t0)), append(cs, time.Since(t1))
		}
		mu.Lock()
		takes, completions = append(takes, ts...), append(completions, cs...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(takes) == 0 {
		return
	}
	slices.Sort(takes)
	slices.Sort(completions)
	pct := func(d []time.Duration, p float64) float64 {
		return float64(d[int(float64(len(d)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(takes))/elapsed.Seconds(), "takes/s")
	b.ReportMetric(pct(takes, 0.5), "next-p50-ms")
	b.ReportMetric(pct(takes, 0.99), "next-p99-ms")
	b.ReportMetric(pct(completions, 0.5), "complete-p50-ms")
	b.ReportMetric(pct(completions, 0.99), "complete-p99-ms")
	rates, err := s.Rates(ctx, callback.ByAll, []string{"2026-12-07"})
	if err != nil || rates[0].Tally.Completed != int64(len(takes)) {
		b.Errorf("rates count %+v %v, want %d completed", rates, err, len(takes))
	}
}
