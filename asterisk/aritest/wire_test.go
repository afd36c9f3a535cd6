package aritest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v5"
	xws "golang.org/x/net/websocket"
)

// The ARI backend uses CyCoreSystems/ari v5.3.1. Its native client
// connects with golang.org/x/net/websocket (Origin http://localhost/, basic
// auth in a header), reads GET /asterisk/info, and decodes every frame with
// ari.DecodeEvent, whose timestamps must be exactly Asterisk's format. The
// double must satisfy all of it.
func TestCyCoreSystemsWire(t *testing.T) {
	s := Start(t, Options{Speed: 50})
	rc := newREST(s)
	ctx := testContext(t)

	cfg, err := xws.NewConfig(s.WebsocketURL()+"?app=hotline", "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("hotline:hotline")))
	ws, err := xws.DialConfig(cfg)
	if err != nil {
		t.Fatalf("the native client's handshake: %v", err)
	}
	defer ws.Close()

	var info ari.AsteriskInfo
	decode(t, rc.call(t, http.MethodGet, "/ari/asterisk/info", nil).want(t, http.StatusOK).body, &info)
	if info.SystemInfo.EntityID != "02:fc:00:00:00:01" || time.Time(info.StatusInfo.StartupTime).IsZero() {
		t.Errorf("asterisk info %+v", info)
	}

	next := func(want any) {
		t.Helper()
		if err := ws.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
			t.Fatal(err)
		}
		var data []byte
		if err := xws.Message.Receive(ws, &data); err != nil {
			t.Fatalf("receive: %v", err)
		}
		e, err := ari.DecodeEvent(data)
		if err != nil {
			t.Fatalf("ari.DecodeEvent: %v: %s", err, data)
		}
		if reflect.TypeOf(e) != reflect.TypeOf(want) {
			t.Fatalf("decoded %T, want %T: %s", e, want, data)
		}
		reflect.ValueOf(want).Elem().Set(reflect.ValueOf(e).Elem())
	}

	p := inbound(t, s)
	var start ari.StasisStart
	next(&start)
	if start.Channel.ID != p.ID() || start.Channel.State != "Ring" || start.Channel.Caller.Number != "13800138000" ||
		start.GetNode() != "02:fc:00:00:00:01" || start.GetApplication() != "hotline" || len(start.Args) != 0 ||
		time.Time(start.Timestamp).IsZero() {
		t.Errorf("StasisStart %+v", start)
	}

	var ch ari.ChannelData
	decode(t, rc.call(t, http.MethodGet, "/ari/channels/"+p.ID(), nil).want(t, http.StatusOK).body, &ch)
	if ch.ID != p.ID() || ch.Creationtime == nil || ch.Creationtime.Seconds == 0 || ch.Dialplan.Context != "from-trunk" {
		t.Errorf("channel %+v", ch)
	}

	// CyCoreSystems/ari plays with a JSON body to /play/{playbackId}.
	var pb ari.PlaybackData
	decode(t, rc.call(t, http.MethodPost, "/ari/channels/"+p.ID()+"/play/greeting", map[string]string{"media": "sound:hello-world"}).
		want(t, http.StatusCreated).body, &pb)
	if pb.ID != "greeting" || pb.State != "queued" || pb.TargetURI != "channel:"+p.ID() {
		t.Errorf("playback %+v", pb)
	}
	var started ari.PlaybackStarted
	next(&started)
	var finished ari.PlaybackFinished
	next(&finished)
	if finished.Playback.ID != "greeting" || finished.Playback.State != "done" {
		t.Errorf("PlaybackFinished %+v", finished.Playback)
	}

	var br ari.BridgeData
	decode(t, rc.call(t, http.MethodPost, "/ari/bridges/b1", map[string]string{"bridgeId": "b1", "type": "mixing", "name": "call"}).
		want(t, http.StatusOK).body, &br)
	rc.call(t, http.MethodPost, "/ari/bridges/b1/addChannel", map[string]string{"channel": p.ID()}).want(t, http.StatusNoContent)
	var entered ari.ChannelEnteredBridge
	next(&entered)
	if br.ID != "b1" || br.Type != "mixing" || entered.Bridge.ID != "b1" || len(entered.Bridge.ChannelIDs) != 1 {
		t.Errorf("bridge %+v, entered %+v", br, entered.Bridge)
	}

	// Hang-up as Channel.Hangup sends it: DELETE with reason=normal.
	rc.call(t, http.MethodDelete, "/ari/channels/"+p.ID()+"?reason=normal", nil).want(t, http.StatusNoContent)
	for range 5 {
		next(&ari.ChannelVarset{})
	}
	var req ari.ChannelHangupRequest
	next(&req)
	if req.Cause != 32 || !req.Soft {
		t.Errorf("hang-up request %+v", req)
	}
	next(&ari.ChannelLeftBridge{})
	next(&ari.StasisEnd{})

	if err := ws.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.AwaitConnected(ctx, "hotline", false); err != nil {
		t.Fatalf("the native client's close: %v", err)
	}
}

func decode(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, body)
	}
}
