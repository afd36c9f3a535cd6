package acd

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector reports agents by state and the queue by category, read from
// Redis at each scrape, so every node shows the whole hotline.
type Collector struct {
	Store *Store

	agents *prometheus.Desc
	queue  *prometheus.Desc
	up     *prometheus.Desc
}

// NewCollector returns a collector for s.
func NewCollector(s *Store) *Collector {
	return &Collector{
		Store:  s,
		agents: prometheus.NewDesc("hotline_agents", "Agents by state.", []string{"state"}, nil),
		queue:  prometheus.NewDesc("hotline_queue_length", "Callers in the queue (waiting or being offered), by category.", []string{"category"}, nil),
		up:     prometheus.NewDesc("hotline_acd_scrape_ok", "1 when the agent and queue figures could be read from Redis.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.agents
	ch <- c.queue
	ch <- c.up
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	agents, err := c.Store.Agents(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	lengths, err := c.Store.Lengths(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	n := map[State]int{}
	now := c.Store.now()
	for _, a := range agents {
		st := a.State
		if st == WrapUp && a.WrapUpUntil != nil && !a.WrapUpUntil.After(now) {
			st = Available
		}
		n[st]++
	}
	for _, st := range States {
		ch <- prometheus.MustNewConstMetric(c.agents, prometheus.GaugeValue, float64(n[st]), string(st))
	}
	for _, cat := range Categories {
		ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(lengths[cat]), string(cat))
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
}
