package aritest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// waitLimit bounds every wait of the tests; the double answers within
// milliseconds, so reaching it means something is missing.
const waitLimit = 10 * time.Second

// eventSocket is a real websocket client on /ari/events that keeps every
// frame it receives.
type eventSocket struct {
	conn  *websocket.Conn
	local string // the client's address, as the double sees it
	done  chan struct{}

	mu      sync.Mutex
	frames  [][]byte
	next    int   // the first frame nextEvent has not returned
	err     error // why reading stopped
	changed chan struct{}
}

// dialEvents opens an event socket; query is the part after '?'.
func dialEvents(ctx context.Context, s *Server, query string) (*eventSocket, *http.Response, error) {
	var local string
	var d net.Dialer
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err == nil {
				local = conn.LocalAddr().String()
			}
			return conn, err
		},
	}}
	conn, resp, err := websocket.Dial(ctx, s.WebsocketURL()+"?"+query, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		return nil, resp, err
	}
	conn.SetReadLimit(1 << 20)
	c := &eventSocket{conn: conn, local: local, done: make(chan struct{}), changed: make(chan struct{})}
	go c.read()
	return c, resp, nil
}

// openEvents opens an event socket for app with good credentials and
// closes it when the test ends.
func openEvents(t *testing.T, s *Server, app string) *eventSocket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, _, err := dialEvents(ctx, s, "app="+app+"&api_key=hotline:hotline")
	if err != nil {
		t.Fatalf("open event socket for %s: %v", app, err)
	}
	t.Cleanup(c.close)
	return c
}

func (c *eventSocket) read() {
	defer close(c.done)
	for {
		_, b, err := c.conn.Read(context.Background())
		c.mu.Lock()
		if err != nil {
			c.err = err
		} else {
			c.frames = append(c.frames, b)
		}
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// close closes the socket with 1000 and waits for its reader to stop.
// Frames still in flight are lost (websocket.Conn.Close discards them
// while it waits for the close reply); drain first to keep them.
func (c *eventSocket) close() {
	_ = c.conn.Close(websocket.StatusNormalClosure, "")
	<-c.done
}

// drain waits until the socket has read every frame the double has
// written to it; call it once the double is flushed.
func (c *eventSocket) drain(ctx context.Context, s *Server) error {
	s.mu.Lock()
	n := 0
	for x := range s.sockets {
		if x.remote == c.local {
			x.mu.Lock()
			n = x.written
			x.mu.Unlock()
		}
	}
	s.mu.Unlock()
	return c.count(ctx, n)
}

// count waits until the socket has received at least n frames.
func (c *eventSocket) count(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		have, err, changed := len(c.frames), c.err, c.changed
		c.mu.Unlock()
		if have >= n {
			return nil
		}
		if err != nil {
			return fmt.Errorf("socket closed after %d of %d frames: %w", have, n, err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d frames: %w", have, n, ctx.Err())
		}
	}
}

func (c *eventSocket) frame(i int) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames[i]
}

func (c *eventSocket) received() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.frames...)
}

// closeErr is why the socket stopped reading, once it has.
func (c *eventSocket) closeErr() error {
	<-c.done
	return c.err
}

// nextEvent returns the next frame as a JSON object.
func (c *eventSocket) nextEvent(t *testing.T) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c.mu.Lock()
	i := c.next
	c.next++
	c.mu.Unlock()
	if err := c.count(ctx, i+1); err != nil {
		t.Fatalf("waiting for event %d: %v", i+1, err)
	}
	var ev map[string]any
	if err := json.Unmarshal(c.frame(i), &ev); err != nil {
		t.Fatalf("event %d is not JSON: %v: %s", i+1, err, c.frame(i))
	}
	return ev
}

// expect returns the next event and checks its type.
func (c *eventSocket) expect(t *testing.T, typ string) map[string]any {
	t.Helper()
	ev := c.nextEvent(t)
	if ev["type"] != typ {
		t.Fatalf("got %v event, want %s: %v", ev["type"], typ, ev)
	}
	return ev
}

// restClient calls the double's REST interface over real HTTP, one TCP
// connection per call as the recorder did.
type restClient struct {
	base string // "http://127.0.0.1:PORT"
	hc   *http.Client
}

func newREST(s *Server) *restClient {
	return &restClient{
		base: strings.TrimSuffix(s.URL(), "/ari"),
		hc:   &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitLimit},
	}
}

// authMode says how a request authenticates.
type authMode int

const (
	authBasic    authMode = iota // basic auth hotline:hotline, unless the path has api_key
	authNone                     // no credentials
	authBadBasic                 // basic auth with a wrong password
	authBoth                     // basic auth hotline:hotline even beside an api_key
)

type restResult struct {
	status int
	header http.Header
	body   []byte
}

func (r restResult) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// send makes one request with a JSON body, if any; path starts with
// /ari.
func (c *restClient) send(method, path string, body []byte, auth authMode) (restResult, error) {
	return c.sendTyped(method, path, body, "application/json", auth)
}

// postForm posts a form body.
func (c *restClient) postForm(t *testing.T, path, form string) restResult {
	t.Helper()
	r, err := c.sendTyped(http.MethodPost, path, []byte(form), "application/x-www-form-urlencoded", authBasic)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return r
}

func (c *restClient) sendTyped(method, path string, body []byte, contentType string, auth authMode) (restResult, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return restResult{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	switch {
	case auth == authNone, auth == authBasic && strings.Contains(path, "api_key="):
	case auth == authBadBasic:
		req.SetBasicAuth("hotline", "wrong")
	default:
		req.SetBasicAuth("hotline", "hotline")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return restResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return restResult{}, err
	}
	return restResult{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// call makes a request and fails the test when it cannot be made.
func (c *restClient) call(t *testing.T, method, path string, body any) restResult {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	r, err := c.send(method, path, b, authBasic)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// want checks a reply's status.
func (r restResult) want(t *testing.T, status int) restResult {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// waitFlushed waits until every socket of the double has written all that
// is queued on it.
func (s *Server) waitFlushed(ctx context.Context) error {
	return s.waitFor(ctx, func() bool {
		for x := range s.sockets {
			if !x.idle() {
				return false
			}
		}
		return true
	})
}

// waitSockets waits until the double holds n sockets.
func (s *Server) waitSockets(ctx context.Context, n int) error {
	return s.waitFor(ctx, func() bool { return len(s.sockets) == n })
}

func isCloseStatus(err error, code websocket.StatusCode) bool {
	var ce websocket.CloseError
	return errors.As(err, &ce) && ce.Code == code
}
