// Package asterisk runs hotline's calls on Asterisk as a Stasis application
// over ARI: every citizen's channel that enters Stasis(app) becomes an
// ivr.Call, prompts play as sound: URIs of the installed prompt files
// (hotline prompts install --asterisk-sounds), keys come from
// ChannelDtmfReceived, and agents' phones (PJSIP endpoints) are
// originated into the application and joined to the caller in a mixing
// bridge.
//
// The event and data types are github.com/CyCoreSystems/ari/v5's. Its
// native client is not used for transport: v5.3.1 gives a nil event to
// its bus (which then panics) when it meets an event type it does not
// know, reconnects every second without ever pinging (a half-open socket
// goes unnoticed), drops events when a subscription's buffer fills, and
// sends REST requests without context or timeout. Here one websocket per
// process carries the events, pinged, reconnected with backoff, and
// reconciled with GET /applications/{app} after every (re)connect, since
// Asterisk replays nothing missed while the socket was down; the
// application's event filter keeps unknown event types away, and one that
// arrives all the same is logged and dropped.
package asterisk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/CyCoreSystems/ari/v5"
	"github.com/cenkalti/backoff/v5"
	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/logging"
	"github.com/hotline12345/hotline/prompts"
)

// Handler runs one call; the call ends when it returns. ctx ends with the
// call, and context.Cause(ctx) says why.
type Handler func(ctx context.Context, call ivr.Call)

// Options configure the ARI backend.
type Options struct {
	URL         string // ARI's REST root, "http://127.0.0.1:8088/ari"
	Username    string
	Password    string
	Application string // the Stasis application, "hotline"

	ReconnectMin time.Duration // first wait before reconnecting; default 500 ms
	ReconnectMax time.Duration // longest wait; default 30 s
	PingInterval time.Duration // websocket ping period; default 10 s
	PingTimeout  time.Duration // a ping unanswered this long kills the socket; default 5 s
	// RequestTimeout bounds every REST request; default 5 s.
	RequestTimeout time.Duration
	// AgentEndpoint makes an agent's dial string from their SIP user;
	// default "PJSIP/<user>".
	AgentEndpoint func(sipUser string) string

	Catalog *prompts.Catalog
	Handler Handler
	Logger  zerolog.Logger
	// Metrics, when set, registers the connection's metrics there.
	Metrics prometheus.Registerer
}

func (o *Options) defaults() {
	if o.Application == "" {
		o.Application = "hotline"
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = 500 * time.Millisecond
	}
	if o.ReconnectMax <= 0 {
		o.ReconnectMax = 30 * time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 10 * time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 5 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	if o.AgentEndpoint == nil {
		o.AgentEndpoint = func(u string) string { return "PJSIP/" + u }
	}
}

// eventTypes are the events the application handles; the event filter
// lets only these through.
var eventTypes = []string{
	"StasisStart", "StasisEnd", "ChannelHangupRequest", "ChannelDestroyed",
	"ChannelDtmfReceived", "PlaybackStarted", "PlaybackFinished",
	"ApplicationReplaced",
	// For the RTP statistics (RTPAUDIOQOS) left as a channel hangs up: a
	// filter goes by event type only, so every channel variable set comes.
	"ChannelVarset",
}

// argAgent marks the channels hotline originates to agents' phones.
const argAgent = "agent"

// Backend is the ARI backend: one application on one Asterisk.
type Backend struct {
	opts   Options
	log    zerolog.Logger
	rest   *rest
	wsURL  string
	header http.Header

	baseCtx    context.Context // parent of every call; cancelled with ErrShutdown
	baseCancel context.CancelCauseFunc

	mu        sync.Mutex
	channels  map[string]*channel  // by Asterisk channel id
	playbacks map[string]*playItem // by playback id
	instance  instance             // the Asterisk of the last connect
	connected bool
	lastErr   error
	since     time.Time // of the current state

	flows    sync.WaitGroup // call handlers and playback runners
	draining atomic.Bool
	active   int           // citizens' calls whose handler runs; guarded by mu
	idle     chan struct{} // closed when active drops to 0, made by Drain

	metrics metrics
}

// metrics say how the connection to Asterisk fares.
type metrics struct {
	connected   prometheus.Gauge
	reconnects  prometheus.Counter
	undecodable prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hotline_ari_connected", Help: "1 while the ARI event websocket is up and reconciled, else 0.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hotline_ari_reconnects_total", Help: "Attempts to connect to ARI again after the event websocket was lost or refused.",
		}),
		undecodable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hotline_ari_events_dropped_total", Help: "ARI events dropped because they could not be decoded (an unknown type, bad JSON).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.connected, m.reconnects, m.undecodable)
	}
	return m
}

// New checks the options; Run connects.
func New(opts Options) (*Backend, error) {
	opts.defaults()
	if opts.Handler == nil || opts.Catalog == nil {
		return nil, errors.New("asterisk: Handler and Catalog are required")
	}
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("asterisk: ARI URL %q is not http(s)://host/path", opts.URL)
	}
	ws := *u
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	ws.Path = strings.TrimRight(u.Path, "/") + "/events"
	ws.RawQuery = url.Values{"app": {opts.Application}}.Encode()
	h := http.Header{}
	req := http.Request{Header: h}
	req.SetBasicAuth(opts.Username, opts.Password)
	b := &Backend{
		opts:      opts,
		log:       opts.Logger.With().Str("backend", "asterisk").Logger(),
		rest:      newREST(opts.URL, opts.Username, opts.Password, opts.RequestTimeout),
		wsURL:     ws.String(),
		header:    h,
		channels:  map[string]*channel{},
		playbacks: map[string]*playItem{},
		lastErr:   errors.New("not connected yet"),
		since:     time.Now(),
		metrics:   newMetrics(opts.Metrics),
	}
	b.baseCtx, b.baseCancel = context.WithCancelCause(context.Background())
	return b, nil
}

// Healthy is nil while the event socket is up, and otherwise says since
// when and why it is not.
func (b *Backend) Healthy() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.connected {
		return nil
	}
	return fmt.Errorf("asterisk unreachable since %s: %w", b.since.Format(time.RFC3339), b.lastErr)
}

func (b *Backend) setConnected(up bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.connected != up {
		b.since = time.Now()
	}
	b.connected = up
	if up {
		b.metrics.connected.Set(1)
	} else {
		b.metrics.connected.Set(0)
	}
	if err != nil {
		b.lastErr = err
	}
}

// ActiveCalls counts the citizens' calls in progress.
func (b *Backend) ActiveCalls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.active
}

// Channels counts the channels hotline tracks, agents' legs included.
func (b *Backend) Channels() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.channels)
}

// Run connects to ARI and keeps connected until ctx ends, reconnecting
// with backoff; then it ends every call with ivr.ErrShutdown and waits for
// their handlers.
func (b *Backend) Run(ctx context.Context) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = b.opts.ReconnectMin
	bo.MaxInterval = b.opts.ReconnectMax
	for ctx.Err() == nil {
		start := time.Now()
		err := b.session(ctx)
		b.setConnected(false, err)
		if ctx.Err() != nil {
			break
		}
		if time.Since(start) > b.opts.ReconnectMax {
			bo.Reset() // it was up a good while: start again from the shortest wait
		}
		wait := bo.NextBackOff()
		b.log.Warn().Err(err).Stringer("retry_in", wait).Msg("ari connection lost")
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		b.metrics.reconnects.Inc()
	}
	b.baseCancel(ivr.ErrShutdown)
	b.flows.Wait()
	b.rest.close()
	return nil
}

// session is one websocket connection: dial, filter, reconcile, then read
// and dispatch events until the socket fails or ctx ends.
func (b *Backend) session(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, b.opts.RequestTimeout)
	conn, res, err := websocket.Dial(dctx, b.wsURL, &websocket.DialOptions{HTTPHeader: b.header})
	cancel()
	if res != nil && res.Body != nil {
		res.Body.Close()
	}
	if err != nil {
		return fmt.Errorf("ari events: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	sctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)

	// Read from the start: events for calls arriving meanwhile queue up
	// while the application is reconciled, and a ping needs a reader.
	frames := make(chan []byte, 1024)
	readErr := make(chan error, 1)
	go func() {
		defer close(frames)
		for {
			_, data, err := conn.Read(sctx)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case frames <- data:
			case <-sctx.Done():
				readErr <- context.Cause(sctx)
				return
			}
		}
	}()
	var pinger sync.WaitGroup
	defer func() {
		stop(nil)
		pinger.Wait()
	}()
	pinger.Go(func() { b.ping(sctx, stop, conn) })

	if err := b.connectedNow(sctx); err != nil {
		stop(err)
		<-readErr
		return err
	}
	b.setConnected(true, nil)
	b.log.Info().Str("url", b.wsURL).Msg("ari connected")
	for data := range frames {
		b.dispatch(data)
	}
	err = <-readErr
	if cause := context.Cause(sctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	return fmt.Errorf("ari events: %w", err)
}

// ping sends a websocket ping every PingInterval; one unanswered within
// PingTimeout ends the session (a half-open socket reads nothing and
// fails no write for minutes otherwise).
func (b *Backend) ping(ctx context.Context, stop context.CancelCauseFunc, conn *websocket.Conn) {
	t := time.NewTicker(b.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, b.opts.PingTimeout)
		err := conn.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			stop(fmt.Errorf("no pong within %s: %w", b.opts.PingTimeout, err))
			return
		}
	}
}

// connectedNow brings the application up to date after a (re)connect:
// the event filter, Asterisk's identity (a restart loses every channel),
// and the channels in Stasis compared with those hotline tracks.
func (b *Backend) connectedNow(ctx context.Context) error {
	now, err := b.rest.instance(ctx)
	if err != nil {
		return err
	}
	if err := b.rest.setEventFilter(ctx, b.opts.Application, eventTypes); err != nil {
		// An Asterisk without event filters (before 16.3) still works;
		// unknown events are dropped on arrival.
		b.log.Warn().Err(err).Msg("ari event filter not set")
	}
	b.mu.Lock()
	// Another Asterisk, or the same one started again: either way the
	// channels hotline tracks are gone, agents' legs still ringing too,
	// whose end no event will tell.
	restarted := b.instance != (instance{}) && b.instance != now
	b.instance = now
	b.mu.Unlock()
	if restarted {
		b.log.Warn().Str("asterisk_id", now.EntityID).Str("started", now.StartupTime).Msg("asterisk restarted: its calls are gone")
		b.endAll(errAsteriskRestarted)
	}
	app, err := b.rest.application(ctx, b.opts.Application)
	if err != nil {
		return err
	}
	inStasis := map[string]bool{}
	for _, id := range app.ChannelIDs {
		inStasis[id] = true
	}
	// Tracked channels that left while the socket was down ended then.
	b.mu.Lock()
	var gone, waiting []*channel
	for id, ch := range b.channels {
		switch {
		case !inStasis[id] && !ch.originating():
			gone = append(gone, ch)
		case inStasis[id] && ch.originating():
			waiting = append(waiting, ch)
		}
	}
	b.mu.Unlock()
	for _, ch := range gone {
		b.log.Info().Str("channel", ch.id).Msg("channel left while the socket was down")
		ch.farEnd(ivr.ErrCallerHangup)
		b.forget(ch)
	}
	// Channels in Stasis that nobody handles: a citizen who arrived while
	// the socket was down (StasisStart lost) is taken now; anything else
	// (an answered call of a previous process) is hung up.
	var unknown []string
	b.mu.Lock()
	for id := range inStasis {
		if _, ok := b.channels[id]; !ok {
			unknown = append(unknown, id)
		}
	}
	b.mu.Unlock()
	// Playbacks that finished while the socket was down sent their
	// PlaybackFinished to nobody; the flows waiting on them go on.
	b.mu.Lock()
	playing := slices.Collect(maps.Values(b.playbacks))
	b.mu.Unlock()
	for _, it := range playing {
		err := b.rest.do(ctx, http.MethodGet, "/playbacks/"+url.PathEscape(it.id), nil, nil, nil)
		if errors.Is(err, ErrNotFound) {
			it.finished("done")
		}
	}
	if len(unknown) == 0 && len(waiting) == 0 {
		return nil
	}
	list, err := b.rest.channels(ctx)
	if err != nil {
		return err
	}
	byID := map[string]channelInfo{}
	for _, c := range list {
		byID[c.ID] = c
	}
	for _, ch := range waiting {
		if c, ok := byID[ch.id]; ok && c.State == "Up" {
			ch.answeredNow()
		}
	}
	for _, id := range unknown {
		c, ok := byID[id]
		if ok && c.State == "Ring" && !strings.HasPrefix(c.Name, "Local/") {
			b.log.Info().Str("channel", id).Msg("taking a call already in Stasis")
			b.inbound(c.ChannelData, c.ProtocolID)
			continue
		}
		b.log.Warn().Str("channel", id).Msg("hanging up a channel in Stasis that no flow handles")
		if err := b.rest.hangup(ctx, id, "normal"); err != nil {
			b.log.Warn().Err(err).Str("channel", id).Msg("hangup of an orphaned channel")
		}
	}
	return nil
}

var errAsteriskRestarted = fmt.Errorf("%w: asterisk restarted", ivr.ErrCallerHangup)

// endAll ends every tracked channel with cause.
func (b *Backend) endAll(cause error) {
	b.mu.Lock()
	all := slices.Collect(maps.Values(b.channels))
	b.mu.Unlock()
	for _, ch := range all {
		ch.farEnd(cause)
		b.forget(ch)
	}
}

// dispatch decodes one event and hands it to the channel or playback it
// is about. It never blocks on a flow.
func (b *Backend) dispatch(data []byte) {
	e, err := ari.DecodeEvent(data)
	if err != nil || e == nil {
		b.metrics.undecodable.Inc()
		b.log.Warn().Err(err).Bytes("event", truncate(data, 200)).Msg("ari event not understood; dropped")
		return
	}
	switch e := e.(type) {
	case *ari.StasisStart:
		if ch := b.lookup(e.Channel.ID); ch != nil {
			// An agent's phone answered; a citizen's call taken when
			// the application was reconciled needs nothing more.
			if ch.agent {
				ch.answeredNow()
			}
			return
		}
		if len(e.Args) > 0 {
			// Not a citizen's call, and not a channel of ours: an
			// originate of a previous process answered late.
			b.log.Warn().Str("channel", e.Channel.ID).Strs("args", e.Args).Msg("unknown channel entered the application; hanging up")
			b.flows.Go(func() { _ = b.rest.hangup(b.baseCtx, e.Channel.ID, "normal") })
			return
		}
		b.inbound(e.Channel, protocolID(data))
	case *ari.ChannelDtmfReceived:
		if ch := b.lookup(e.Channel.ID); ch != nil && e.Digit != "" {
			ch.digit(rune(e.Digit[0]))
		}
	case *ari.ChannelHangupRequest:
		if ch := b.lookup(e.Channel.ID); ch != nil {
			ch.hangupRequested(int(e.Cause))
		}
	case *ari.ChannelVarset:
		if e.Variable != rtpStatsVar {
			return
		}
		if ch := b.lookup(e.Channel.ID); ch != nil {
			ch.setRTPStats(e.Value)
		}
	case *ari.StasisEnd:
		if ch := b.lookup(e.Channel.ID); ch != nil {
			ch.farEnd(ivr.ErrCallerHangup)
			ch.leftApp()
			if !ch.agent {
				// Channels from the dialplan get no ChannelDestroyed: the
				// subscription ends here.
				b.forget(ch)
			}
		}
	case *ari.ChannelDestroyed:
		if ch := b.lookup(e.Channel.ID); ch != nil {
			ch.destroyed(int(e.Cause))
			b.forget(ch)
		}
	case *ari.PlaybackStarted:
		if it := b.playItem(e.Playback.ID); it != nil {
			it.started()
		}
	case *ari.PlaybackFinished:
		if it := b.playItem(e.Playback.ID); it != nil {
			it.finishedEvent(e.Playback.State)
		}
	case *ari.ApplicationReplaced:
		// Another process registered the same application: events now go
		// there. Two nodes must not share an application name.
		b.log.Error().Str("application", b.opts.Application).Msg("ari application taken over by another connection")
	}
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func (b *Backend) lookup(id string) *channel {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.channels[id]
}

func (b *Backend) playItem(id string) *playItem {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.playbacks[id]
}

func (b *Backend) forget(ch *channel) {
	ch.leftApp()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.channels[ch.id] == ch {
		delete(b.channels, ch.id)
	}
}

// protocolID is the SIP Call-ID of an event's channel, which the library's
// ChannelData leaves out: it ties hotline's record to Asterisk's and the
// carrier's logs.
func protocolID(event []byte) string {
	var e struct {
		Channel struct {
			ProtocolID string `json:"protocol_id"`
		} `json:"channel"`
	}
	_ = json.Unmarshal(event, &e)
	return e.Channel.ProtocolID
}

// inbound starts the flow for a citizen's channel that entered Stasis.
func (b *Backend) inbound(c ari.ChannelData, sipCallID string) {
	ch := b.newChannel(c.ID, false)
	ch.sipCallID = sipCallID
	if c.Caller != nil {
		ch.caller = c.Caller.Number
	}
	if c.Dialplan != nil {
		ch.dialled = c.Dialplan.Exten
	}
	if b.draining.Load() {
		// A node that drains takes no new call: congestion sends the
		// trunk's caller elsewhere (SIP 503), as the embedded backend
		// does.
		b.log.Info().Str("channel", c.ID).Msg("draining: new call refused")
		b.flows.Go(func() { _ = b.rest.hangup(b.baseCtx, c.ID, "congestion") })
		return
	}
	b.mu.Lock()
	if _, dup := b.channels[c.ID]; dup {
		b.mu.Unlock()
		return
	}
	b.channels[c.ID] = ch
	b.active++
	b.mu.Unlock()
	b.flows.Go(func() {
		defer b.endFlow(ch)
		b.opts.Handler(ch.ctx, ch)
	})
}

// Drain stops taking new calls and waits for the calls in progress to
// end, or for ctx to be done.
func (b *Backend) Drain(ctx context.Context) error {
	b.draining.Store(true)
	b.mu.Lock()
	if b.active == 0 {
		b.mu.Unlock()
		return nil
	}
	if b.idle == nil {
		b.idle = make(chan struct{})
	}
	idle := b.idle
	b.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// endFlow ends a call whose handler returned: a handler that did not hang
// up leaves the caller owed one.
func (b *Backend) endFlow(ch *channel) {
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.RequestTimeout)
	defer cancel()
	if err := ch.Hangup(ctx); err != nil {
		ch.log.Warn().Err(err).Msg("hangup after the handler returned")
		if unanswered(err) {
			// The channel may still be up, the caller on it with nobody
			// to talk to: asked again until Asterisk answers.
			b.flows.Go(func() { b.hangUpLater(ch) })
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.active--
	if b.active == 0 && b.idle != nil {
		close(b.idle)
		b.idle = nil
	}
}

// hangUpLater hangs up a channel whose hang-up Asterisk did not answer,
// with backoff, until it does or the backend stops.
func (b *Backend) hangUpLater(ch *channel) {
	wait := b.opts.ReconnectMin
	for {
		select {
		case <-b.baseCtx.Done():
			return
		case <-time.After(wait):
		}
		wait = b.nextRetry(wait)
		ctx, cancel := context.WithTimeout(b.baseCtx, b.opts.RequestTimeout)
		err := b.rest.hangup(ctx, ch.id, "normal")
		cancel()
		if !unanswered(err) {
			if err != nil {
				ch.log.Warn().Err(err).Msg("hangup")
			}
			return
		}
	}
}

func (b *Backend) newChannel(id string, agent bool) *channel {
	ctx, cancel := context.WithCancelCause(b.baseCtx)
	ch := &channel{
		b: b, id: id, agent: agent, callID: uuid.Must(uuid.NewV7()).String(),
		ctx: ctx, cancel: cancel,
		digits:   make(chan ivr.Digit, 32),
		answered: make(chan struct{}),
		left:     make(chan struct{}),
	}
	if agent {
		ch.callID = id
	}
	ch.log = logging.WithCall(b.log, ch.callID).With().Str("channel", id).Logger()
	return ch
}
