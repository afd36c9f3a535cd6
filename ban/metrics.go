package ban

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// scrapeTimeout bounds the Redis reads of one scrape.
const scrapeTimeout = 2 * time.Second

var _ prometheus.Collector = (*Bans)(nil)

// Describe implements prometheus.Collector.
func (b *Bans) Describe(ch chan<- *prometheus.Desc) {
	b.failures.Describe(ch)
	b.made.Describe(ch)
	ch <- b.active
}

// Collect implements prometheus.Collector: this node's counters, and the
// bans in force on every node, counted in the indexes (two ZCOUNTs,
// whatever the number of bans). When Redis does not answer, the gauge is
// left out rather than reported as zero.
func (b *Bans) Collect(ch chan<- prometheus.Metric) {
	b.failures.Collect(ch)
	b.made.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	after := "(" + strconv.FormatInt(b.opts.Now().UnixMilli(), 10)
	kinds := []string{KindSource, KindUser}
	counts := make([]*redis.IntCmd, len(kinds))
	if _, err := b.opts.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, kind := range kinds {
			counts[i] = p.ZCount(ctx, b.keys.index(kind), after, "+inf")
		}
		return nil
	}); err != nil {
		b.log.Warn().Err(err).Msg("ban: counting the bans in force")
		return
	}
	for i, kind := range kinds {
		ch <- prometheus.MustNewConstMetric(b.active, prometheus.GaugeValue, float64(counts[i].Val()), kind)
	}
}
