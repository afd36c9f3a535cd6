package appeal_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/internal/redistest"
)

// benchAppeals is how many open appeals BenchmarkClockEngine makes:
// HOTLINE_BENCH_APPEALS, 100,000 when unset.
func benchAppeals(b *testing.B) int {
	if s := os.Getenv("HOTLINE_BENCH_APPEALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("HOTLINE_BENCH_APPEALS=%q", s)
		}
		return n
	}
	return 100000
}

// usedMemory is Redis's used_memory.
func usedMemory(b *testing.B, rdb redis.UniversalClient) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO")
	return 0
}

// createMany makes n open appeals of cat, created at at(i), from 8
// goroutines.
func createMany(b *testing.B, s *appeal.Store, n int, prefix string, cat appeal.Category, at func(i int) time.Time) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				nw := newAppeal(fmt.Sprintf("%s-%d", prefix, i), cat)
				nw.At = at(i)
				if _, err := s.Create(ctx, nw); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// engines runs three engines on rdb until stop, each with its own store.
func engines(rdb redis.UniversalClient, now func() time.Time, fired func(appeal.ClockEvent)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 3 {
		e := appeal.NewEngine(appeal.NewStore(rdb, appeal.StoreOptions{Now: now}),
			appeal.EngineOptions{Node: fmt.Sprintf("n%d", i+1), Now: now, Fired: fired})
		wg.Go(func() { e.Run(ctx) })
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// BenchmarkClockEngine measures the clock engine on a real redis-server
// (run once: -benchtime 1x):
//
//   - memory: Redis's memory per open appeal (its document, indexes,
//     clock events to come and place in the chase), over
//     HOTLINE_BENCH_APPEALS appeals (100,000 by default);
//   - fire: events fired a second by three engines when all of those
//     appeals' seven events are due at once;
//   - lag: with 10,000 events due in the same second of the wall clock,
//     how long after it each fired (p50, p99, max).
func BenchmarkClockEngine(b *testing.B) {
	b.Run("memory-and-fire", func(b *testing.B) {
		rdb := redistest.Start(b).Client(b)
		n := benchAppeals(b)
		created := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
		now := created
		s := appeal.NewStore(rdb, appeal.StoreOptions{Now: func() time.Time { return now }})
		before := usedMemory(b, rdb)
		createMany(b, s, n, "mem", appeal.Emergency, func(i int) time.Time { return created.Add(time.Duration(i) * time.Millisecond) })
		b.ReportMetric(float64(usedMemory(b, rdb)-before)/float64(n), "bytes/appeal")

		// Every event of every appeal is due.
		later := created.Add(time.Duration(n)*time.Millisecond + 4*time.Hour)
		clock := func() time.Time { return later }
		var fired atomic.Int64
		start := time.Now()
		stop := engines(rdb, clock, func(appeal.ClockEvent) { fired.Add(1) })
		for {
			pending, _, err := s.Pending(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if pending == 0 && fired.Load() == int64(n*7) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		elapsed := time.Since(start)
		stop()
		b.ReportMetric(float64(fired.Load())/elapsed.Seconds(), "events/s")
	})
	b.Run("lag", func(b *testing.B) {
		rdb := redistest.Start(b).Client(b)
		s := appeal.NewStore(rdb, appeal.StoreOptions{})
		const due = 10000
		// Each emergency's dispatch is overdue an hour after it came in:
		// all of them in the same second, a while after they are made.
		at := time.Now().Add(20 * time.Second).Truncate(time.Second)
		createMany(b, s, due, "lag", appeal.Emergency, func(int) time.Time { return at.Add(-time.Hour) })
		if time.Now().After(at) {
			b.Fatal("the appeals were made too slowly to be due together")
		}
		var mu sync.Mutex
		var lags []time.Duration
		stop := engines(rdb, time.Now, func(ev appeal.ClockEvent) {
			if ev.Kind == appeal.Overdue && ev.Stage == appeal.StageDispatch {
				mu.Lock()
				lags = append(lags, ev.FiredAt.Sub(ev.Due))
				mu.Unlock()
			}
		})
		for {
			mu.Lock()
			got := len(lags)
			mu.Unlock()
			if got == due {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		stop()
		slices.Sort(lags)
		b.ReportMetric(float64(lags[len(lags)/2].Milliseconds()), "p50-ms")
		b.ReportMetric(float64(lags[len(lags)*99/100].Milliseconds()), "p99-ms")
		b.ReportMetric(float64(lags[len(lags)-1].Milliseconds()), "max-ms")
	})
}
