package asterisk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/CyCoreSystems/ari/v5"
)

// RESTError is a reply of ARI's other than 2xx. Asterisk sends a JSON
// body {"message": ...} with nearly every error, {"error": ...} with a
// few (an originate whose channel cannot be allocated).
type RESTError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *RESTError) Error() string {
	return fmt.Sprintf("ari %s %s: %d %s", e.Method, e.Path, e.Status, e.Message)
}

// Is lets errors.Is match the sentinel errors below by status.
func (e *RESTError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict || e.Status == http.StatusUnprocessableEntity
	}
	return false
}

// The replies a call's requests get once the far end has gone: the
// channel, bridge or playback no longer exists (404), or it is in no
// state for the request (409, 422).
var (
	ErrNotFound = errors.New("ari: not found")
	ErrConflict = errors.New("ari: conflict")
)

// rest calls ARI's REST interface. CyCoreSystems/ari/v5's native client
// takes no context and sets no timeout on its requests, so a hung Asterisk
// would hold every call's flow; here every request carries the call's
// context and a timeout.
type rest struct {
	base    string // "http://127.0.0.1:8088/ari"
	user    string
	pass    string
	http    *http.Client
	timeout time.Duration
}

func newREST(base, user, pass string, timeout time.Duration) *rest {
	return &rest{
		base: strings.TrimRight(base, "/"), user: user, pass: pass, timeout: timeout,
		http: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}},
	}
}

func (r *rest) close() { r.http.CloseIdleConnections() }

// do sends one request; query parameters go in the URL (as ARI documents
// them), body, when not nil, as JSON; a 2xx reply's JSON body is decoded
// into out when out is not nil.
func (r *rest) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	u := r.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method == http.MethodDelete {
		// Hanging up a channel or deleting a bridge twice does no harm:
		// marked idempotent, the request is sent again on a fresh
		// connection when a kept-alive one turns out closed as it was
		// sent (EOF), rather than failing and leaving a channel up. The
		// header has no value and is not sent.
		req.Header["Idempotency-Key"] = nil
	}
	req.SetBasicAuth(r.user, r.pass)
	res, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("ari %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("ari %s %s: %w", method, path, err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		var msg struct {
			Message string `json:"message"`
			Error   string `json:"error"`
		}
		_ = json.Unmarshal(data, &msg)
		text := msg.Message
		if text == "" {
			text = msg.Error
		}
		if text == "" {
			text = http.StatusText(res.StatusCode)
		}
		return &RESTError{Method: method, Path: path, Status: res.StatusCode, Message: text}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("ari %s %s: decode reply: %w", method, path, err)
		}
	}
	return nil
}

// instance names one run of Asterisk: its entity id (asterisk_id), and
// when it started. A restart keeps the entity id, which Asterisk derives
// from asterisk.conf or the machine's MAC address, and changes the start.
type instance struct {
	EntityID    string
	StartupTime string
}

// instance reads system.entity_id and status.startup_time of GET
// /asterisk/info.
func (r *rest) instance(ctx context.Context) (instance, error) {
	var info struct {
		System struct {
			EntityID string `json:"entity_id"`
		} `json:"system"`
		Status struct {
			StartupTime string `json:"startup_time"`
		} `json:"status"`
	}
	q := url.Values{"only": {"system,status"}}
	if err := r.do(ctx, http.MethodGet, "/asterisk/info", q, nil, &info); err != nil {
		return instance{}, err
	}
	return instance{EntityID: info.System.EntityID, StartupTime: info.Status.StartupTime}, nil
}

// application is GET /applications/{app}.
type application struct {
	Name       string   `json:"name"`
	ChannelIDs []string `json:"channel_ids"`
	BridgeIDs  []string `json:"bridge_ids"`
}

func (r *rest) application(ctx context.Context, app string) (application, error) {
	var a application
	err := r.do(ctx, http.MethodGet, "/applications/"+url.PathEscape(app), nil, nil, &a)
	return a, err
}

// setEventFilter lets through to app only the event types it handles, so
// an event type the client library cannot decode is never sent (PUT
// /applications/{app}/eventFilter, Asterisk 13.26/16.3 and later).
func (r *rest) setEventFilter(ctx context.Context, app string, types []string) error {
	type typ struct {
		Type string `json:"type"`
	}
	var body struct {
		Allowed []typ `json:"allowed"`
	}
	for _, t := range types {
		body.Allowed = append(body.Allowed, typ{t})
	}
	return r.do(ctx, http.MethodPut, "/applications/"+url.PathEscape(app)+"/eventFilter", nil, body, nil)
}

// channelInfo is a channel of GET /channels with its SIP Call-ID, which
// the library's ChannelData leaves out.
type channelInfo struct {
	ari.ChannelData
	ProtocolID string
}

// channels is GET /channels.
func (r *rest) channels(ctx context.Context) ([]channelInfo, error) {
	var raw []json.RawMessage
	if err := r.do(ctx, http.MethodGet, "/channels", nil, nil, &raw); err != nil {
		return nil, err
	}
	list := make([]channelInfo, 0, len(raw))
	for _, m := range raw {
		var c channelInfo
		if err := json.Unmarshal(m, &c.ChannelData); err != nil {
			return nil, fmt.Errorf("ari GET /channels: decode reply: %w", err)
		}
		var p struct {
			ProtocolID string `json:"protocol_id"`
		}
		_ = json.Unmarshal(m, &p)
		c.ProtocolID = p.ProtocolID
		list = append(list, c)
	}
	return list, nil
}

func (r *rest) answer(ctx context.Context, channel string) error {
	return r.do(ctx, http.MethodPost, "/channels/"+url.PathEscape(channel)+"/answer", nil, nil, nil)
}

// hangup is DELETE /channels/{id}; a channel already gone is no error.
func (r *rest) hangup(ctx context.Context, channel, reason string) error {
	q := url.Values{}
	if reason != "" {
		q.Set("reason", reason)
	}
	err := r.do(ctx, http.MethodDelete, "/channels/"+url.PathEscape(channel), q, nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// play starts one playback with the id we chose, so that its events can
// be matched before the reply arrives (Asterisk may send PlaybackStarted
// first).
func (r *rest) play(ctx context.Context, channel, playbackID, media, lang string) error {
	q := url.Values{"media": {media}}
	if lang != "" {
		q.Set("lang", lang)
	}
	return r.do(ctx, http.MethodPost, "/channels/"+url.PathEscape(channel)+"/play/"+url.PathEscape(playbackID), q, nil, nil)
}

// stopPlayback is DELETE /playbacks/{id}; one that already finished is no
// error.
func (r *rest) stopPlayback(ctx context.Context, id string) error {
	err := r.do(ctx, http.MethodDelete, "/playbacks/"+url.PathEscape(id), nil, nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// originate is POST /channels/{channelId}: a call to endpoint that enters
// app with appArgs once answered.
func (r *rest) originate(ctx context.Context, channelID, endpoint, app, appArgs, callerID string, timeout time.Duration) error {
	q := url.Values{
		"endpoint": {endpoint},
		"app":      {app},
		"appArgs":  {appArgs},
		"timeout":  {strconv.Itoa(max(1, int(timeout.Round(time.Second)/time.Second)))},
	}
	if callerID != "" {
		q.Set("callerId", callerID)
	}
	return r.do(ctx, http.MethodPost, "/channels/"+url.PathEscape(channelID), q, nil, nil)
}

func (r *rest) createBridge(ctx context.Context, id, name string) error {
	q := url.Values{"type": {"mixing,dtmf_events"}, "name": {name}}
	return r.do(ctx, http.MethodPost, "/bridges/"+url.PathEscape(id), q, nil, nil)
}

// addChannels adds channels to bridge; with inhibitIdentity, none of
// them learns the others' identity (no connected line updates), which
// Asterisk would otherwise send to each member's phone.
func (r *rest) addChannels(ctx context.Context, bridge string, inhibitIdentity bool, channels ...string) error {
	q := url.Values{"channel": {strings.Join(channels, ",")}}
	if inhibitIdentity {
		q.Set("inhibitConnectedLineUpdates", "true")
	}
	return r.do(ctx, http.MethodPost, "/bridges/"+url.PathEscape(bridge)+"/addChannel", q, nil, nil)
}

// removeChannel is no error when the channel already left (422) or the
// bridge is gone (404).
func (r *rest) removeChannel(ctx context.Context, bridge, channel string) error {
	q := url.Values{"channel": {channel}}
	err := r.do(ctx, http.MethodPost, "/bridges/"+url.PathEscape(bridge)+"/removeChannel", q, nil, nil)
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		return nil
	}
	return err
}

func (r *rest) deleteBridge(ctx context.Context, bridge string) error {
	err := r.do(ctx, http.MethodDelete, "/bridges/"+url.PathEscape(bridge), nil, nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
