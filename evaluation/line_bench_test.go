package evaluation_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/redistest"
)

// BenchmarkEndOfCall measures the line's counter updates at the end of
// calls: each call's rating stored with its counters (hotline, agent,
// category; the call counted served as well, no served event having come
// first: the longer path) in one script per call. "single" has 32 calls
// end at once (16 goroutines per CPU), each calling Record, whose
// concurrent events share pipelines; "batch" records 200 ratings per
// round trip (RecordAll, as a replay does) from 4 goroutines;
// "batch-served-first" times both events of each call, the served event
// (ServedAll) then the rating. The calls/s figure is calls whose events
// were all stored, per second.
func BenchmarkEndOfCall(b *testing.B) {
	verdicts := []evaluation.Verdict{evaluation.Praise, evaluation.Praise, evaluation.NoRating, evaluation.BadReview}
	setup := func(b *testing.B) (*evaluation.Store, func(i int64) evaluation.Rating) {
		s := evaluation.NewStore(redistest.Start(b).Client(b), evaluation.StoreOptions{})
		at := time.Now()
		return s, func(i int64) evaluation.Rating {
			r := rating(fmt.Sprintf("bench-%d", i), fmt.Sprintf("agent-%d", i%2000), verdicts[i%4], at)
			r.ServedAt = at.Add(-time.Minute)
			return r
		}
	}
	b.Run("single", func(b *testing.B) {
		ctx := context.Background()
		s, next := setup(b)
		var n atomic.Int64
		b.SetParallelism(16)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Record(ctx, next(n.Add(1))); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "calls/s")
	})
	b.Run("batch", func(b *testing.B) {
		const batch = 200
		ctx := context.Background()
		s, next := setup(b)
		var n atomic.Int64
		b.SetParallelism(2)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			rs := make([]evaluation.Rating, batch)
			for pb.Next() {
				for i := range rs {
					rs[i] = next(n.Add(1))
				}
				_, errs := s.RecordAll(ctx, rs)
				for _, err := range errs {
					if err != nil {
						b.Error(err)
						return
					}
				}
			}
		})
		b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "calls/s")
	})
	b.Run("batch-served-first", func(b *testing.B) {
		const batch = 200
		ctx := context.Background()
		s, next := setup(b)
		var n atomic.Int64
		b.SetParallelism(2)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			rs := make([]evaluation.Rating, batch)
			cs := make([]evaluation.ServedCall, batch)
			for pb.Next() {
				for i := range rs {
					rs[i] = next(n.Add(1))
					cs[i] = evaluation.ServedCall{CallID: rs[i].CallID, AgentID: rs[i].AgentID, Category: rs[i].Category, At: rs[i].ServedAt}
				}
				for _, err := range s.ServedAll(ctx, cs) {
					if err != nil {
						b.Error(err)
						return
					}
				}
				_, errs := s.RecordAll(ctx, rs)
				for _, err := range errs {
					if err != nil {
						b.Error(err)
						return
					}
				}
			}
		})
		b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "calls/s")
	})
}

// BenchmarkMonthRanking measures the ranking of 2,000 agents over a month
// of 31 days, each agent with calls counted on every day.
func BenchmarkMonthRanking(b *testing.B) {
	ctx := context.Background()
	loc := appeal.DefaultLocation()
	s := evaluation.NewStore(redistest.Start(b).Client(b), evaluation.StoreOptions{Location: loc})
	const agents, days = 2000, 31
	first := time.Date(2026, 12, 1, 10, 0, 0, 0, loc)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for j := range jobs {
				agent, day := j%agents, j/agents
				c := evaluation.ServedCall{
					CallID: fmt.Sprintf("c-%d-%d", day, agent), AgentID: fmt.Sprintf("agent-%04d", agent),
					Category: appeal.General, At: first.AddDate(0, 0, day),
				}
				if err := s.Served(ctx, c); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for j := range agents * days {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	w, err := evaluation.WindowSpec{Kind: "month", Month: "2026-12"}.Resolve(first, loc)
	if err != nil {
		b.Fatal(err)
	}
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		rk, err := s.AgentLines(ctx, w)
		took = append(took, time.Since(start))
		lines := rk.Agents
		if err != nil || len(lines) != agents || lines[0].Served != days {
			b.Fatalf("%d lines, first %+v, %v", len(lines), lines[0], err)
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
}
