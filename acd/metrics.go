package acd

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector reports agents by state, the queue by category and today's
// service-level figures, read from Redis at each scrape, so every node
// shows the whole hotline.
type Collector struct {
	Store *Store

	agents *prometheus.Desc
	queue  *prometheus.Desc
	calls  *prometheus.Desc
	inTime *prometheus.Desc
	rate   *prometheus.Desc
	up     *prometheus.Desc
}

// NewCollector returns a collector for s.
func NewCollector(s *Store) *Collector {
	return &Collector{
		Store:  s,
		agents: prometheus.NewDesc("hotline_agents", "Agents by state.", []string{"state"}, nil),
		queue:  prometheus.NewDesc("hotline_queue_length", "Callers in the queue (waiting or being offered), by category.", []string{"category"}, nil),
		calls: prometheus.NewDesc("hotline_calls_today",
			"Today's calls that asked for an agent, the whole hotline's, by how their wait ended (answered, abandoned, callback, lost, turned_away: no agent of the category registered); they start again at midnight in the hotline's zone.",
			[]string{"outcome"}, nil),
		inTime: prometheus.NewDesc("hotline_answered_in_15s_today",
			"Today's calls answered by an agent within 15 s of joining the queue, the whole hotline's: the 15-second answer rate's numerator.", nil, nil),
		rate: prometheus.NewDesc("hotline_answer_rate_15s",
			"Today's 15-second answer rate of the whole hotline: hotline_answered_in_15s_today over the sum of hotline_calls_today, turned-away calls included; absent before the day's first call ends its wait.", nil, nil),
		up: prometheus.NewDesc("hotline_acd_scrape_ok", "1 when the agent, queue and day figures could be read from Redis.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.agents
	ch <- c.queue
	ch <- c.calls
	ch <- c.inTime
	ch <- c.rate
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
	now := c.Store.now()
	day, err := c.Store.Day(ctx, now)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	n := map[State]int{}
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
	for _, o := range day.ended() {
		ch <- prometheus.MustNewConstMetric(c.calls, prometheus.GaugeValue, float64(o.n), string(o.outcome))
	}
	ch <- prometheus.MustNewConstMetric(c.inTime, prometheus.GaugeValue, float64(day.InTime))
	if r := day.AnswerRate15s.Rate; r != nil {
		ch <- prometheus.MustNewConstMetric(c.rate, prometheus.GaugeValue, *r)
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
}
