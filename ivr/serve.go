package ivr

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/prompts"
)

// CallRecorder stores call records; saving the same record again replaces it.
type CallRecorder interface {
	Save(ctx context.Context, r calllog.Record) error
}

// Outage tells the flows whether Redis answers. A call that starts
// during an outage is answered with an apology and the promise of a
// call-back (prompts.OutageCallback), and ends there; a call past intake
// waits out a short break (a Sentinel failover), and is told the same if
// it becomes an outage, rather than queued for an agent, whose states
// live in Redis. The record, kept in the journal, says Callback.
type Outage interface {
	// Outage reports whether Redis has been away too long to wait for.
	Outage() bool
	// RideOut waits while Redis is away for a short break; it reports
	// whether Redis answers.
	RideOut(ctx context.Context) bool
}

// Describer is implemented by calls that know more about themselves than the
// port says (SIP Call-ID, codec); it fills those fields of the record.
type Describer interface {
	Describe(r *calllog.Record)
}

// Metrics are the call counters every backend shares.
type Metrics struct {
	Active prometheus.Gauge
	Ended  *prometheus.CounterVec // by end cause
	Digits *prometheus.CounterVec // by DTMF method
	// Ratings counts the ratings recorded, by verdict; Offers the offers
	// to agents, by outcome (answered, no_answer, rejected, unreachable).
	Ratings *prometheus.CounterVec
	Offers  *prometheus.CounterVec
	// RatingDelay observes the time from the agent's hang-up to the
	// rating question starting to play.
	RatingDelay prometheus.Histogram
	// QueueWait observes each call's wait in the queue when it ends, by
	// how it ended (answered, abandoned, callback): its le="15" bucket of
	// answered calls is this node's numerator of the 15-second answer
	// rate.
	QueueWait *prometheus.HistogramVec
	// TurnedAway counts the calls not queued because no agent of their
	// category had a phone registered, by category.
	TurnedAway *prometheus.CounterVec
	// Probes counts the synthetic probe's calls, by end cause; they are
	// not in Ended, so that the calls counted are citizens'.
	Probes *prometheus.CounterVec
	// MOS, PacketLoss and Jitter observe each ended call's quality (its
	// record's Quality), by the trunk it came in on ("none" for none).
	// Their series of "none" exist from the start, and those of each
	// trunk once ForTrunks has named it.
	MOS, PacketLoss, Jitter *prometheus.HistogramVec
}

// noTrunk is the trunk label of a call that came in on no trunk.
const noTrunk = "none"

// mosAlert is the MOS the HotlineCallQualityLow alert of deploy/prometheus
// holds the worst tenth of a trunk's calls to. hotline_call_mos has a
// bucket bound there, so that the share of calls under it is counted, not
// interpolated between 3.5 and 3.8.
const mosAlert = 3.6

// queueWaitBuckets are the queue wait histogram's bounds in seconds,
// close around the 15 s of the answer rate.
var queueWaitBuckets = []float64{1, 2, 5, 10, 15, 20, 30, 60, 120, 300}

// NewMetrics registers the call metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hotline_calls_active", Help: "Calls in progress.",
		}),
		Ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotline_calls_total", Help: "Calls ended, by end cause.",
		}, []string{"cause"}),
		Digits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotline_dtmf_digits_total", Help: "DTMF digits received, by method.",
		}, []string{"method"}),
		Ratings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotline_ratings_total", Help: "Ratings recorded after the agent hung up, by verdict (praise, bad_review, none).",
		}, []string{"verdict"}),
		Offers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotline_agent_offers_total", Help: "Calls offered to agents, by outcome (answered, no_answer, rejected, unreachable).",
		}, []string{"outcome"}),
		RatingDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hotline_rating_prompt_delay_seconds",
			Help:    "Time from the agent's hang-up to the rating question starting to play.",
			Buckets: []float64{0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2},
		}),
		QueueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hotline_queue_wait_seconds",
			Help:    "Time from joining the queue to the end of the wait, by how it ended (answered by an agent, abandoned by the caller, callback: left asking for one); calls of this node.",
			Buckets: queueWaitBuckets,
		}, []string{"outcome"}),
		TurnedAway: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotline_calls_turned_away_total", Help: "Calls that asked for an agent when no agent taking their category had a phone registered, so were not queued, by category; calls of this node.",
		}, []string{"category"}),
		Probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotline_synthetic_calls_total", Help: "Calls of the synthetic probe (hotline probe) ended, by end cause; not in hotline_calls_total.",
		}, []string{"cause"}),
		MOS: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hotline_call_mos",
			Help:    "Estimated MOS of each ended call (ITU-T G.107's E-model on its loss, jitter and round trip), by trunk.",
			Buckets: []float64{1, 1.5, 2, 2.5, 3, 3.5, mosAlert, 3.8, 4, 4.2, 4.3, 4.4, 4.5},
		}, []string{"trunk"}),
		PacketLoss: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hotline_call_packet_loss_ratio",
			Help:    "Share of the caller's RTP packets lost on the way to hotline, per ended call, by trunk.",
			Buckets: []float64{0, 0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2},
		}, []string{"trunk"}),
		Jitter: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hotline_call_jitter_seconds",
			Help:    "Interarrival jitter of the caller's RTP (RFC 3550) at each call's end, by trunk.",
			Buckets: []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1},
		}, []string{"trunk"}),
	}
	if reg != nil {
		reg.MustRegister(m.Active, m.Ended, m.Digits, m.Ratings, m.Offers, m.RatingDelay, m.QueueWait, m.TurnedAway, m.Probes,
			m.MOS, m.PacketLoss, m.Jitter)
	}
	for _, o := range []acd.Outcome{acd.OutcomeAnswered, acd.OutcomeAbandoned, acd.OutcomeCallback} {
		m.QueueWait.WithLabelValues(string(o))
	}
	for _, c := range acd.Categories {
		m.TurnedAway.WithLabelValues(string(c))
	}
	for _, v := range []string{"praise", "bad_review", "none"} {
		m.Ratings.WithLabelValues(v)
	}
	for _, o := range []string{"answered", "no_answer", "rejected", "unreachable"} {
		m.Offers.WithLabelValues(o)
	}
	for _, c := range calllog.EndCauses {
		m.Ended.WithLabelValues(string(c))
		m.Probes.WithLabelValues(string(c))
	}
	for _, d := range []DTMFMethod{DTMFRFC4733, DTMFInfo, DTMFInband} {
		m.Digits.WithLabelValues(string(d))
	}
	m.ForTrunks(noTrunk)
	return m
}

// ForTrunks makes the quality histograms' series of the trunks named
// exist before a call on them ends: a series that first appears with a
// call's observation hides that call from rate() and increase(), and a
// trunk with no series looks like no trunk at all.
func (m *Metrics) ForTrunks(names ...string) {
	for _, n := range names {
		m.MOS.WithLabelValues(n)
		m.PacketLoss.WithLabelValues(n)
		m.Jitter.WithLabelValues(n)
	}
}

// observeQuality adds an ended call's quality to the histograms.
func (m *Metrics) observeQuality(rec calllog.Record) {
	q := rec.Quality
	if q == nil {
		return
	}
	trunk := rec.Trunk
	if trunk == "" {
		trunk = noTrunk
	}
	m.MOS.WithLabelValues(trunk).Observe(q.MOS)
	m.PacketLoss.WithLabelValues(trunk).Observe(q.LossRatio)
	m.Jitter.WithLabelValues(trunk).Observe(q.JitterMS / 1000)
}

// Runner runs a flow on each call a backend hands it, or a dialer
// places, one goroutine per call (the backend's), and keeps the call's
// record.
type Runner struct {
	Catalog *prompts.Catalog
	Records CallRecorder
	Lang    prompts.Lang // the language a call starts in
	Backend string       // "sip", "asterisk"
	Log     zerolog.Logger
	Metrics *Metrics
	// Node and Instance name the hotline node and its run in every
	// record, so that another node can end the records of calls this
	// one held when it is lost.
	Node, Instance string
}

// Serve runs flow on call to its end and keeps the call's record: saved
// when the call starts, as the flow goes (Session.Checkpoint) and at the
// end, with the end's cause. It never panics: a panic in the flow is
// recovered, logged with its stack and ends only this call.
func (r *Runner) Serve(ctx context.Context, call Call, flow Flow) {
	log := r.Log.With().Str("call_id", call.ID()).Logger()
	rec := calllog.Record{
		ID:        call.ID(),
		Backend:   r.Backend,
		Node:      r.Node,
		Instance:  r.Instance,
		Caller:    call.Caller(),
		Dialled:   call.Dialled(),
		StartedAt: time.Now(),
		Events:    []calllog.Event{},
	}
	if d, ok := call.(Describer); ok {
		d.Describe(&rec)
	}
	r.Metrics.Active.Inc()
	defer r.Metrics.Active.Dec()
	r.saveNow(ctx, log, rec)

	s := NewSession(call, r.Catalog, r.Lang)
	s.Record, s.Log = &rec, log
	s.checkpoint = func(ctx context.Context) { r.saveNow(ctx, log, rec) }
	s.OnDigit(func(d Digit) { r.Metrics.Digits.WithLabelValues(string(d.Method)).Inc() })
	log.Info().Str("caller", rec.Caller).Str("dialled", rec.Dialled).Msg("call started")

	flowErr := r.run(ctx, s, flow, log)

	// The far end may have hung up while the flow was finishing; the
	// backend's cause wins over the flow's error then.
	if err := hangup(call); err != nil {
		log.Warn().Err(err).Msg("hangup")
	}
	if d, ok := call.(Describer); ok {
		d.Describe(&rec)
	}
	end := time.Now()
	rec.EndedAt = &end
	rec.Stage = s.CurrentStage()
	rec.Lang = string(s.Lang)
	rec.Events = s.Events()
	rec.EndCause, rec.EndDetail = EndCause(call.Err(), flowErr)
	ended := r.Metrics.Ended
	if rec.Synthetic {
		ended = r.Metrics.Probes
	}
	ended.WithLabelValues(string(rec.EndCause)).Inc()
	r.Metrics.observeQuality(rec)
	ev := log.Info()
	if rec.EndCause == calllog.Error {
		ev = log.Error()
	}
	ev.Str("cause", string(rec.EndCause)).Str("stage", rec.Stage).Str("appeal_id", rec.AppealID).
		Str("detail", rec.EndDetail).Bool("synthetic", rec.Synthetic).Msg("call ended")
	r.saveFinal(log, rec)
}

// run runs the flow, turning a panic into an error and ErrFlowDone into
// success.
func (r *Runner) run(ctx context.Context, s *Session, flow Flow, log zerolog.Logger) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error().Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).Msg("flow panicked")
			err = fmt.Errorf("flow panicked: %v", p)
		}
	}()
	err = flow(ctx, s)
	if errors.Is(err, ErrFlowDone) {
		return nil
	}
	return err
}

func hangup(call Call) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return call.Hangup(ctx)
}

// EndCause maps how the call ended to the record's cause: the backend's
// cause first (the caller hung up, media stopped), then the flow's error.
func EndCause(callErr, flowErr error) (calllog.EndCause, string) {
	switch {
	case errors.Is(callErr, ErrCallerHangup), errors.Is(flowErr, ErrCallerHangup):
		return calllog.CallerHangup, ""
	case errors.Is(callErr, ErrMediaTimeout):
		return calllog.MediaTimeout, callErr.Error()
	case errors.Is(callErr, ErrNoAck):
		return calllog.NoAck, ""
	case errors.Is(callErr, ErrShutdown):
		return calllog.Shutdown, ""
	case flowErr != nil && !errors.Is(flowErr, ErrHangup):
		return calllog.Error, flowErr.Error()
	case callErr != nil && !errors.Is(callErr, ErrHangup):
		return calllog.Error, callErr.Error()
	}
	return calllog.FlowFinished, ""
}

// saveNow writes an intermediate record, best effort: the final record
// carries everything, so a failure here loses nothing.
func (r *Runner) saveNow(ctx context.Context, log zerolog.Logger, rec calllog.Record) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := r.Records.Save(ctx, rec); err != nil {
		log.Warn().Err(err).Msg("save call record")
	}
}

// saveFinal writes the final record once, within a bounded time. Nothing
// retries it here: Records (a journal.Keeper's in hotline) keeps it in the
// node's journal when Redis does not answer and replays it when Redis
// does, so a stop is never held up by a record. A record neither could
// keep is logged whole, at error level.
func (r *Runner) saveFinal(log zerolog.Logger, rec calllog.Record) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.Records.Save(ctx, rec); err != nil {
		log.Error().Err(err).Interface("record", rec).Msg("call record lost")
	}
}
