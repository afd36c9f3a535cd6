package asterisktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/hotline12345/hotline/asterisk/aritest"
)

// callersApp is the Stasis application the test's callers sit in.
const callersApp = "test-callers"

// callerEvents are the events the callers' application asks for. An
// application that originates a Local channel is subscribed to both of its
// halves from the start, so it sees what is played to the far half even
// while that half is in hotline's application.
var callerEvents = []string{
	"StasisStart", "ChannelStateChange", "ChannelHangupRequest", "ChannelDestroyed",
	"PlaybackStarted", "PlaybackFinished",
}

// Callers places citizens' calls into the dialplan without SIP: each call
// is a Local channel whose ;2 half runs an extension of from-trunk (the
// trunk's dialplan, so hotline's Stasis application takes it) and whose ;1
// half the test holds in a Stasis application of its own, from where it
// presses keys and hangs up. What Asterisk plays to the ;2 half reaches the
// test as the far end's notes, in aritest's terms, so tests written for the
// double read a real Asterisk alike.
type Callers struct {
	a      *Asterisk
	conn   *websocket.Conn
	client *http.Client
	done   chan struct{} // closed when the event reader returns

	mu      sync.Mutex
	parties map[string]*Party // by the id of either half
}

// Callers connects the callers' application; it is closed when t ends.
func (a *Asterisk) Callers(t testing.TB) *Callers {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	header := http.Header{}
	req := http.Request{Header: header}
	req.SetBasicAuth(Username, Password)
	ws := strings.Replace(a.ARI, "http://", "ws://", 1) + "/events?" +
		url.Values{"app": {callersApp}}.Encode()
	conn, res, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: header})
	if res != nil && res.Body != nil {
		res.Body.Close()
	}
	if err != nil {
		t.Fatalf("asterisktest: callers' websocket: %v", err)
	}
	conn.SetReadLimit(1 << 20)
	c := &Callers{
		a: a, conn: conn, client: &http.Client{Timeout: 10 * time.Second},
		done: make(chan struct{}), parties: map[string]*Party{},
	}
	go c.read()
	t.Cleanup(func() {
		conn.Close(websocket.StatusNormalClosure, "")
		<-c.done
		c.client.CloseIdleConnections()
	})
	type allowed struct {
		Type string `json:"type"`
	}
	var filter struct {
		Allowed []allowed `json:"allowed"`
	}
	for _, e := range callerEvents {
		filter.Allowed = append(filter.Allowed, allowed{e})
	}
	if err := c.do(ctx, http.MethodPut, "/applications/"+callersApp+"/eventFilter", nil, filter); err != nil {
		t.Fatalf("asterisktest: callers' event filter: %v", err)
	}
	return c
}

// do makes one ARI request as the test's user; a reply other than 2xx is
// an error with Asterisk's message.
func (c *Callers) do(ctx context.Context, method, path string, query url.Values, body any) error {
	return ariDo(ctx, c.client, c.a.ARI, method, path, query, body, nil)
}

// event is the part of an ARI event the callers read.
type event struct {
	Type    string `json:"type"`
	Cause   int    `json:"cause"`
	Soft    bool   `json:"soft"`
	Channel struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"channel"`
	Playback struct {
		ID        string `json:"id"`
		MediaURI  string `json:"media_uri"`
		TargetURI string `json:"target_uri"`
		Language  string `json:"language"`
		State     string `json:"state"`
	} `json:"playback"`
}

// read hands each event to the party it is about until the socket closes;
// parties still up then are dropped.
func (c *Callers) read() {
	defer close(c.done)
	for {
		_, data, err := c.conn.Read(context.Background())
		if err != nil {
			break
		}
		var e event
		if json.Unmarshal(data, &e) != nil {
			continue
		}
		id := e.Channel.ID
		if e.Type == "PlaybackStarted" || e.Type == "PlaybackFinished" {
			id = strings.TrimPrefix(e.Playback.TargetURI, "channel:")
		}
		c.mu.Lock()
		p := c.parties[id]
		c.mu.Unlock()
		if p != nil {
			p.event(id, e)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.parties {
		p.finish(aritest.Note{Kind: aritest.NoteDropped})
	}
}

// ErrRefused is returned by Dial when Asterisk refuses the originate.
var ErrRefused = errors.New("asterisktest: originate refused")

// Dial calls exten of from-trunk as callerID and returns the caller's
// side once the Local channel exists; the call is answered when hotline
// answers its half (NoteAnswered).
func (c *Callers) Dial(ctx context.Context, callerID, exten string) (*Party, error) {
	p := &Party{
		c: c, one: uuid.NewString(), two: uuid.NewString(),
		notes: make(chan aritest.Note, 1024), inStasis: make(chan struct{}), ended: make(chan struct{}),
	}
	c.mu.Lock()
	c.parties[p.one], c.parties[p.two] = p, p
	c.mu.Unlock()
	q := url.Values{
		"endpoint":       {"Local/" + exten + "@from-trunk"},
		"app":            {callersApp},
		"otherChannelId": {p.two},
		"callerId":       {callerID},
	}
	if err := c.do(ctx, http.MethodPost, "/channels/"+p.one, q, nil); err != nil {
		c.forget(p)
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	return p, nil
}

func (c *Callers) forget(p *Party) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.parties, p.one)
	delete(c.parties, p.two)
}

// Party is a caller: the ;1 half of a Local channel the test holds, whose
// ;2 half is the call hotline (or the dialplan) handles. Its methods are
// safe for concurrent use.
type Party struct {
	c        *Callers
	one, two string // the halves' channel ids

	notes     chan aritest.Note
	inStasis  chan struct{} // closed when the ;1 half enters the callers' application
	stasisOne sync.Once
	ended     chan struct{}

	mu       sync.Mutex
	finished bool
	byTest   bool // the test hung up
	noted    bool // the hang-up was noted
	answered bool
}

// ID is the channel id of the call's far half: the channel hotline sees.
func (p *Party) ID() string { return p.two }

// Notes reports what the caller experiences, in order; it is closed when
// the call is over.
func (p *Party) Notes() <-chan aritest.Note { return p.notes }

// Done is closed when the call is over.
func (p *Party) Done() <-chan struct{} { return p.ended }

// Press sends one key (POST /channels/{id}/dtmf on the caller's half,
// which passes it to the far half as RFC 4733 does over SIP: a begin and an
// end). A key pressed before the call is answered waits for the answer.
func (p *Party) Press(key rune) {
	select {
	case <-p.inStasis:
	case <-p.ended:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.c.do(ctx, http.MethodPost, "/channels/"+p.one+"/dtmf", url.Values{"dtmf": {string(key)}}, nil)
}

// Hangup hangs up the caller's half; Asterisk hangs up the far half.
func (p *Party) Hangup() {
	p.mu.Lock()
	p.byTest = true
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.c.do(ctx, http.MethodDelete, "/channels/"+p.one, nil, nil)
}

// event turns an event about one of the halves into a note.
func (p *Party) event(id string, e event) {
	switch {
	case e.Type == "StasisStart" && id == p.one:
		p.stasisOne.Do(func() { close(p.inStasis) })
		p.answer()
	case e.Type == "ChannelStateChange" && id == p.one && e.Channel.State == "Up":
		p.answer()
	case e.Type == "PlaybackStarted" && id == p.two:
		p.note(aritest.Note{Kind: aritest.NotePlaybackStarted, MediaURI: e.Playback.MediaURI, Language: e.Playback.Language, PlaybackID: e.Playback.ID})
	case e.Type == "PlaybackFinished" && id == p.two:
		p.note(aritest.Note{Kind: aritest.NotePlaybackFinished, MediaURI: e.Playback.MediaURI, Language: e.Playback.Language, PlaybackID: e.Playback.ID, PlaybackState: e.Playback.State})
	case e.Type == "ChannelHangupRequest" && id == p.one:
		// The far half hung up: its cause, Q.850 (16, 34, ...). A soft
		// hang-up (the test's own, Asterisk shutting down) says nothing
		// of the far end; ChannelDestroyed will.
		if !e.Soft {
			p.hungUpBy(e)
		}
	case e.Type == "ChannelDestroyed" && id == p.one:
		p.c.forget(p)
		p.hungUpBy(e)
		p.finish(aritest.Note{})
	}
}

// hungUpBy notes the far end's hang-up once, unless the test hung up.
func (p *Party) hungUpBy(e event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byTest || p.noted {
		return
	}
	p.noted = true
	p.noteLocked(aritest.Note{Kind: aritest.NoteHungUp, Cause: e.Cause})
}

func (p *Party) answer() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.answered {
		p.answered = true
		p.noteLocked(aritest.Note{Kind: aritest.NoteAnswered})
	}
}

func (p *Party) note(n aritest.Note) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.noteLocked(n)
}

func (p *Party) noteLocked(n aritest.Note) {
	if p.finished {
		return
	}
	select {
	case p.notes <- n:
	default:
	}
}

func (p *Party) finish(final aritest.Note) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked(final)
}

func (p *Party) finishLocked(final aritest.Note) {
	if p.finished {
		return
	}
	if final.Kind != 0 {
		p.noteLocked(final)
	}
	p.finished = true
	close(p.notes)
	close(p.ended)
}
