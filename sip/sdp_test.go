package sip

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"

	"github.com/hotline12345/hotline/media"
)

// sdpText joins lines with CRLF, as RFC 4566 §5 writes them.
func sdpText(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

// audioOffer is an offer of one audio line at 127.0.0.1:4000 with the given
// m-line formats and attribute lines.
func audioOffer(formats string, attrs ...string) []byte {
	lines := []string{
		"v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
		"m=audio 4000 RTP/AVP " + formats,
	}
	return sdpText(append(lines, attrs...)...)
}

var accepted = []media.Codec{media.PCMU, media.PCMA}

func TestNegotiateCodec(t *testing.T) {
	for _, tc := range []struct {
		name    string
		offer   []byte
		codec   string
		pt      uint8
		dtmfPT  int
		formats []string // of the answer's audio line
		rtpmap  []string
	}{
		{
			name:  "PCMA first wins",
			offer: audioOffer("8 0", "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000"),
			codec: "PCMA", pt: 8, dtmfPT: -1, formats: []string{"8"}, rtpmap: []string{"8 PCMA/8000"},
		},
		{
			name:  "unsupported first, then PCMU",
			offer: audioOffer("18 0 8", "a=rtpmap:18 G729/8000"),
			codec: "PCMU", pt: 0, dtmfPT: -1, formats: []string{"0"}, rtpmap: []string{"0 PCMU/8000"},
		},
		{
			name:  "static types without rtpmap",
			offer: audioOffer("8 0"),
			codec: "PCMA", pt: 8, dtmfPT: -1, formats: []string{"8"}, rtpmap: []string{"8 PCMA/8000"},
		},
		{
			name:  "dynamic payload types with rtpmap",
			offer: audioOffer("96 97 98", "a=rtpmap:96 opus/48000/2", "a=rtpmap:97 pcma/8000", "a=rtpmap:98 telephone-event/8000", "a=fmtp:98 0-15"),
			codec: "PCMA", pt: 97, dtmfPT: 98, formats: []string{"97", "98"},
			rtpmap: []string{"97 PCMA/8000", "98 telephone-event/8000"},
		},
		{
			name:  "telephone-event payload type echoed",
			offer: audioOffer("0 100", "a=rtpmap:0 PCMU/8000", "a=rtpmap:100 telephone-event/8000"),
			codec: "PCMU", pt: 0, dtmfPT: 100, formats: []string{"0", "100"},
			rtpmap: []string{"0 PCMU/8000", "100 telephone-event/8000"},
		},
		{
			name:  "telephone-event at another clock rate is not DTMF for us",
			offer: audioOffer("0 101 102", "a=rtpmap:101 telephone-event/48000", "a=rtpmap:102 telephone-event/8000"),
			codec: "PCMU", pt: 0, dtmfPT: 102, formats: []string{"0", "102"},
			rtpmap: []string{"0 PCMU/8000", "102 telephone-event/8000"},
		},
		{
			name:  "a static type remapped by rtpmap is what the rtpmap says",
			offer: audioOffer("0 8", "a=rtpmap:0 G729/8000"),
			codec: "PCMA", pt: 8, dtmfPT: -1, formats: []string{"8"}, rtpmap: []string{"8 PCMA/8000"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOffer(tc.offer, accepted)
			if err != nil {
				t.Fatal(err)
			}
			if o.codec.Name != tc.codec || o.codec.PayloadType != tc.pt || o.dtmfPT != tc.dtmfPT {
				t.Errorf("chose %s/%d dtmf %d, want %s/%d dtmf %d", o.codec.Name, o.codec.PayloadType, o.dtmfPT, tc.codec, tc.pt, tc.dtmfPT)
			}
			if want := netip.MustParseAddrPort("127.0.0.1:4000"); o.remote != want {
				t.Errorf("remote %s, want %s", o.remote, want)
			}
			ans := parseAnswer(t, o)
			md := ans.MediaDescriptions[0]
			if !slices.Equal(md.MediaName.Formats, tc.formats) {
				t.Errorf("answer formats %v, want %v", md.MediaName.Formats, tc.formats)
			}
			if got := attrValues(md, "rtpmap"); !slices.Equal(got, tc.rtpmap) {
				t.Errorf("answer rtpmap %q, want %q", got, tc.rtpmap)
			}
			if md.MediaName.Port.Value != 30000 || strings.Join(md.MediaName.Protos, "/") != "RTP/AVP" {
				t.Errorf("answer m-line %v", md.MediaName)
			}
		})
	}
}

// The server's own order only matters when the caller offers both: ours
// restricted to PCMA, the offer's PCMU is not taken.
func TestNegotiateRespectsOurCodecs(t *testing.T) {
	o, err := parseOffer(audioOffer("0 8"), []media.Codec{media.PCMA})
	if err != nil {
		t.Fatal(err)
	}
	if o.codec.Name != "PCMA" {
		t.Errorf("chose %s, want PCMA (the only one we accept)", o.codec.Name)
	}
}

func TestNegotiateRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		offer []byte
		want  error
	}{
		{"no supported codec", audioOffer("18 9", "a=rtpmap:18 G729/8000", "a=rtpmap:9 G722/8000"), ErrNoCommonCodec},
		{"only telephone-event", audioOffer("101", "a=rtpmap:101 telephone-event/8000"), ErrNoCommonCodec},
		{"dynamic type without rtpmap", audioOffer("96"), ErrNoCommonCodec},
		{"no audio line", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
			"m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000"), ErrNoAudio},
		{"no media at all", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0"), ErrNoAudio},
		{"SRTP only", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
			"m=audio 4000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"), ErrNoCommonCodec},
		{"audio rejected with port 0", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
			"m=audio 0 RTP/AVP 0"), ErrNoCommonCodec},
		{"not SDP", []byte("hello, world"), ErrBadSDP},
		{"truncated", []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns="), ErrBadSDP},
		{"m-line with no port", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
			"m=audio RTP/AVP 0"), ErrBadSDP},
		{"no connection address", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0",
			"m=audio 4000 RTP/AVP 0"), ErrBadSDP},
		{"connection address a host name", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 pbx.example.com", "t=0 0",
			"m=audio 4000 RTP/AVP 0"), ErrBadSDP},
		{"connection not IN", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=ATM NSAP 47.0005.80.ffe100", "t=0 0",
			"m=audio 4000 RTP/AVP 0"), ErrBadSDP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOffer(tc.offer, accepted)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v (offer %+v), want %v", err, o, tc.want)
			}
		})
	}
}

func TestNegotiateDirection(t *testing.T) {
	for _, tc := range []struct {
		name       string
		offer      []byte
		send, recv bool
		answer     string
	}{
		{"default", audioOffer("0"), true, true, "sendrecv"},
		{"sendrecv", audioOffer("0", "a=sendrecv"), true, true, "sendrecv"},
		{"sendonly is hold", audioOffer("0", "a=sendonly"), false, true, "recvonly"},
		{"recvonly", audioOffer("0", "a=recvonly"), true, false, "sendonly"},
		{"inactive", audioOffer("0", "a=inactive"), false, false, "inactive"},
		{"session level", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0", "a=sendonly",
			"m=audio 4000 RTP/AVP 0"), false, true, "recvonly"},
		{"media level overrides session level", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0", "a=inactive",
			"m=audio 4000 RTP/AVP 0", "a=sendrecv"), true, true, "sendrecv"},
		// RFC 3264 §8.4: c=0.0.0.0 is the RFC 2543 hold; nothing flows either way.
		{"c=0.0.0.0", sdpText("v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "c=IN IP4 0.0.0.0", "t=0 0",
			"m=audio 4000 RTP/AVP 0"), false, false, "inactive"},
		{"media c=0.0.0.0 under a session address", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
			"m=audio 4000 RTP/AVP 0", "c=IN IP4 0.0.0.0"), false, false, "inactive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOffer(tc.offer, accepted)
			if err != nil {
				t.Fatal(err)
			}
			if o.send != tc.send || o.recv != tc.recv {
				t.Errorf("send %v recv %v, want %v %v", o.send, o.recv, tc.send, tc.recv)
			}
			if got := direction1(parseAnswer(t, o).MediaDescriptions[0]); got != tc.answer {
				t.Errorf("answer a=%s, want a=%s", got, tc.answer)
			}
		})
	}
}

// RFC 3264 §6: the answer has as many m-lines as the offer, in its order,
// and a stream it does not take is marked with port 0.
func TestNegotiateKeepsEveryMediaLine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		offer []byte
		audio int
	}{
		{"audio then video", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
			"m=audio 4000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000",
			"m=video 4002 RTP/AVP 96", "a=rtpmap:96 H264/90000"), 0},
		{"video then audio", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
			"m=video 4002 RTP/AVP 96", "a=rtpmap:96 H264/90000",
			"m=audio 4000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000"), 1},
		{"SRTP audio then plain audio", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
			"m=audio 4002 RTP/SAVP 0", "m=audio 4000 RTP/AVP 0"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOffer(tc.offer, accepted)
			if err != nil {
				t.Fatal(err)
			}
			var offer sdp.SessionDescription
			if err := offer.Unmarshal(tc.offer); err != nil {
				t.Fatal(err)
			}
			ans := parseAnswer(t, o)
			if len(ans.MediaDescriptions) != len(offer.MediaDescriptions) {
				t.Fatalf("answer has %d m-lines, offer %d", len(ans.MediaDescriptions), len(offer.MediaDescriptions))
			}
			for i, md := range ans.MediaDescriptions {
				if md.MediaName.Media != offer.MediaDescriptions[i].MediaName.Media {
					t.Errorf("m-line %d is %s, offer's is %s", i, md.MediaName.Media, offer.MediaDescriptions[i].MediaName.Media)
				}
				if i == tc.audio {
					if md.MediaName.Port.Value != 30000 {
						t.Errorf("audio m-line %d port %d, want ours", i, md.MediaName.Port.Value)
					}
					continue
				}
				if md.MediaName.Port.Value != 0 || len(md.MediaName.Formats) == 0 {
					t.Errorf("m-line %d: %v, want port 0 with the offer's formats", i, md.MediaName)
				}
			}
		})
	}
}

// The answer is well-formed SDP that says who we are: pion parses it back,
// the origin's version is the one given, and the session and connection
// carry our address.
func TestAnswerParsesBack(t *testing.T) {
	for _, local := range []string{"127.0.0.1:30000", "[::1]:30000"} {
		t.Run(local, func(t *testing.T) {
			o, err := parseOffer(audioOffer("0 101", "a=rtpmap:101 telephone-event/8000"), accepted)
			if err != nil {
				t.Fatal(err)
			}
			ap := netip.MustParseAddrPort(local)
			body, err := answerSDP(o, ap, 42, 7)
			if err != nil {
				t.Fatal(err)
			}
			var ans sdp.SessionDescription
			if err := ans.Unmarshal(body); err != nil {
				t.Fatalf("answer does not parse: %v\n%s", err, body)
			}
			typ := "IP4"
			if ap.Addr().Is6() {
				typ = "IP6"
			}
			if ans.Origin.SessionID != 42 || ans.Origin.SessionVersion != 7 || ans.Origin.AddressType != typ ||
				ans.Origin.UnicastAddress != ap.Addr().String() {
				t.Errorf("origin %+v", ans.Origin)
			}
			if ans.ConnectionInformation == nil || ans.ConnectionInformation.Address.Address != ap.Addr().String() ||
				ans.ConnectionInformation.AddressType != typ {
				t.Errorf("connection %+v", ans.ConnectionInformation)
			}
			md := ans.MediaDescriptions[0]
			if got := attrValues(md, "fmtp"); len(got) != 1 || !strings.HasPrefix(got[0], "101 0-1") {
				t.Errorf("fmtp %q, want the telephone-event events", got)
			}
			if got := attrValues(md, "ptime"); !slices.Equal(got, []string{"20"}) {
				t.Errorf("ptime %q, want 20", got)
			}
			// The offer parses again as an offer: another UA taking our
			// answer as its offer agrees on the codec.
			back, err := parseOffer(body, accepted)
			if err != nil || back.codec.Name != "PCMU" || back.dtmfPT != 101 || back.remote != ap {
				t.Errorf("answer as an offer: %+v, %v", back, err)
			}
		})
	}
}

func parseAnswer(t *testing.T, o offer) *sdp.SessionDescription {
	t.Helper()
	body, err := answerSDP(o, netip.MustParseAddrPort("127.0.0.1:30000"), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		t.Fatalf("answer does not parse: %v\n%s", err, body)
	}
	if len(sd.MediaDescriptions) == 0 {
		t.Fatalf("answer without media:\n%s", body)
	}
	return &sd
}

func attrValues(md *sdp.MediaDescription, key string) []string {
	var out []string
	for _, a := range md.Attributes {
		if a.Key == key {
			out = append(out, a.Value)
		}
	}
	return out
}

// direction1 is the one direction attribute of a media line.
func direction1(md *sdp.MediaDescription) string {
	var dirs []string
	for _, a := range md.Attributes {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			dirs = append(dirs, a.Key)
		}
	}
	if len(dirs) != 1 {
		return strings.Join(dirs, ",")
	}
	return dirs[0]
}

// TestNegotiateRTCPPort: a=rtcp (RFC 3605) names the peer's RTCP port;
// without it, or when it cannot be read, RTCP goes to the port above RTP.
func TestNegotiateRTCPPort(t *testing.T) {
	for _, tc := range []struct {
		attrs []string
		port  uint16
	}{
		{nil, 0},
		{[]string{"a=rtcp:4005"}, 4005},
		{[]string{"a=rtcp:53020 IN IP4 126.16.64.4"}, 53020},
		{[]string{"a=rtcp:x"}, 0},
		{[]string{"a=rtcp:70000"}, 0},
	} {
		o, err := parseOffer(audioOffer("0", tc.attrs...), accepted)
		if err != nil {
			t.Fatal(err)
		}
		if o.rtcpPort != tc.port {
			t.Errorf("%q: RTCP port %d, want %d", tc.attrs, o.rtcpPort, tc.port)
		}
	}
}
