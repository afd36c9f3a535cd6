package aritest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Username and Password are the ARI user of ari.conf; both default to
	// "hotline".
	Username, Password string

	// EntityID is Asterisk's entity id: asterisk_id on every event and
	// system_info.entity_id of GET /asterisk/info. It defaults to
	// "02:fc:00:00:00:01", the recorded one.
	EntityID string

	// Sound says how long "sound:NAME" plays in language lang and whether
	// the file exists. Nil means every sound exists and plays 1 s.
	Sound func(name, lang string) (time.Duration, bool)

	// Speed makes playbacks, phones' answer delays, originate timeouts and
	// the Local channel's dialplan run this many times faster than real
	// time. It defaults to 1.
	Speed float64

	// Log, when set, receives a trace of what the double does.
	Log func(format string, args ...any)
}

func (o Options) withDefaults() Options {
	if o.Username == "" {
		o.Username = "hotline"
	}
	if o.Password == "" {
		o.Password = "hotline"
	}
	if o.EntityID == "" {
		o.EntityID = "02:fc:00:00:00:01"
	}
	if o.Speed <= 0 {
		o.Speed = 1
	}
	return o
}

// ErrStasisFailed is returned by Inbound when no socket holds the
// application: the dialplan's Stasis() fails, the call goes on to Hangup
// and no channel stays.
var ErrStasisFailed = errors.New("aritest: Stasis application is not registered")

// ErrClosed is returned by Inbound once the Server is closed.
var ErrClosed = errors.New("aritest: server closed")

// Server is the ARI double. All its methods are safe for concurrent use.
type Server struct {
	opts      Options
	ln        net.Listener
	http      *http.Server
	routes    []*route
	serveDone chan struct{}
	closeOnce sync.Once

	// mu guards everything below: every request, far-end action and timer
	// changes state and publishes its events under it, which is what keeps
	// each channel's events in order.
	mu        sync.Mutex
	closed    bool
	entityID  string
	startup   time.Time // status.startup_time of GET /asterisk/info
	chanSeq   uint64    // the unique-id counter after the dot of channel ids
	pjsipSeq  uint32    // the hex counter of PJSIP channel names
	localSeq  uint32    // the hex counter of Local channel names
	objSeq    uint64    // creation order of bridges and playbacks
	channels  map[string]*channel
	bridges   map[string]*bridge
	playbacks map[string]*playback
	apps      map[string]*app
	sockets   map[*socket]struct{}
	endpoints map[string]Phone
	changed   chan struct{} // closed and replaced on every registration or idleness change
	dropping  chan string   // set while DropRequests drops REST requests

	tasks     taskHeap
	taskSeq   uint64
	clockWake chan struct{}
	clockQuit chan struct{}
	clockDone chan struct{}

	originated  chan *Party
	originQueue []*Party
	originWake  chan struct{}
	originQuit  chan struct{}
	originDone  chan struct{}
}

// New starts a Server on 127.0.0.1 with a port the system picks.
func New(opts Options) (*Server, error) {
	opts = opts.withDefaults()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("aritest: listen: %w", err)
	}
	s := &Server{
		opts:       opts,
		ln:         ln,
		serveDone:  make(chan struct{}),
		entityID:   opts.EntityID,
		startup:    time.Now(),
		channels:   map[string]*channel{},
		bridges:    map[string]*bridge{},
		playbacks:  map[string]*playback{},
		apps:       map[string]*app{},
		sockets:    map[*socket]struct{}{},
		endpoints:  map[string]Phone{},
		changed:    make(chan struct{}),
		clockWake:  make(chan struct{}, 1),
		clockQuit:  make(chan struct{}),
		clockDone:  make(chan struct{}),
		originated: make(chan *Party),
		originWake: make(chan struct{}, 1),
		originQuit: make(chan struct{}),
		originDone: make(chan struct{}),
	}
	s.routes = s.routeTable()
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(logWriter{s}, "", 0),
	}
	go func() {
		defer close(s.serveDone)
		_ = s.http.Serve(ln) // returns when Close closes the listener
	}()
	go s.runClock()
	go s.pumpOriginated()
	return s, nil
}

// Start starts a Server for t and closes it when t ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// URL is the base of the REST resources, "http://127.0.0.1:PORT/ari".
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/ari" }

// WebsocketURL is the event stream's address without query,
// "ws://127.0.0.1:PORT/ari/events".
func (s *Server) WebsocketURL() string { return "ws://" + s.ln.Addr().String() + "/ari/events" }

// Close stops the server: sockets are dropped, far ends see their calls
// dropped (NoteDropped), and every goroutine the Server started has ended
// when it returns. It may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		sockets := s.socketsLocked()
		s.wipeLocked()
		s.mu.Unlock()
		for _, x := range sockets {
			x.abort()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.http.Shutdown(ctx); err != nil {
			_ = s.http.Close()
		}
		<-s.serveDone
		for _, x := range sockets {
			<-x.done
		}
		close(s.clockQuit)
		<-s.clockDone
		close(s.originQuit)
		<-s.originDone
	})
}

// Restart makes Asterisk restart, as after a crash: every socket is dropped
// abruptly, every channel, bridge, playback and application is gone
// without an event, far ends see their calls dropped, and GET
// /asterisk/info reports a new status.startup_time. The entity id stays:
// Asterisk derives it from asterisk.conf or the machine's MAC address, and
// a real Asterisk 22 keeps it across `core restart now`. The listener keeps
// its port, as a restarted Asterisk binds the same one.
func (s *Server) Restart() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	sockets := s.socketsLocked()
	s.wipeLocked()
	// Reported to the millisecond: a restart within the same one would
	// look like none.
	prev := s.startup
	s.startup = time.Now()
	if s.startup.Before(prev.Add(time.Millisecond)) {
		s.startup = prev.Add(time.Millisecond)
	}
	s.mu.Unlock()
	for _, x := range sockets {
		x.abort()
	}
	for _, x := range sockets {
		<-x.done
	}
}

// wipeLocked forgets every channel, bridge, playback, application and
// pending task, without events; far ends are told their calls dropped.
func (s *Server) wipeLocked() {
	for _, ch := range s.channelsLocked() {
		ch.gone = true
		ch.party.finishLocked(Note{Kind: NoteDropped})
	}
	s.channels = map[string]*channel{}
	s.bridges = map[string]*bridge{}
	s.playbacks = map[string]*playback{}
	for _, a := range s.apps {
		a.socket = nil
	}
	s.apps = map[string]*app{}
	for _, t := range s.tasks {
		t.index = -1
	}
	s.tasks = nil
	s.notifyLocked()
}

// EntityID is Asterisk's entity id, asterisk_id on every event.
func (s *Server) EntityID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entityID
}

// ChannelName is the name Asterisk gave channel id (PJSIP/1001-00000001),
// "" for a channel it does not have.
func (s *Server) ChannelName(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.channels[id]; ch != nil {
		return ch.name
	}
	return ""
}

// Channels lists the ids of the channels that exist, oldest first.
func (s *Server) Channels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, ch := range s.channelsLocked() {
		ids = append(ids, ch.id)
	}
	return ids
}

// Bridges lists the ids of the bridges that exist, oldest first.
func (s *Server) Bridges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, b := range s.bridgesLocked() {
		ids = append(ids, b.id)
	}
	return ids
}

// Playbacks lists the ids of the playbacks that exist (queued or playing),
// oldest first.
func (s *Server) Playbacks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]*playback, 0, len(s.playbacks))
	for _, pb := range s.playbacks {
		list = append(list, pb)
	}
	slices.SortFunc(list, func(x, y *playback) int { return cmp.Compare(x.seq, y.seq) })
	var ids []string
	for _, pb := range list {
		ids = append(ids, pb.id)
	}
	return ids
}

// Connected reports whether a socket holds the application.
func (s *Server) Connected(app string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[app]
	return a != nil && a.socket != nil
}

// AwaitConnected waits until Connected(app) is want, or ctx ends.
func (s *Server) AwaitConnected(ctx context.Context, app string, want bool) error {
	return s.waitFor(ctx, func() bool {
		a := s.apps[app]
		return (a != nil && a.socket != nil) == want
	})
}

// waitFor waits until cond, called with s.mu held, is true after one of
// the changes notifyLocked announces.
func (s *Server) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notifyLocked wakes waitFor. s.mu is held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitIdle waits until no task is pending and every socket has written
// everything queued on it: from then on nothing more is sent until someone
// acts. Tests use it before they close their sockets and compare streams.
func (s *Server) waitIdle(ctx context.Context) error {
	return s.waitFor(ctx, func() bool {
		if len(s.tasks) > 0 {
			return false
		}
		for x := range s.sockets {
			if !x.idle() {
				return false
			}
		}
		return true
	})
}

// SetEndpoint makes an endpoint that originate reaches, such as
// "PJSIP/1001", behave like ph. Originating to an endpoint that was never
// set gives 500 {"error":"Allocation failed"}.
func (s *Server) SetEndpoint(name string, ph Phone) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endpoints[name] = ph
}

// Originated delivers each originated channel once its phone has answered
// and it has entered Stasis, as the Party the test drives as the agent.
// Nothing blocks when no one reads it.
func (s *Server) Originated() <-chan *Party { return s.originated }

func (s *Server) deliverOriginatedLocked(p *Party) {
	s.originQueue = append(s.originQueue, p)
	select {
	case s.originWake <- struct{}{}:
	default:
	}
}

// pumpOriginated hands queued parties to Originated's readers one by one.
func (s *Server) pumpOriginated() {
	defer close(s.originDone)
	for {
		s.mu.Lock()
		var next *Party
		if len(s.originQueue) > 0 {
			next = s.originQueue[0]
		}
		s.mu.Unlock()
		if next == nil {
			select {
			case <-s.originWake:
				continue
			case <-s.originQuit:
				return
			}
		}
		select {
		case s.originated <- next:
			s.mu.Lock()
			s.originQueue = s.originQueue[1:]
			s.mu.Unlock()
		case <-s.originWake:
		case <-s.originQuit:
			return
		}
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Log != nil {
		s.opts.Log(format, args...)
	}
}

// logWriter sends net/http's own complaints to Options.Log.
type logWriter struct{ s *Server }

func (w logWriter) Write(p []byte) (int, error) {
	w.s.logf("http: %s", string(p))
	return len(p), nil
}
