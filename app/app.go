// Package app wires hotline together: configuration in, a running server
// out. main only parses flags and calls Run, so tests start the whole daemon
// in-process.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/audit"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/live"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/prompts"
	"github.com/hotline12345/hotline/sip"
	"github.com/hotline12345/hotline/storage"
	"github.com/hotline12345/hotline/trunk"
	"github.com/hotline12345/hotline/web"
)

// Why Run stops, as the cause of its context.
var (
	// ErrDrain stops taking calls and lets the calls in progress finish,
	// up to the shutdown grace (SIGTERM).
	ErrDrain = errors.New("draining")
	// ErrInterrupt ends every call at once (SIGINT).
	ErrInterrupt = errors.New("interrupted")
)

// Addrs are the addresses a running hotline listens on.
type Addrs struct {
	SIP netip.AddrPort
	// SIPTLS is where SIP over TLS is received; zero without
	// sip.tls_listen.
	SIPTLS netip.AddrPort
	// HTTP is served over TLS when http.tls_cert is set.
	HTTP net.Addr
}

// Options start hotline.
type Options struct {
	Config config.Config
	Logger zerolog.Logger
	// Ready, when set, is called once hotline serves.
	Ready func(Addrs)
	// Interrupt, when closed, cuts a drain short: the calls left end at once.
	Interrupt <-chan struct{}
	// Reload, at each receive, reads the certificates' files again (main
	// sends on SIGHUP); a bad new pair leaves the old one in service.
	Reload <-chan struct{}
	// Records, when set, wraps the call-record store (tests watch it).
	Records func(ivr.CallRecorder) ivr.CallRecorder
	// Appeals, when set, wraps the appeal recorder of intake (tests hold
	// calls at the appeal step).
	Appeals func(ivr.AppealRecorder) ivr.AppealRecorder
	// Notice is where the first start tells the operator the first admin
	// token, once; main gives stderr. Nil shows it nowhere.
	Notice io.Writer
	// Now, when set, is the clock of the appeals, their deadlines, the
	// return visits and the API's "today" (tests move it). Nil means
	// time.Now.
	Now func() time.Time
}

// FirstAdminTTL is how long the token the first start prints lasts.
const FirstAdminTTL = 30 * 24 * time.Hour

// Run runs hotline until ctx is done. A context cancelled with ErrDrain as
// its cause drains calls first; any other cause ends them at once.
func Run(ctx context.Context, opts Options) error {
	cfg, log := opts.Config, opts.Logger
	if err := cfg.Validate(); err != nil {
		return err
	}
	catalog, err := prompts.Default()
	if err != nil {
		return fmt.Errorf("prompts: %w", err)
	}
	lang, err := prompts.ParseLang(cfg.IVR.Language)
	if err != nil {
		return err
	}

	// main has found the state directory (Config.StateDir); a Config made
	// in code names its own or none.
	if dir := cfg.StateDir(nil); dir != "" {
		log.Info().Str("dir", dir).Msg("state directory")
	}
	store, err := storage.Open(ctx, storage.Options{
		URL: cfg.Redis.URL, DataDir: cfg.RedisDataDir(nil), RedisServerPath: cfg.Redis.ServerPath, Logger: log,
	})
	if errors.Is(err, storage.ErrNoDataDir) {
		return fmt.Errorf("%w: set storage.dir (there is no $STATE_DIRECTORY, $XDG_STATE_HOME or $HOME to keep state under)", err)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	log.Info().Str("mode", string(store.Mode)).Msg("redis")
	// Nothing works without Redis, and a node that exits while Redis is
	// away only comes back if something restarts it: wait for it, saying
	// so, until it answers or hotline is stopped.
	if err := store.WaitReady(ctx); err != nil {
		if ctx.Err() != nil {
			log.Info().Err(err).Msg("stopped while waiting for redis")
			return nil
		}
		return err
	}
	appeals := appeal.NewStore(store.Client, appeal.StoreOptions{Location: cfg.Location(), Urge: urgeRules(cfg), Now: opts.Now})
	if err := appeals.SeedOrganizers(ctx, organizersOf(cfg)); err != nil {
		return fmt.Errorf("organizers: %w", err)
	}
	calls := calllog.NewStore(store.Client, calllog.StoreOptions{Retention: time.Duration(cfg.Calls.Retention)})
	ratings := evaluation.NewStore(store.Client, evaluation.StoreOptions{
		Location: cfg.Location(), ComplaintLimitPer10000: cfg.Evaluation.ComplaintLimitPer10000,
		Retention: time.Duration(cfg.Evaluation.Retention), ReviewSLA: time.Duration(cfg.Evaluation.ReviewSLA),
	})

	reg := prometheus.NewRegistry()
	keeper, closeJournal, err := openJournal(cfg, appeals, calls, ratings, store.Ping, reg, log)
	if err != nil {
		return err
	}
	defer closeJournal()
	var records ivr.CallRecorder = keeper.Calls()
	if opts.Records != nil {
		records = opts.Records(records)
	}

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pacerStats := newPacerStats(reg)
	pacer := media.NewPacer(0, pacerStats)
	if prio := cfg.SIP.RTPPriority; prio > 0 {
		if err := media.CheckRealtime(prio); err != nil {
			log.Warn().Err(err).Msg("RTP is sent at ordinary priority and may leave late on a busy machine; run with CAP_SYS_NICE or an RLIMIT_RTPRIO, or set sip.rtp_priority to 0")
		} else {
			pacer.Realtime = prio
		}
	}
	defer background(ctx, pacer.Run)()

	agents, err := newAgents(ctx, cfg, store.Client, log)
	if err != nil {
		return err
	}
	// Consoles on every node hear what changed: a call, an agent's state,
	// the queue, a decision.
	feed := live.New(store.Client, live.Options{Logger: log})
	defer background(ctx, func(ctx context.Context) { _ = feed.Run(ctx) })()
	agents.dist.Changed = func(what ...string) {
		for _, t := range what {
			feed.Publish(t)
		}
	}
	auditLog := audit.New(store.Client, audit.Options{Retention: time.Duration(cfg.Audit.Retention), MaxEntries: int64(cfg.Audit.MaxEntries), Now: opts.Now})
	accounts := auth.NewStore(store.Client, auth.StoreOptions{})
	if err := firstAdmin(ctx, accounts, opts.Notice, log); err != nil {
		return err
	}
	reg.MustRegister(acd.NewCollector(agents.store), agents.bans)
	metrics := ivr.NewMetrics(reg)
	for _, t := range cfg.Trunks {
		metrics.ForTrunks(t.Name)
	}

	// The node's lease before any call: a successor gives back what its
	// previous run left before it takes calls of its own.
	lease, err := joinCluster(ctx, cfg, agents.store, calls, metrics.Ended, log)
	if err != nil {
		return err
	}
	// stopBy, once a drain begins, is when Run must have returned: the
	// drain's start and the grace.
	var stopBy time.Time
	defer func() { leaveCluster(lease, calls, keeper, stopBy, log) }()
	agents.dist.Instance = lease.Instance()
	leaseCtx, stopLease := context.WithCancel(context.WithoutCancel(ctx))
	leaseDone := make(chan struct{})
	// Run fails only when the other nodes took the lease and gave back
	// what this one held: it must stop, at once.
	leaseLost := make(chan error, 1)
	go func() {
		defer close(leaseDone)
		if err := lease.Run(leaseCtx); err != nil {
			leaseLost <- err
		}
	}()
	defer func() {
		stopLease()
		<-leaseDone
	}()

	alarm, stopAlarm := runAlarm(cfg, ratings, lease, feed, reg, log)
	stopClocks := runClocks(cfg, appeals, lease, opts.Now, reg, log)
	defer stopClocks()
	defer background(ctx, func(ctx context.Context) {
		purgeAppeals(ctx, appeals, time.Duration(cfg.Calls.Retention), time.Duration(cfg.Appeals.Retention), opts.Now, time.Hour, log)
	})()
	visits, err := newVisits(cfg, store.Client, appeals, opts.Now, feed, reg, log)
	if err != nil {
		return err
	}
	stopVisits := runVisits(visits, appeals, lease, reg, log)
	defer stopVisits()
	defer stopAlarm()

	agentsCtx, stopAgents := context.WithCancel(context.WithoutCancel(ctx))
	waitAgents := agents.run(agentsCtx, log)
	defer func() {
		stopAgents()
		waitAgents()
	}()

	// The journal is replayed, and numbers reserved, until the calls
	// have ended and their records are written (deferred in that order).
	defer background(ctx, keeper.Run)()

	var appealRecorder ivr.AppealRecorder = keeper.Appeals()
	if opts.Appeals != nil {
		appealRecorder = opts.Appeals(appealRecorder)
	}
	runner := &ivr.Runner{
		Catalog:  catalog,
		Records:  records,
		Lang:     lang,
		Backend:  cfg.Backend,
		Log:      log,
		Metrics:  metrics,
		Node:     lease.Name(),
		Instance: lease.Instance(),
	}
	intake := &ivr.Intake{Appeals: appealRecorder, Options: ivr.IntakeOptions{
		FirstDigitTimeout: time.Duration(cfg.IVR.FirstDigitTimeout),
		Tries:             cfg.IVR.Tries,
	}}
	// A citizen's call: intake, then an agent and the rating. The
	// service needs the backend (it rings agents through it), the
	// backend the flow its calls run: the flow is set before the backend
	// runs.
	//
	// The synthetic probe's call runs intake alone: never queued, never
	// rated, in no figure.
	var citizen ivr.Flow
	probes := ivr.Probes{Callers: cfg.Probe.Callers}
	probe := ivr.TakeProbe(intake, keeper)
	incoming := func(ctx context.Context, call ivr.Call) {
		flow := citizen
		if probes.Is(call) {
			flow = probe
		}
		countCall(lease, 1, log)
		feed.Publish(live.Calls)
		runner.Serve(ctx, call, flow)
		countCall(lease, -1, log)
		// The call may have left a rating, and a complaint to review.
		feed.Publish(live.Calls)
		feed.Publish(live.Complaints)
		feed.Publish(live.Line)
	}
	certs, err := loadCertificates(cfg, log)
	if err != nil {
		return err
	}
	if opts.Reload != nil {
		defer background(ctx, func(ctx context.Context) { certs.reloadOn(ctx, opts.Reload, log) })()
	}
	tel, err := newBackend(cfg, catalog, pacer, incoming, agents, certs, reg, log)
	if err != nil {
		return err
	}
	trunks, unregisterTrunks, stopTrunks := runTrunks(cfg, store.Client, tel, lease, feed, reg, log)
	defer stopTrunks()
	if s, ok := tel.telephony.(*sip.Server); ok && len(cfg.Trunks) > 0 {
		s.SetSeize(seizeIncoming(trunks, log))
	}
	// Each kind of destination has its dialer; a new kind of endpoint
	// is one more entry.
	// Numbers go out through the trunks, the first healthy one with a
	// free channel, failing over.
	dialers := ivr.Dialers{"agent": tel, "number": &trunk.Dialer{Trunks: trunks, Backend: tel}}
	service := &ivr.Service{Queue: agents.dist, Dialer: dialers, Bridger: tel, Ratings: keeper.Ratings(), Served: keeper.Ratings(), Options: serviceOptions(cfg), Metrics: runner.Metrics,
		// A call-back asked for in the queue is work in the visits' worklist.
		CallBacks: ivr.CallBackFunc(func(ctx context.Context, req ivr.CallBackRequest) error {
			_, err := visits.QueueCallback(ctx, req.CallID, req.AppealID, req.Category)
			return err
		})}
	citizen = ivr.TakeToAgent(intake, service, keeper)
	// A return-visit agent's call: the agent's phone first, then the
	// citizen's through a trunk.
	visitCaller := newVisitCalls(&ivr.AgentFirst{Dialer: dialers, Bridger: tel,
		AgentRing: time.Duration(cfg.ACD.RingTimeout), CitizenRing: time.Duration(cfg.Callback.RingTimeout)},
		agents.store, agents.dist, visits, log)

	// draining is set once a drain begins: /healthz answers 503 so that
	// balancers stop sending calls.
	var draining atomic.Bool
	httpLn, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", cfg.HTTP.Listen, err)
	}
	if !loopback(cfg.HTTP.Listen) && certs.http == nil {
		log.Warn().Str("addr", cfg.HTTP.Listen).Msg("HTTP is served without TLS on a non-loopback address: passwords, tokens and the console's sessions cross the network in clear; set http.tls_cert and http.tls_key")
	}
	if !loopback(cfg.HTTP.Listen) && cfg.HTTP.MetricsToken == "" {
		log.Warn().Str("addr", cfg.HTTP.Listen).Msg("/metrics and /healthz are open to anyone who reaches this address: set http.metrics_token")
	}
	checks := append([]web.Check{
		{Name: "redis", Check: keeper.RedisCheck, Degraded: outageMode},
		{Name: "journal", Check: keeper.Check},
	}, tel.checks...)
	defer background(ctx, func(ctx context.Context) { reportHealth(ctx, lease, checks, log) })()
	// The live streams end when the server shuts down, which would
	// otherwise wait for them.
	closing := make(chan struct{})
	httpSrv := &http.Server{
		Handler: web.NewHandler(web.Options{
			Calls: calls, Appeals: appeals, Gatherer: reg, Logger: log,
			Agents: agents.store, Distribution: agents.dist, Ratings: reviewsThroughJournal{ratings, keeper.Ratings()}, Location: cfg.Location(), Now: opts.Now,
			Accounts: accounts, Bans: agents.bans, Trunks: trunks, Visits: visits, VisitCalls: visitCaller,
			VisitOnFeedback: cfg.Callback.OnFeedback, PartlySolvedCounts: cfg.Callback.PartlySolvedCounts,
			MetricsToken: cfg.HTTP.MetricsToken, TrustedProxies: cfg.TrustedProxies(), LoginTTL: time.Duration(cfg.HTTP.LoginTTL),
			SessionTTL: time.Duration(cfg.HTTP.SessionTTL), SessionIdle: time.Duration(cfg.HTTP.SessionIdle),
			Audit: auditLog, Live: feed, Closing: closing, Nodes: agents.store,
			Checks:   checks,
			Draining: draining.Load,
			// A decision is measured against the line before the API
			// answers it: its alert event is there when the reviewer
			// looks.
			LineChanged: func(ctx context.Context) {
				if _, err := alarm.Check(ctx); err != nil {
					log.Warn().Err(err).Msg("complaint line: looking at the windows after a review")
				}
			},
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	httpSrv.RegisterOnShutdown(func() { close(closing) })
	httpDone := make(chan error, 1)
	if certs.http != nil {
		httpSrv.TLSConfig = certs.http.ServerConfig()
		go func() { httpDone <- httpSrv.ServeTLS(httpLn, "", "") }()
	} else {
		go func() { httpDone <- httpSrv.Serve(httpLn) }()
	}
	log.Info().Str("addr", httpLn.Addr().String()).Bool("tls", certs.http != nil).Msg("http listening")

	telCtx, stopTel := context.WithCancel(context.WithoutCancel(ctx))
	defer stopTel()
	telDone := make(chan error, 1)
	go func() { telDone <- tel.Run(telCtx) }()
	if tel.extra != nil {
		extraDone := make(chan struct{})
		go func() {
			defer close(extraDone)
			tel.extra(telCtx)
		}()
		defer func() {
			stopTel()
			<-extraDone
		}()
	}

	// The automated return visits take visits until the node stops;
	// their calls end with the telephony's.
	takeCtx, stopTaking := context.WithCancel(context.WithoutCancel(ctx))
	defer stopTaking()
	autoDone := make(chan struct{})
	go func() {
		defer close(autoDone)
		if cfg.Callback.IVRCalls > 0 {
			(&autoVisits{visits: visits, appeals: appeals, dialer: dialers, runner: runner,
				flow:    &ivr.Visit{Options: ivr.VisitOptions{Timeout: time.Duration(cfg.IVR.FirstDigitTimeout), Tries: cfg.IVR.Tries, Zone: cfg.Location()}},
				callers: cfg.Callback.IVRCalls, name: lease.Instance(), ring: time.Duration(cfg.Callback.RingTimeout), lease: time.Duration(cfg.Callback.Lease), poll: 2 * time.Second,
				log: log}).run(takeCtx, telCtx)
		}
	}()

	if opts.Ready != nil {
		opts.Ready(Addrs{SIP: tel.sipAddr, SIPTLS: tel.sipTLSAddr, HTTP: httpLn.Addr()})
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-telDone:
		telDone <- runErr
	case runErr = <-httpDone:
		httpDone <- runErr
	case runErr = <-leaseLost:
		log.Error().Err(runErr).Msg("this node's lease was taken: another node has ended its calls and freed its agents; stopping")
	}
	stopTaking()
	if errors.Is(context.Cause(ctx), ErrDrain) {
		draining.Store(true)
		grace := time.Duration(cfg.Shutdown.Grace)
		stopBy = time.Now().Add(grace)
		log.Info().Int("calls", tel.ActiveCalls()).Stringer("grace", grace).Msg("draining")
		// The calls left at the end are hung up, and their records
		// written, within the grace too.
		drainCtx, cancel := context.WithDeadline(context.Background(), stopBy.Add(-stopReserve(grace)))
		go func() {
			select {
			case <-opts.Interrupt:
				cancel()
			case <-drainCtx.Done():
			}
		}()
		if err := tel.Drain(drainCtx); err != nil {
			log.Warn().Int("calls", tel.ActiveCalls()).Msg("grace over: ending the calls left")
		}
		cancel()
	}
	// Registrations with carriers are removed while SIP still runs.
	unregisterTrunks()
	stopTel()
	<-autoDone
	if err := <-telDone; err != nil && runErr == nil {
		runErr = err
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if !stopBy.IsZero() {
		shutCtx, cancel = context.WithDeadline(context.Background(), earliest(stopBy, time.Now().Add(5*time.Second)))
	}
	defer cancel()
	_ = httpSrv.Shutdown(shutCtx)
	if err := <-httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) && runErr == nil {
		runErr = err
	}
	log.Info().Msg("stopped")
	return runErr
}

// stopReserve is the part of a drain's grace kept for what follows the
// drain: hanging up the calls left, writing their records, leaving the
// cluster.
func stopReserve(grace time.Duration) time.Duration { return min(grace/4, 5*time.Second) }

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// firstAdmin makes the first admin on a hotline's first start, on
// whichever node gets there first, and tells the operator its token: the
// zero-configuration start needs no other step to reach the API.
func firstAdmin(ctx context.Context, accounts *auth.Store, notice io.Writer, log zerolog.Logger) error {
	secret, created, err := accounts.Bootstrap(ctx, FirstAdminTTL)
	if err != nil {
		return fmt.Errorf("first admin: %w", err)
	}
	if !created {
		return nil
	}
	log.Warn().Msg("first start: created the account admin and printed its token once")
	if notice == nil {
		return nil
	}
	_, err = fmt.Fprintf(notice, `
First start: the account "admin" was created, with this token, valid for %d days.
It is shown only now:

    export HOTLINE_TOKEN=%s

Then, from this host: hotline whoami; hotline users passwd admin (to log in with
hotline login --user admin); hotline tokens create --role ROLE for others.
A lost token: "hotline tokens create --role admin" on this host makes another.

`, int(FirstAdminTTL.Hours()/24), secret)
	return err
}

// loopback reports whether addr (host:port) is reached from this host
// alone.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return host == "localhost" || err == nil && ip.IsLoopback()
}

func newSIP(cfg config.Config, catalog *prompts.Catalog, pacer *media.Pacer, incoming func(context.Context, ivr.Call), registrar *sip.Registrar, certs *certificates, log zerolog.Logger) (*sip.Server, error) {
	var codecs []media.Codec
	for _, name := range cfg.SIP.Codecs {
		c, err := media.CodecByName(name)
		if err != nil {
			return nil, err
		}
		codecs = append(codecs, c)
	}
	ports, err := media.ParsePortRange(cfg.SIP.RTPPorts)
	if err != nil {
		return nil, err
	}
	var external netip.Addr
	if cfg.SIP.ExternalIP != "" {
		if external, err = netip.ParseAddr(cfg.SIP.ExternalIP); err != nil {
			return nil, fmt.Errorf("sip.external_ip: %w", err)
		}
	}
	if !loopback(cfg.SIP.Listen) && cfg.SIP.TLSListen == "" {
		log.Warn().Str("addr", cfg.SIP.Listen).Msg("SIP is received without TLS on a non-loopback address: phones' registrations and calls' signalling cross the network in clear; set sip.tls_listen (with sip.tls_cert and sip.tls_key, or http's)")
	}
	var tlsCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	if certs.sip != nil {
		tlsCert = certs.sip.GetCertificate
	}
	if !cfg.SIP.AllowUnknownSources && len(cfg.Trunks) == 0 {
		log.Warn().Msg("sip.allow_unknown_sources is off and no trunk is configured: only agents' registered phones can call the hotline; list the carriers under trunks, with their sources")
	}
	return sip.New(sip.Options{
		Listen:         cfg.SIP.Listen,
		Transports:     cfg.SIP.Transports,
		TLSListen:      cfg.SIP.TLSListen,
		TLSCertificate: tlsCert,
		ExternalIP:     external,
		RTPPorts:       ports,
		MediaTimeout:   time.Duration(cfg.SIP.MediaTimeout),
		RingTime:       time.Duration(cfg.SIP.RingTime),
		MaxCalls:       cfg.SIP.MaxCalls,
		Codecs:         codecs,
		Catalog:        catalog,
		Pacer:          pacer,
		Handler:        incoming,
		Logger:         log,
		Registrar:      registrar,
		Locator:        registrar,

		Numbers:                cfg.SIP.Numbers,
		Trunks:                 sipTrunks(cfg.Trunks),
		RefuseUnknownSources:   !cfg.SIP.AllowUnknownSources,
		ProbeSecret:            cfg.Probe.Secret,
		Limits:                 sipLimits(cfg.SIP.Limits),
		TCPIdleTimeout:         time.Duration(cfg.SIP.TCP.IdleTimeout),
		TCPFirstRequestTimeout: time.Duration(cfg.SIP.TCP.FirstRequestTimeout),
		TCPMaxPerSource:        cfg.SIP.TCP.MaxPerSource,
	})
}

// sipLimits is sip.limits as the SIP server takes them.
func sipLimits(l config.SIPLimits) sip.Limits {
	return sip.Limits{
		Calls:        sip.Rate{PerMinute: l.CallsPerMinute, Burst: l.Burst},
		MaxCalls:     l.MaxCalls,
		Trusted:      l.TrustedNetworks(),
		TrustedCalls: sip.Rate{PerMinute: l.TrustedCallsPerMinute, Burst: l.TrustedBurst},
		AgentCalls:   sip.Rate{PerMinute: l.AgentCallsPerMinute, Burst: l.AgentBurst},
		Sources:      l.Sources,
	}
}

// sipTrunks are the trunks as the SIP server's admission takes them.
func sipTrunks(trunks []config.Trunk) []sip.Trunk {
	out := make([]sip.Trunk, len(trunks))
	for i, t := range trunks {
		out[i] = sip.Trunk{Name: t.Name, Sources: t.SourceNetworks(), Host: t.Host, Numbers: t.Numbers}
	}
	return out
}

// registerAdmission counts the INVITEs the SIP server's admission turned
// away, by why.
func registerAdmission(reg prometheus.Registerer, s *sip.Server) {
	const name, help = "hotline_sip_invites_dropped_total", "New calls' INVITEs dropped unanswered by admission, by reason: over_rate (their source's, by source kind) or untrusted_max_calls."
	for _, kind := range []string{"untrusted", "agent", "trusted"} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: name, Help: help, ConstLabels: prometheus.Labels{"reason": "over_rate", "source": kind},
		}, func() float64 { return float64(s.Admission().OverRate[kind]) }))
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: name, Help: help, ConstLabels: prometheus.Labels{"reason": "untrusted_max_calls", "source": "untrusted"},
	}, func() float64 { return float64(s.Admission().UntrustedCalls) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "hotline_sip_invites_refused_total",
		Help:        "New calls' INVITEs refused by admission with an answer, by reason: unknown_source (403: no trunk's source and no registered phone's, with sip.allow_unknown_sources off).",
		ConstLabels: prometheus.Labels{"reason": "unknown_source"},
	}, func() float64 { return float64(s.Admission().UnknownSource) }))
}

func newPacerStats(reg prometheus.Registerer) *media.PacerStats {
	lateness := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hotline_rtp_send_lateness_seconds",
		Help:    "How long after its scheduled 20 ms tick each RTP frame was sent.",
		Buckets: []float64{0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05},
	})
	deviation := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hotline_rtp_send_spacing_deviation_seconds",
		Help:    "How far each interval between a stream's RTP frames was from what their timestamps say.",
		Buckets: []float64{0.00005, 0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01},
	})
	jitter := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hotline_rtp_send_jitter_seconds",
		Help:    "Each stream's RFC 3550 jitter estimate on its send times, sampled at every frame.",
		Buckets: []float64{0.00005, 0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01},
	})
	wake := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hotline_rtp_pacer_wake_delay_seconds",
		Help:    "How late each pacer shard woke up for its 20 ms tick.",
		Buckets: []float64{0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05},
	})
	busy := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hotline_rtp_pacer_tick_seconds",
		Help:    "How long each pacer shard took to send its frames for one tick.",
		Buckets: []float64{0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05},
	})
	st := &media.PacerStats{Lateness: lateness, Deviation: deviation, Jitter: jitter, Wake: wake, Busy: busy}
	frames := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "hotline_rtp_frames_sent_total", Help: "RTP frames sent.",
	}, func() float64 { return float64(st.Frames.Load()) })
	late := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "hotline_rtp_frames_late_total", Help: "RTP frames sent more than 10 ms after their tick.",
	}, func() float64 { return float64(st.Late.Load()) })
	reg.MustRegister(lateness, deviation, jitter, wake, busy, frames, late)
	return st
}

// background runs f on a context of its own, which ctx's end does not
// cancel (stopping Run drains calls first; the parts they need go on
// meanwhile), and returns what cancels it and waits for f to return:
// deferred, the parts stop in the reverse order of their start.
func background(ctx context.Context, f func(context.Context)) (stop func()) {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(bctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// countCall tells the other nodes how many calls this one runs.
func countCall(lease *acd.NodeLease, delta int, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := lease.CallsChanged(ctx, delta); err != nil {
		log.Debug().Err(err).Msg("node: the calls in progress not counted")
	}
}

// reportHealth runs the node's checks every few seconds and keeps what
// they say with its lease, for consoles of every node to show.
func reportHealth(ctx context.Context, lease *acd.NodeLease, checks []web.Check, log zerolog.Logger) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		out := make(map[string]string, len(checks))
		for _, c := range checks {
			if err := c.Check(cctx); err != nil {
				out[c.Name] = err.Error()
			} else {
				out[c.Name] = "ok"
			}
		}
		if err := lease.ReportHealth(cctx, out); err != nil && ctx.Err() == nil {
			log.Debug().Err(err).Msg("node: health not reported")
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
