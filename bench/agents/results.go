package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hotline12345/hotline/bench/internal/measure"
	"github.com/hotline12345/hotline/bench/internal/rig"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/agentua"
	"github.com/hotline12345/hotline/prompts"
	"github.com/hotline12345/hotline/web"
	"github.com/hotline12345/hotline/web/client"
)

type results struct {
	sipp []rig.SippResult
	cpu  rig.CPU
	// The load generator's CPU time over the run: this process (the
	// phones) and the sipp processes.
	phonesCPU time.Duration
	elapsed   time.Duration // sipp's run, first call to last call's end
	drained   bool          // every call had ended when the results were read

	metrics map[string]float64
	stats   web.Stats
	records map[string]calllog.Record    // by the caller's number
	ratings map[string]evaluation.Rating // by call id
	convs   []agentua.Conversation
	phones  agentua.Stats

	agentEnded int          // conversations the agent ended with BYE
	lost       []lostRating // of those, the ones with no rating recorded
	// unheard are rated calls whose journal shows no rating question
	// played: the praise key arrived before its first frame went out.
	unheard []string
	// complete counts the calls that went the whole way: an agent, a
	// praise, and the flow's own end; incomplete lists the others.
	complete   int
	incomplete []lostRating
	e2e        []time.Duration
	// From the call records: answer to queue (intake), queue to the
	// agent's answer (wait), and the agent's hang-up to the praise key
	// being taken (how long the caller's keys took to land).
	intake, wait, keyAfter []time.Duration
	// The end-to-end delay split at the 200 hotline sends for the BYE,
	// which it sends before ending the leg: the BYE's round trip, and
	// from its 200 to the question.
	byeRTT, afterBye []time.Duration
}

// lostRating is a conversation the agent ended that has no rating record.
type lostRating struct {
	Citizen, Agent, CallID, EndCause, Stage, Rating string
}

// collect reads hotline's figures and joins its records with the phones'.
func collect(srv *hotline, fleet *agentua.Fleet, ids map[string]bool) (*results, error) {
	r := &results{records: map[string]calllog.Record{}, ratings: map[string]evaluation.Rating{}}
	var err error
	if r.metrics, err = measure.Scrape(srv.HTTP); err != nil {
		return nil, err
	}
	if err := srv.getJSON("/api/v1/stats", &r.stats); err != nil {
		return nil, err
	}
	r.convs, r.phones = fleet.Conversations(), fleet.Stats()

	// Every call's final record, and the ratings of the calls' agents,
	// eight requests at a time.
	var mu sync.Mutex
	var errs []error
	work := make(chan func() error)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for f := range work {
				if err := f(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	agentIDs := map[string]bool{}
	for id := range ids {
		work <- func() error {
			var rec calllog.Record
			if err := srv.getJSON("/api/v1/calls/"+url.PathEscape(id), &rec); err != nil {
				return err
			}
			mu.Lock()
			r.records[rec.Caller] = rec
			if rec.AgentID != "" {
				agentIDs[rec.AgentID] = true
			}
			mu.Unlock()
			return nil
		}
	}
	close(work)
	wg.Wait()
	for id := range agentIDs {
		ratings, err := client.All[evaluation.Rating](context.Background(), srv.api(), "/api/v1/ratings?limit=500&agent="+url.QueryEscape(id))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rt := range ratings {
			r.ratings[rt.CallID] = rt
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("reading hotline's records: %d errors, the first: %w", len(errs), errs[0])
	}

	for _, c := range r.convs {
		if c.EndedBy != agentua.AgentSide {
			continue
		}
		r.agentEnded++
		rec, ok := r.records[c.Citizen]
		if _, rated := r.ratings[rec.ID]; !ok || !rated {
			r.lost = append(r.lost, lostRating{Citizen: c.Citizen, Agent: c.Agent, CallID: rec.ID,
				EndCause: string(rec.EndCause), Stage: rec.Stage, Rating: rec.Rating})
			continue
		}
		heard := false
		for _, e := range rec.Events {
			if e.Kind == "prompt" && e.Prompt == string(prompts.Rating) && !e.At.Before(c.HungUp) {
				r.e2e = append(r.e2e, e.At.Sub(c.HungUp))
				r.byeRTT = append(r.byeRTT, c.Ended.Sub(c.HungUp))
				r.afterBye = append(r.afterBye, e.At.Sub(c.Ended))
				heard = true
				break
			}
		}
		if !heard {
			r.unheard = append(r.unheard, rec.ID)
		}
		if rt := r.ratings[rec.ID]; rt.Verdict != evaluation.NoRating {
			r.keyAfter = append(r.keyAfter, rt.At.Sub(c.HungUp))
		}
	}
	for _, rec := range r.records {
		if rec.AgentID != "" && rec.Rating == string(evaluation.Praise) && rec.EndCause == calllog.FlowFinished {
			r.complete++
		} else {
			r.incomplete = append(r.incomplete, lostRating{Citizen: rec.Caller, Agent: rec.AgentID, CallID: rec.ID,
				EndCause: string(rec.EndCause), Stage: rec.Stage, Rating: rec.Rating})
		}
		if rec.AnsweredAt != nil && rec.QueuedAt != nil {
			r.intake = append(r.intake, rec.QueuedAt.Sub(*rec.AnsweredAt))
		}
		if rec.QueuedAt != nil && rec.AgentAnsweredAt != nil {
			r.wait = append(r.wait, rec.AgentAnsweredAt.Sub(*rec.QueuedAt))
		}
	}
	for _, d := range [][]time.Duration{r.e2e, r.intake, r.wait, r.keyAfter, r.byeRTT, r.afterBye} {
		slices.Sort(d)
	}
	return r, nil
}

func (r *results) sippTotals() (ok, failed int) {
	for _, s := range r.sipp {
		ok += s.OK
		failed += s.Failed
	}
	return ok, failed
}

// verdicts counts the ratings read back, by verdict.
func (r *results) verdicts() map[evaluation.Verdict]int {
	n := map[evaluation.Verdict]int{}
	for _, rt := range r.ratings {
		n[rt.Verdict]++
	}
	return n
}

// agentCycle is the mean time an agent is taken by one call: from the
// offer to the end of the conversation, then wrap-up.
func (r *results) agentCycle(wrapUp time.Duration) time.Duration {
	var sum time.Duration
	n := 0
	for _, c := range r.convs {
		if c.Err == nil && !c.Ended.IsZero() {
			sum += c.Ended.Sub(c.Offered)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum/time.Duration(n) + wrapUp
}

// percentile of sorted durations (nearest rank).
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

func (r *results) report(w io.Writer, o options) {
	ok, failed := r.sippTotals()
	m := r.metrics
	v := r.verdicts()
	fmt.Fprintf(w, "calls %d offered at %.1f/s by %d sipp, %d agents (talk %s, ring %s, wrap-up %s), run %s%s\n",
		o.calls, o.rate, o.sipps, o.agents, o.talk, o.ring, o.wrapUp, r.elapsed.Round(time.Second), map[bool]string{false: " (NOT drained)", true: ""}[r.drained])
	fmt.Fprintf(w, "  sipp: successful %d, failed %d\n", ok, failed)
	fmt.Fprintf(w, "  hotline calls ended: %s\n", labelled(m, "hotline_calls_total", "cause"))
	fmt.Fprintf(w, "  offers to agents: %s\n", labelled(m, "hotline_agent_offers_total", "outcome"))
	fmt.Fprintf(w, "  phones: offered %d, answered %d, busy %d, refused %d, cancelled %d; conversations %d, ended by the agent %d\n",
		r.phones.Offers, r.phones.Answered, r.phones.Busy, r.phones.Refused, r.phones.Cancelled, len(r.convs), r.agentEnded)
	fmt.Fprintf(w, "  ratings (metrics): %s; read back: %d (praise %d, bad_review %d, none %d)\n",
		labelled(m, "hotline_ratings_total", "verdict"), len(r.ratings), v[evaluation.Praise], v[evaluation.BadReview], v[evaluation.NoRating])
	fmt.Fprintf(w, "  calls through intake, agent and a praise to the flow's end: %d of %d recorded\n", r.complete, len(r.records))
	listCalls(w, r.incomplete)
	fmt.Fprintf(w, "  LOST RATINGS: %d of %d conversations the agent ended\n", len(r.lost), r.agentEnded)
	listCalls(w, r.lost)
	if len(r.unheard) > 0 {
		fmt.Fprintf(w, "  rated with no rating question in the journal (the key came before its first frame): %d, e.g. call %s\n", len(r.unheard), r.unheard[0])
	}
	fmt.Fprintf(w, "  rating prompt delay (hotline_rating_prompt_delay_seconds, from the bridge's end): p50 %s p99 %s, n=%.0f\n",
		measure.Quantile(m, ratingDelay, 0.50, time.Millisecond), measure.Quantile(m, ratingDelay, 0.99, time.Millisecond), m[ratingDelay+"_count"])
	fmt.Fprintf(w, "  rating prompt delay (end to end, the phone's BYE to the question in the call record): p50 %s p99 %s max %s, n=%d\n",
		percentile(r.e2e, 0.50).Round(time.Millisecond), percentile(r.e2e, 0.99).Round(time.Millisecond),
		percentile(r.e2e, 1).Round(time.Millisecond), len(r.e2e))
	fmt.Fprintf(w, "    of which the BYE's round trip p50 %s p99 %s, and from its 200 to the question p50 %s p99 %s\n",
		ms(percentile(r.byeRTT, 0.5)), ms(percentile(r.byeRTT, 0.99)), ms(percentile(r.afterBye, 0.5)), ms(percentile(r.afterBye, 0.99)))
	fmt.Fprintf(w, "  from the records: intake p50 %s; wait in queue p50 %s p99 %s max %s; praise key taken after the hang-up p50 %s max %s\n",
		ms(percentile(r.intake, 0.5)), ms(percentile(r.wait, 0.5)), ms(percentile(r.wait, 0.99)), ms(percentile(r.wait, 1)),
		ms(percentile(r.keyAfter, 0.5)), ms(percentile(r.keyAfter, 1)))
	q := r.stats.Queue
	fmt.Fprintf(w, "  queue (today): queued %d, answered %d, in 15 s %d (rate %.3f of %d calls), average wait %.2f s, abandoned %d, turned away %d, offers %d, rang out %d, rejected %d\n",
		q.Queued, q.Answered, q.InTime, orZero(q.AnswerRate15s.Rate), q.AnswerRate15s.Calls, orZero(q.AverageWait.Seconds), q.Abandoned, q.TurnedAway, q.Offers, q.Unanswered, q.Rejected)
	cycle := r.agentCycle(o.wrapUp)
	bound := 0.0
	if cycle > 0 {
		bound = float64(o.agents) / cycle.Seconds()
	}
	fmt.Fprintf(w, "  agent-bound rate: %d agents / %s per call (offer to hang-up, measured, plus wrap-up) = %.1f calls/s; nominal %d / (ring+talk+wrap-up %s) = %.1f/s\n",
		o.agents, cycle.Round(time.Millisecond), bound, o.agents, o.ring+o.talk+o.wrapUp, float64(o.agents)/(o.ring+o.talk+o.wrapUp).Seconds())
	fmt.Fprintf(w, "  hotline CPU: mean %.0f%%, peak %.0f%% of the %d-core machine (while calls were up); peak calls %d\n",
		r.cpu.Mean, r.cpu.Peak, runtime.NumCPU(), r.cpu.PeakCalls)
	var sippCPU time.Duration
	for _, s := range r.sipp {
		sippCPU += s.CPU
	}
	share := func(d time.Duration) float64 {
		return 100 * d.Seconds() / r.elapsed.Seconds() / float64(runtime.NumCPU())
	}
	fmt.Fprintf(w, "  load generator CPU over the run: phones %.0f%%, sipp %.0f%% of the machine\n", share(r.phonesCPU), share(sippCPU))
	fmt.Fprintf(w, "  RTP: hotline sent %.0f frames, %.3f%% on time; phones' foreign packets %d\n",
		m["hotline_rtp_frames_sent_total"], 100*(1-m["hotline_rtp_frames_late_total"]/math.Max(m["hotline_rtp_frames_sent_total"], 1)), r.phones.RTPForeign)
	if errs := r.conversationErrors(); errs != "" {
		fmt.Fprintf(w, "  phones' conversation errors: %s\n", errs)
	}
}

func listCalls(w io.Writer, calls []lostRating) {
	for i, l := range calls {
		if i == 10 {
			fmt.Fprintf(w, "    ... and %d more\n", len(calls)-10)
			break
		}
		fmt.Fprintf(w, "    caller %s agent %q call %s: ended %s in stage %s, rating %q\n", l.Citizen, l.Agent, l.CallID, l.EndCause, l.Stage, l.Rating)
	}
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

const ratingDelay = "hotline_rating_prompt_delay_seconds"

func (r *results) conversationErrors() string {
	n := map[string]int{}
	for _, c := range r.convs {
		if c.Err != nil {
			n[c.Err.Error()]++
		}
	}
	var parts []string
	for k, v := range n {
		parts = append(parts, fmt.Sprintf("%d× %s", v, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// save writes the figures as JSON, for comparing runs.
func (r *results) save(path string, o options) error {
	ok, failed := r.sippTotals()
	v := r.verdicts()
	cycle := r.agentCycle(o.wrapUp)
	out := map[string]any{
		"rate": o.rate, "calls": o.calls, "agents": o.agents, "sipps": o.sipps,
		"talk": o.talk.String(), "ring": o.ring.String(), "wrap_up": o.wrapUp.String(),
		"sipp_successful": ok, "sipp_failed": failed, "drained": r.drained,
		"complete": r.complete, "records": len(r.records), "incomplete": r.incomplete, "unheard": r.unheard,
		"conversations": len(r.convs), "agent_ended": r.agentEnded, "lost_ratings": len(r.lost), "lost": r.lost,
		"praise": v[evaluation.Praise], "no_rating": v[evaluation.NoRating],
		"offers_answered":  r.metrics[`hotline_agent_offers_total{outcome="answered"}`],
		"rating_delay_p50": measure.Quantile(r.metrics, ratingDelay, 0.5, time.Millisecond), "rating_delay_p99": measure.Quantile(r.metrics, ratingDelay, 0.99, time.Millisecond),
		"e2e_delay_p50_ms": percentile(r.e2e, 0.5).Milliseconds(), "e2e_delay_p99_ms": percentile(r.e2e, 0.99).Milliseconds(),
		"e2e_delay_max_ms": percentile(r.e2e, 1).Milliseconds(),
		"bye_rtt_p99_ms":   percentile(r.byeRTT, 0.99).Milliseconds(), "after_bye_p99_ms": percentile(r.afterBye, 0.99).Milliseconds(),
		"answer_rate_15s": r.stats.Queue.AnswerRate15s.Rate, "average_wait_s": r.stats.Queue.AverageWait.Seconds,
		"agent_cycle_ms": cycle.Milliseconds(), "cpu_mean": r.cpu.Mean, "cpu_peak": r.cpu.Peak, "peak_calls": r.cpu.PeakCalls,
		"elapsed_s":   r.elapsed.Seconds(),
		"wait_p50_ms": percentile(r.wait, 0.5).Milliseconds(), "wait_p99_ms": percentile(r.wait, 0.99).Milliseconds(),
		"wait_max_ms": percentile(r.wait, 1).Milliseconds(), "intake_p50_ms": percentile(r.intake, 0.5).Milliseconds(),
	}
	var sippCPU time.Duration
	for _, s := range r.sipp {
		sippCPU += s.CPU
	}
	out["phones_cpu_s"], out["sipp_cpu_s"] = r.phonesCPU.Seconds(), sippCPU.Seconds()
	out["rtp_on_time_pct"] = 100 * (1 - r.metrics["hotline_rtp_frames_late_total"]/math.Max(r.metrics["hotline_rtp_frames_sent_total"], 1))
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// orZero is a figure absent for want of calls as 0, for a line of
// results.
func orZero(v *float64) float64 {
	if v == nil {
		return 0
	}
	return *v
}
