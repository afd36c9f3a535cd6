package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/hotline12345/hotline/media"
)

// Why an offer cannot be answered; each maps to 488 Not Acceptable Here.
var (
	ErrBadSDP        = errors.New("malformed SDP")
	ErrNoAudio       = errors.New("no audio stream offered")
	ErrNoCommonCodec = errors.New("no supported codec offered")
)

// offer is what we take from a peer's SDP.
type offer struct {
	audioIndex int // index of the audio m-line we answer
	mlines     int // m-lines in the offer; the answer must have as many (RFC 3264 §6)
	mnames     []sdp.MediaName
	remote     netip.AddrPort
	rtcpPort   uint16 // the peer's a=rtcp port (RFC 3605), 0 for the one above remote's
	codec      media.Codec
	dtmfPT     int  // -1 when telephone-event was not offered
	send       bool // the peer wants our audio
	recv       bool // the peer sends audio
}

// parseOffer negotiates an SDP offer against the codecs we accept, in the
// peer's order of preference (RFC 3264 §6.1: the answerer should use the
// offerer's order).
func parseOffer(body []byte, accept []media.Codec) (offer, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		return offer{}, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	o := offer{audioIndex: -1, mlines: len(sd.MediaDescriptions), dtmfPT: -1}
	for i, md := range sd.MediaDescriptions {
		o.mnames = append(o.mnames, md.MediaName)
		if o.audioIndex >= 0 || md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
			continue
		}
		if !isPlainRTP(md.MediaName.Protos) {
			continue
		}
		codec, dtmfPT, ok := pickCodec(md, accept)
		if !ok {
			continue
		}
		addr, err := connectionAddr(&sd, md)
		if err != nil {
			return offer{}, err
		}
		o.audioIndex = i
		o.codec, o.dtmfPT = codec, dtmfPT
		o.remote = netip.AddrPortFrom(addr, uint16(md.MediaName.Port.Value))
		o.rtcpPort = rtcpPort(md)
		o.send, o.recv = direction(&sd, md)
		if addr.IsUnspecified() {
			// c=0.0.0.0 is the RFC 2543 way of putting a call on hold.
			o.send, o.recv = false, false
		}
	}
	if o.audioIndex < 0 {
		for _, md := range sd.MediaDescriptions {
			if md.MediaName.Media == "audio" {
				return offer{}, ErrNoCommonCodec
			}
		}
		return offer{}, ErrNoAudio
	}
	return o, nil
}

// rtcpPort reads a=rtcp (RFC 3605): the port of the peer's RTCP when it is
// not the one above its RTP. An address given with it is not followed:
// RTCP goes to the RTP's host, the only one we take reports from.
func rtcpPort(md *sdp.MediaDescription) uint16 {
	v, ok := md.Attribute("rtcp")
	if !ok {
		return 0
	}
	port, _, _ := strings.Cut(strings.TrimSpace(v), " ")
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return 0
	}
	return uint16(n)
}

func isPlainRTP(protos []string) bool {
	p := strings.Join(protos, "/")
	return p == "RTP/AVP" || p == "RTP/AVPF"
}

// pickCodec returns the first offered format we accept, and the offered
// telephone-event/8000 payload type.
func pickCodec(md *sdp.MediaDescription, accept []media.Codec) (media.Codec, int, bool) {
	rtpmap := map[int]string{}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, ok := strings.Cut(a.Value, " ")
		n, err := strconv.Atoi(pt)
		if ok && err == nil {
			rtpmap[n] = strings.ToLower(strings.TrimSpace(enc))
		}
	}
	dtmfPT := -1
	var chosen media.Codec
	found := false
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.Atoi(f)
		if err != nil || pt < 0 || pt > 127 {
			continue
		}
		enc, mapped := rtpmap[pt]
		if enc == "telephone-event/8000" {
			if dtmfPT < 0 {
				dtmfPT = pt
			}
			continue
		}
		if found {
			continue
		}
		for _, c := range accept {
			want := strings.ToLower(c.Name) + "/8000"
			if (mapped && (enc == want || strings.HasPrefix(enc, want+"/"))) || (!mapped && pt == int(c.PayloadType)) {
				chosen, found = c, true
				chosen.PayloadType = uint8(pt)
				break
			}
		}
	}
	return chosen, dtmfPT, found
}

func connectionAddr(sd *sdp.SessionDescription, md *sdp.MediaDescription) (netip.Addr, error) {
	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return netip.Addr{}, fmt.Errorf("%w: no connection address", ErrBadSDP)
	}
	if ci.NetworkType != "IN" || (ci.AddressType != "IP4" && ci.AddressType != "IP6") {
		return netip.Addr{}, fmt.Errorf("%w: connection %s %s not supported", ErrBadSDP, ci.NetworkType, ci.AddressType)
	}
	host, _, _ := strings.Cut(ci.Address.Address, "/") // multicast TTL suffix
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: connection address %q is not an IP address", ErrBadSDP, host)
	}
	return addr.Unmap(), nil
}

// direction reads the peer's a=sendrecv/sendonly/recvonly/inactive, media
// level first (RFC 4566 §6): send is whether the peer wants to receive our
// audio, recv whether it sends its own.
func direction(sd *sdp.SessionDescription, md *sdp.MediaDescription) (send, recv bool) {
	dir := "sendrecv"
	for _, attrs := range [][]sdp.Attribute{sd.Attributes, md.Attributes} {
		for _, a := range attrs {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				dir = a.Key
			}
		}
	}
	switch dir {
	case "sendonly":
		return false, true
	case "recvonly":
		return true, false
	case "inactive":
		return false, false
	}
	return true, true
}

// answerDirection mirrors the peer's direction (RFC 3264 §6.1).
func answerDirection(send, recv bool) string {
	switch {
	case send && recv:
		return "sendrecv"
	case send:
		return "sendonly"
	case recv:
		return "recvonly"
	}
	return "inactive"
}

// answerSDP builds our answer: the chosen codec and telephone-event on the
// audio line, every other offered line rejected with port 0.
func answerSDP(o offer, local netip.AddrPort, sessionID, version uint64) ([]byte, error) {
	sd := session(local, sessionID, version)
	for i := range o.mlines {
		if i != o.audioIndex {
			mn := o.mnames[i]
			mn.Port = sdp.RangedPort{Value: 0}
			sd.MediaDescriptions = append(sd.MediaDescriptions, &sdp.MediaDescription{MediaName: mn})
			continue
		}
		formats := []string{strconv.Itoa(int(o.codec.PayloadType))}
		md := &sdp.MediaDescription{
			MediaName: sdp.MediaName{
				Media: "audio", Port: sdp.RangedPort{Value: int(local.Port())},
				Protos: []string{"RTP", "AVP"},
			},
		}
		md.WithValueAttribute("rtpmap", fmt.Sprintf("%d %s/8000", o.codec.PayloadType, o.codec.Name))
		if o.dtmfPT >= 0 {
			formats = append(formats, strconv.Itoa(o.dtmfPT))
			md.WithValueAttribute("rtpmap", fmt.Sprintf("%d telephone-event/8000", o.dtmfPT))
			md.WithValueAttribute("fmtp", fmt.Sprintf("%d 0-16", o.dtmfPT))
		}
		md.MediaName.Formats = formats
		md.WithValueAttribute("ptime", "20")
		md.WithPropertyAttribute(answerDirection(o.send, o.recv))
		sd.MediaDescriptions = append(sd.MediaDescriptions, md)
	}
	return sd.Marshal()
}

// telephoneEventPT is the payload type we offer telephone-event on; any
// dynamic type would do (RFC 3551 §3), 101 is the one phones expect.
const telephoneEventPT = 101

// localOffer builds our offer, to an agent's phone or in the 200 to a
// caller's INVITE that had none: the codecs in order and telephone-event,
// sendrecv, 20 ms frames.
func localOffer(codecs []media.Codec, local netip.AddrPort, sessionID, version uint64) ([]byte, error) {
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{
			Media: "audio", Port: sdp.RangedPort{Value: int(local.Port())},
			Protos: []string{"RTP", "AVP"},
		},
	}
	for _, c := range codecs {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(c.PayloadType)))
		md.WithValueAttribute("rtpmap", fmt.Sprintf("%d %s/8000", c.PayloadType, c.Name))
	}
	md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(telephoneEventPT))
	md.WithValueAttribute("rtpmap", fmt.Sprintf("%d telephone-event/8000", telephoneEventPT))
	md.WithValueAttribute("fmtp", fmt.Sprintf("%d 0-16", telephoneEventPT))
	md.WithValueAttribute("ptime", "20")
	md.WithPropertyAttribute("sendrecv")
	sd := session(local, sessionID, version)
	sd.MediaDescriptions = []*sdp.MediaDescription{md}
	return sd.Marshal()
}

// session is the session part of our SDP, offer or answer: origin and
// connection on local's address.
func session(local netip.AddrPort, sessionID, version uint64) sdp.SessionDescription {
	ipType := "IP4"
	if local.Addr().Is6() {
		ipType = "IP6"
	}
	return sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "hotline", SessionID: sessionID, SessionVersion: version,
			NetworkType: "IN", AddressType: ipType, UnicastAddress: local.Addr().String(),
		},
		SessionName: "hotline",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN", AddressType: ipType, Address: &sdp.Address{Address: local.Addr().String()},
		},
		TimeDescriptions: []sdp.TimeDescription{{}},
	}
}
