package agentua

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func sdpOf(lines ...string) []byte { return []byte(strings.Join(lines, "\r\n") + "\r\n") }

// The phone answers the first audio stream carrying PCMU, at the
// connection address of the media or, failing that, of the session (RFC
// 4566 §5.7), and takes telephone-event at whatever payload type it is
// offered.
func TestParseOffer(t *testing.T) {
	head := []string{"v=0", "o=hotline 1 1 IN IP4 127.0.0.1", "s=-"}
	for _, tc := range []struct {
		name    string
		body    []byte
		want    offer
		wantErr error
	}{
		{
			name: "session connection, PCMA first, event 101",
			body: sdpOf(append(head, "c=IN IP4 127.0.0.1", "t=0 0", "m=audio 20000 RTP/AVP 8 0 101",
				"a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000")...),
			want: offer{remote: netip.MustParseAddrPort("127.0.0.1:20000"), eventPT: 101},
		},
		{
			name: "media connection wins, event 96",
			body: sdpOf(append(head, "c=IN IP4 10.0.0.1", "t=0 0", "m=audio 30002 RTP/AVP 0 96",
				"c=IN IP4 127.0.0.2", "a=rtpmap:96 telephone-event/8000")...),
			want: offer{remote: netip.MustParseAddrPort("127.0.0.2:30002"), eventPT: 96},
		},
		{
			name: "no telephone-event",
			body: sdpOf(append(head, "c=IN IP4 127.0.0.1", "t=0 0", "m=audio 20000 RTP/AVP 0")...),
			want: offer{remote: netip.MustParseAddrPort("127.0.0.1:20000"), eventPT: -1},
		},
		{
			name: "a rejected stream before the one to take",
			body: sdpOf(append(head, "c=IN IP4 127.0.0.1", "t=0 0", "m=audio 0 RTP/AVP 0", "m=audio 20004 RTP/AVP 0")...),
			want: offer{remote: netip.MustParseAddrPort("127.0.0.1:20004"), eventPT: -1},
		},
		{
			name:    "A-law only",
			body:    sdpOf(append(head, "c=IN IP4 127.0.0.1", "t=0 0", "m=audio 20000 RTP/AVP 8", "a=rtpmap:8 PCMA/8000")...),
			wantErr: errNoAudio,
		},
		{
			name:    "no connection address",
			body:    sdpOf(append(head, "t=0 0", "m=audio 20000 RTP/AVP 0")...),
			wantErr: errNoAudio,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOffer(tc.body)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("offer %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The answer takes PCMU and the offered telephone-event type, on the
// phones' RTP address, and reads back as the offer it answers.
func TestAnswerReadsBack(t *testing.T) {
	local := netip.MustParseAddrPort("127.0.0.1:40000")
	body, err := answerSDP(offer{eventPT: 98}, local, 7)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseOffer(body)
	if err != nil || got != (offer{remote: local, eventPT: 98}) {
		t.Fatalf("answer %q reads as %+v, %v", body, got, err)
	}
}
