// Package aritest is an in-process test double of Asterisk 22's REST
// Interface (ARI): an HTTP server for the REST resources under /ari and a
// websocket server for the Stasis event stream on /ari/events, faithful to
// the traffic recorded from Asterisk 22.10.1 in the project's
// ari-transcripts (copies in testdata/). The ARI backend and the call-flow
// conformance suite run over it where Asterisk itself cannot be installed.
//
// # Starting it
//
//	srv := aritest.Start(t, aritest.Options{Speed: 10})
//	// srv.URL() is "http://127.0.0.1:PORT/ari", srv.WebsocketURL() is
//	// "ws://127.0.0.1:PORT/ari/events"; user and password "hotline".
//
// New(opts) starts one outside a test; Close stops it and everything it
// started.
//
// # Driving the far ends
//
// Inbound places a call from the carrier trunk (endpoint PJSIP/citizen,
// context from-trunk) into Stasis(app): the app receives StasisStart with
// state Ring and no arguments; the caller id is a number or
// `"Name" <number>`. With no socket holding the application it returns
// ErrStasisFailed and no channel stays. The returned Party is the caller's
// side:
// Press sends an RFC 4733 key (one ChannelDtmfReceived when the key ends),
// SendMedia says what Asterisk counted of the caller's audio (packets
// received and lost, jitter, the caller's RTCP report), which its hang-up
// reports, Hangup sends the caller's BYE, Notes reports what the caller
// experiences
// (answered, prompts started and finished, keys sent to it, bridged and
// unbridged, hung up by Asterisk with a Q.850 cause) and Done is closed when
// the channel is gone.
//
// Agents' phones are endpoints reached by originate (POST /ari/channels with
// endpoint=PJSIP/NAME): SetEndpoint says how each one answers (after a delay,
// busy with 486, declining with 486 after ringing, or never), its caller id
// and in which dialplan context it sits. An endpoint that was never set
// cannot be allocated (500 {"error":"Allocation failed"}), as on a real
// Asterisk an endpoint with no registered phone. Each originated channel that
// answers and enters Stasis is handed to the test on Originated, as a Party
// the test hangs up as the agent. Local/s@local-test, the recording's local channel, answers at
// once and creates its ;2 half with that half's events.
//
// # Faults
//
// DropWebsockets closes every event socket (a close frame, or an abrupt TCP
// close for 1006), Freeze stops a socket's traffic both ways without closing
// it (a half-open connection: no pong, no close, events held back until
// resume), Restart makes Asterisk restart as after a crash (sockets dropped,
// every channel, bridge and playback gone without events, a new startup time
// and the same entity id), DropRequests leaves REST requests unanswered
// (their connections closed) while the sockets stay up, and Emit writes
// any frame to an application's socket (unknown event types, bursts).
// Channels, Bridges, Playbacks and Connected expose the state for leak
// checks after each test; AwaitConnected waits for an application's socket to
// come or go, and EntityID gives the entity id.
//
// # What is faithful to Asterisk 22
//
//   - Status codes and bodies: 200 for originate and bridge creation, 201 with
//     Location for play, 204 for answer, hangup, dtmf, addChannel,
//     removeChannel and stopping a playback; {"message":...} errors with
//     Asterisk's texts, and the one exception {"error":"Allocation failed"}
//     for an originate to an endpoint that cannot be created; 405 with Allow;
//     404 "Resource not found" for paths the double does not serve; 401 with
//     WWW-Authenticate for basic auth and api_key=user:pass alike.
//   - Parameters come from the query string, a form body or a JSON body
//     (Asterisk merges them, the body last; CyCoreSystems/ari sends JSON
//     bodies); integers are read like C's atoi; a list (media, channel) is
//     comma separated in the query but must be a JSON array in a body,
//     where a string is one value, commas and all; unknown parameters are
//     ignored; a body that is not JSON gives 400 "Error parsing request
//     body".
//   - Ids: channel "<unix seconds>.<counter>" (the two halves of a Local
//     channel are consecutive), names "PJSIP/<endpoint>-%08x" and
//     "Local/s@local-test-%08x;1", UUIDs for bridges, playbacks and SIP
//     Call-IDs of originated calls; timestamps like
//     "2026-11-27T00:49:48.221+0000".
//   - Every event carries asterisk_id and application, with the recorded key
//     order. Events a request causes are queued on the socket before its
//     HTTP response is written, so they may arrive before or after it, as
//     with Asterisk; each channel's events keep their order.
//   - Hangups: the caller's BYE gives five RTPAUDIOQOS* ChannelVarset, a
//     ChannelHangupRequest without cause, StasisEnd and no ChannelDestroyed
//     (the application's subscription ends at StasisEnd); DELETE gives the
//     same with {cause:32, soft:true}; originated channels stay subscribed and
//     end with ChannelVarset STASISSTATUS=SUCCESS and ChannelDestroyed; a
//     bridged agent's hang-up follows the nine recorded steps. A PJSIP
//     channel hanging up in a two-party bridge leaves each RTP statistic on
//     its peer too, suffixed BRIDGED, right after its own; each variable is
//     set once only (ast_rtp_instance_set_stats_vars).
//   - RTP statistics (RTPAUDIOQOS and the other four) in Asterisk's
//     formats, from what the double knows of the far end's RTP: none from
//     a far end that sent none (themssrc 0, rxcount 0, as recorded), 10
//     packets for each key (the recorded capture's), and what SendMedia
//     adds; txcount is one packet per 20 ms since the answer. As in
//     Asterisk, txjitter and txmes are Asterisk's view of what it
//     received, rxjitter, rlp, rtt and rxmes the far end's report. The
//     per-interval figures are those of a single RTCP interval.
//   - Originate: Dial "" / Ringing / RINGING / Up / ANSWER / STASISSTATUS ""
//     / StasisStart(Up, args); busy gives HangupRequest{17,486}, Dial BUSY and
//     ChannelDestroyed{17}; no answer gives only ChannelDestroyed{19} when
//     the timeout (default 30 s) expires. The channel's caller id is the
//     endpoint's with callerId's name and number in place, its connected
//     line callerId as given.
//   - Bridges: ChannelEnteredBridge per channel, then BRIDGEPEER and
//     BRIDGEPVTCALLID varsets and ChannelConnectedLine for a two-party bridge;
//     a channel added twice leaves and enters again; bridges are never
//     dissolved by Asterisk; DELETE of an empty bridge gives BridgeDestroyed,
//     DELETE of a bridge that holds channels gives ChannelLeftBridge and no
//     BridgeDestroyed. A bridge whose type lacks dtmf_events and proxy_media
//     and that holds exactly two PJSIP channels is bridged natively, as
//     Asterisk does: key presses pass end to end and raise no
//     ChannelDtmfReceived.
//   - Keys: one ChannelDtmfReceived per key when it ends, duration_ms 280
//     (the recorded RFC 4733 capture), no begin events.
//   - Playbacks on one channel run one after another; a list of media gives
//     PlaybackStarted per item and PlaybackContinuing between items; a
//     missing sound gives Started then Finished(failed); an unknown scheme
//     gives Started, never Finished, and the playback is gone at once;
//     DELETE gives Finished(done); a hang-up during a playback finishes it
//     as failed.
//   - Websockets: connecting registers the application and sends nothing; a
//     second socket for the same application sends ApplicationReplaced to
//     the old one, which then receives nothing more; closing the current
//     socket unregisters the application, which GET /applications still
//     lists while it has channels; events while no socket is connected are
//     lost, nothing is replayed on reconnect. Pings are answered. Handshake
//     errors: 426 without Upgrade, 401 for bad credentials, 400 without app.
//   - Event filters (PUT /applications/{app}/eventFilter) as applications.json
//     describes them.
//
// # What is not modelled
//
// Dialplan origination (extension/context without app), recordings,
// snoop, external media, mute/hold/silence, bridge playback and MOH, and
// channel functions in GET variable. Local/s@local-test's Wait(60) never
// expires. A channel's language is "en", the recorded endpoints'. Restart
// is a crash: `core restart now` would first hang up every channel with
// cause 4 (AST_SOFTHANGUP_SHUTDOWN). The channel-id counter keeps counting
// across Restart, so ids from before a restart are never reused.
//
// Behaviour the recordings do not show was checked against a real Asterisk
// 22.10.1 (the ARI backend's tests run on one, internal/asterisktest) and is
// marked as such where it is implemented: hanging up a channel that is still
// being dialled, a Local channel's far end hanging up, a caller or agent
// hanging up while bridged, an agent declining a ringing call, the caller id
// of an originated channel, and a restart keeping the entity id.
package aritest
