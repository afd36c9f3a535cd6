package aritest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// socket is the double's end of one event websocket (GET /ari/events).
// It holds the applications named in its app parameter until another
// socket replaces it for one of them, or it closes.
type socket struct {
	s      *Server
	apps   []string
	remote string // the client's address
	gate   *gate
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	conn    *websocket.Conn
	aborted bool
	closing websocket.StatusCode // a close asked for before the handshake ended
	queue   [][]byte
	pending int // queued or being written
	written int // frames written
	wake    chan struct{}
}

// enqueue queues one frame; a writer goroutine sends frames in order.
func (x *socket) enqueue(msg []byte) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ctx.Err() != nil {
		return
	}
	x.queue = append(x.queue, msg)
	x.pending++
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

func (x *socket) idle() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.pending == 0
}

// abort closes the socket abruptly: the TCP connection closes with no
// close frame, which the client sees as 1006.
func (x *socket) abort() {
	x.mu.Lock()
	x.aborted = true
	conn := x.conn
	x.mu.Unlock()
	x.cancel()
	x.gate.shut()
	if conn != nil {
		_ = conn.CloseNow()
	}
}

// closeWith closes the socket with a close frame carrying code (RFC 6455
// section 7.4); the codes that must never be sent (1005, 1006, 1015), and
// frozen sockets, are closed abruptly.
func (x *socket) closeWith(code websocket.StatusCode) {
	x.mu.Lock()
	conn := x.conn
	if conn == nil && !x.aborted {
		// The client may already hold its socket: close it properly once
		// the handshake has ended.
		x.closing = code
		x.mu.Unlock()
		return
	}
	x.mu.Unlock()
	switch {
	case conn == nil, x.gate.frozen(),
		code == websocket.StatusNoStatusRcvd, code == websocket.StatusAbnormalClosure, code == websocket.StatusTLSHandshake:
		x.abort()
	default:
		if err := conn.Close(code, ""); err != nil {
			x.abort()
		}
	}
}

// writeLoop sends the queued frames until the socket ends.
func (x *socket) writeLoop(conn *websocket.Conn) {
	for {
		x.mu.Lock()
		for len(x.queue) == 0 {
			x.mu.Unlock()
			select {
			case <-x.wake:
			case <-x.ctx.Done():
				return
			}
			x.mu.Lock()
		}
		msg := x.queue[0]
		x.queue[0] = nil
		x.queue = x.queue[1:]
		x.mu.Unlock()
		err := conn.Write(x.ctx, websocket.MessageText, msg)
		x.mu.Lock()
		x.pending--
		if err == nil {
			x.written++
		}
		idle := x.pending == 0
		x.mu.Unlock()
		if err != nil {
			x.cancel()
			return
		}
		if idle {
			x.s.mu.Lock()
			x.s.notifyLocked()
			x.s.mu.Unlock()
		}
	}
}

// serveEvents is the event socket's handshake and life. Checks in the
// order the recording shows: 426 without an Upgrade, 401 for bad
// credentials, 400 without app.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	if !websocketUpgrade(r) {
		writeHTML(w, http.StatusUpgradeRequired, "Upgrade Required", "")
		return
	}
	if !s.authorized(r) {
		s.writeReply(w, unauthorized())
		return
	}
	var names []string
	for _, n := range strings.Split(r.URL.Query().Get("app"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		writeHTML(w, http.StatusBadRequest, "Bad Request", "HTTP request is missing param: [app]")
		return
	}
	all := astTrue(r.URL.Query().Get("subscribeAll"))
	ctx, cancel := context.WithCancel(context.Background())
	x := &socket{
		s:      s,
		apps:   names,
		remote: r.RemoteAddr,
		gate:   newGate(),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		wake:   make(chan struct{}, 1),
	}
	// Registration comes before the 101, so a client that has its socket
	// receives every event that follows.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	s.sockets[x] = struct{}{}
	for _, n := range names {
		s.registerLocked(n, x, all)
	}
	s.notifyLocked()
	s.mu.Unlock()
	defer s.endSocket(x)

	conn, err := websocket.Accept(gatedWriter{w, x.gate}, r, &websocket.AcceptOptions{
		// Asterisk does not check Origin; CyCoreSystems/ari sends
		// http://localhost/.
		InsecureSkipVerify: true,
	})
	if err != nil {
		s.logf("websocket handshake: %v", err)
		return
	}
	x.mu.Lock()
	x.conn = conn
	aborted, closing := x.aborted, x.closing
	x.mu.Unlock()
	if aborted {
		_ = conn.CloseNow()
		return
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		x.writeLoop(conn)
	}()
	var closer sync.WaitGroup
	if closing != 0 {
		// The close handshake needs the read loop below to run.
		closer.Add(1)
		go func() {
			defer closer.Done()
			x.closeWith(closing)
		}()
	}
	// Reading answers pings and close frames; ARI ignores what clients
	// send.
	for {
		if _, _, err := conn.Read(x.ctx); err != nil {
			break
		}
	}
	x.cancel()
	_ = conn.CloseNow()
	<-writerDone
	closer.Wait()
}

// registerLocked gives the application to socket x; the socket that held
// it gets ApplicationReplaced and nothing more for it.
func (s *Server) registerLocked(name string, x *socket, all bool) {
	a := s.apps[name]
	if a == nil {
		a = &app{name: name, channels: map[*channel]bool{}, bridges: map[*bridge]bool{}}
		s.apps[name] = a
	}
	if old := a.socket; old != nil && old != x && a.allows("ApplicationReplaced") {
		e := &event{typ: "ApplicationReplaced"}
		e.at = time.Now()
		old.enqueue(e.encode(s.entityID, name))
	}
	a.socket = x
	a.all = all
}

// endSocket unregisters what x held: the applications stay while they
// have channels or bridges, without a socket.
func (s *Server) endSocket(x *socket) {
	x.cancel()
	x.gate.shut()
	s.mu.Lock()
	delete(s.sockets, x)
	for _, n := range x.apps {
		if a := s.apps[n]; a != nil && a.socket == x {
			a.socket = nil
			s.reapLocked(a)
		}
	}
	x.mu.Lock()
	x.queue = nil
	x.pending = 0
	x.mu.Unlock()
	s.notifyLocked()
	s.mu.Unlock()
	close(x.done)
}

func (s *Server) socketsLocked() []*socket {
	list := make([]*socket, 0, len(s.sockets))
	for x := range s.sockets {
		list = append(list, x)
	}
	return list
}

// websocketUpgrade reports whether r asks for a websocket (RFC 6455
// section 4.1: Upgrade: websocket and Connection: Upgrade).
func websocketUpgrade(r *http.Request) bool {
	hasToken := func(header, token string) bool {
		for _, v := range r.Header.Values(header) {
			for _, t := range strings.Split(v, ",") {
				if strings.EqualFold(strings.TrimSpace(t), token) {
					return true
				}
			}
		}
		return false
	}
	return hasToken("Connection", "upgrade") && hasToken("Upgrade", "websocket")
}

// DropWebsockets closes every event socket with code: a close frame for
// the codes that may be sent (1000, 1001, 1011, ...), an abrupt close of
// the TCP connection for 1006. It returns once the sockets are gone and
// their applications unregistered.
func (s *Server) DropWebsockets(code websocket.StatusCode) {
	s.mu.Lock()
	list := s.socketsLocked()
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, x := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x.closeWith(code)
		}()
	}
	wg.Wait()
	for _, x := range list {
		<-x.done
	}
}

// Freeze makes the application's socket half-open: nothing is written to
// it or read from it (no pong, no close) until resume is called; events
// meanwhile wait, as unacknowledged TCP data would. Freeze of an
// application without a socket does nothing.
func (s *Server) Freeze(app string) (resume func()) {
	s.mu.Lock()
	var x *socket
	if a := s.apps[app]; a != nil {
		x = a.socket
	}
	s.mu.Unlock()
	if x == nil {
		return func() {}
	}
	x.gate.freeze()
	var once sync.Once
	return func() { once.Do(x.gate.thaw) }
}

// Emit writes raw as one text frame to the application's socket, as is:
// an event type the client does not know, a burst. Without a socket it is
// lost.
func (s *Server) Emit(app string, raw []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[app]; a != nil && a.socket != nil {
		a.socket.enqueue(bytes.Clone(raw))
	}
}

// gate holds a socket's traffic while frozen.
type gate struct {
	mu       sync.Mutex
	isFrozen bool
	open     chan struct{} // closed while traffic flows
	closed   chan struct{} // closed with the connection
	once     sync.Once
}

func newGate() *gate {
	g := &gate{open: make(chan struct{}), closed: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gate) freeze() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.isFrozen {
		g.isFrozen = true
		g.open = make(chan struct{})
	}
}

func (g *gate) thaw() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.isFrozen {
		g.isFrozen = false
		close(g.open)
	}
}

func (g *gate) frozen() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.isFrozen
}

func (g *gate) shut() { g.once.Do(func() { close(g.closed) }) }

// pass waits until traffic may flow, or the connection closes.
func (g *gate) pass() error {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
		return nil
	case <-g.closed:
		return net.ErrClosed
	}
}

// gatedConn is the socket's TCP connection behind its gate: bytes that
// arrive while frozen are held back, writes wait.
type gatedConn struct {
	net.Conn
	g *gate
}

func (c gatedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if gerr := c.g.pass(); gerr != nil {
			return 0, gerr
		}
	}
	return n, err
}

func (c gatedConn) Write(p []byte) (int, error) {
	if err := c.g.pass(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c gatedConn) Close() error {
	c.g.shut()
	return c.Conn.Close()
}

// gatedWriter hands websocket.Accept the hijacked connection behind the
// gate.
type gatedWriter struct {
	http.ResponseWriter
	g *gate
}

func (w gatedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("aritest: connection cannot be hijacked")
	}
	conn, brw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	gc := gatedConn{Conn: conn, g: w.g}
	// What the server read ahead of the hijack (a client's first frame
	// may come right after the 101) stays in the reader's buffer:
	// websocket.Accept keeps only what is buffered when it takes the
	// reader over, and reads the rest from the connection.
	n := brw.Reader.Buffered()
	b, _ := brw.Reader.Peek(n)
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(bytes.Clone(b)), gc))
	if _, err := br.Peek(n); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return gc, bufio.NewReadWriter(br, bufio.NewWriter(gc)), nil
}

// DropRequests makes every REST request from now on go unanswered: its
// connection is closed before anything is read or written, as when
// Asterisk's HTTP server goes away or the network between drops it. The
// event sockets stay up. dropped reports each request dropped (its method
// and path) and is not blocked on; resume answers requests again.
func (s *Server) DropRequests() (dropped <-chan string, resume func()) {
	ch := make(chan string, 64)
	s.mu.Lock()
	s.dropping = ch
	s.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			s.mu.Lock()
			if s.dropping == ch {
				s.dropping = nil
			}
			s.mu.Unlock()
		})
	}
}

// dropRequest drops r when DropRequests says so, and reports whether it
// did.
func (s *Server) dropRequest(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	ch := s.dropping
	s.mu.Unlock()
	if ch == nil {
		return false
	}
	h, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	conn, _, err := h.Hijack()
	if err != nil {
		return false
	}
	_ = conn.Close()
	select {
	case ch <- r.Method + " " + r.URL.Path:
	default:
	}
	return true
}
