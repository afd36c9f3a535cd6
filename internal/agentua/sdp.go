package agentua

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// pcmuPT is PCMU's static payload type (RFC 3551 §6).
const pcmuPT = 0

// errNoAudio means an offer has no audio stream the phone can take: the
// phones speak PCMU only.
var errNoAudio = errors.New("agentua: no PCMU audio in the offer")

// offer is what the phone takes from an SDP offer.
type offer struct {
	remote  netip.AddrPort // where to send RTP
	eventPT int            // telephone-event's payload type; -1 when not offered
}

// parseOffer reads the first audio stream of an offer (RFC 3264 §5) that
// carries PCMU.
func parseOffer(body []byte) (offer, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return offer{}, fmt.Errorf("agentua: SDP offer: %w", err)
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 ||
			!slices.Contains(md.MediaName.Formats, strconv.Itoa(pcmuPT)) {
			continue
		}
		ci := md.ConnectionInformation
		if ci == nil {
			ci = sd.ConnectionInformation
		}
		if ci == nil || ci.Address == nil {
			return offer{}, fmt.Errorf("%w: no connection address", errNoAudio)
		}
		ip, err := netip.ParseAddr(ci.Address.Address)
		if err != nil {
			return offer{}, fmt.Errorf("%w: connection address %q", errNoAudio, ci.Address.Address)
		}
		o := offer{remote: netip.AddrPortFrom(ip, uint16(md.MediaName.Port.Value)), eventPT: -1}
		for _, a := range md.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			pt, enc, ok := strings.Cut(a.Value, " ")
			if !ok || !strings.EqualFold(enc, "telephone-event/8000") || !slices.Contains(md.MediaName.Formats, pt) {
				continue
			}
			if n, err := strconv.Atoi(pt); err == nil && n >= 96 && n <= 127 {
				o.eventPT = n
			}
		}
		return o, nil
	}
	return offer{}, errNoAudio
}

// answerSDP answers o with PCMU, and telephone-event when it was offered
// (RFC 4733 §7.1.1), on the phones' RTP socket.
func answerSDP(o offer, local netip.AddrPort, sessionID uint64) ([]byte, error) {
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{
			Media: "audio", Port: sdp.RangedPort{Value: int(local.Port())},
			Protos: []string{"RTP", "AVP"}, Formats: []string{strconv.Itoa(pcmuPT)},
		},
	}
	md.WithValueAttribute("rtpmap", fmt.Sprintf("%d PCMU/8000", pcmuPT))
	if o.eventPT >= 0 {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(o.eventPT))
		md.WithValueAttribute("rtpmap", fmt.Sprintf("%d telephone-event/8000", o.eventPT))
		md.WithValueAttribute("fmtp", fmt.Sprintf("%d 0-16", o.eventPT))
	}
	md.WithValueAttribute("ptime", "20")
	md.WithPropertyAttribute("sendrecv")
	ipType := "IP4"
	if local.Addr().Is6() {
		ipType = "IP6"
	}
	sd := sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "agent", SessionID: sessionID, SessionVersion: 1,
			NetworkType: "IN", AddressType: ipType, UnicastAddress: local.Addr().String(),
		},
		SessionName: "agent",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN", AddressType: ipType, Address: &sdp.Address{Address: local.Addr().String()},
		},
		TimeDescriptions:  []sdp.TimeDescription{{}},
		MediaDescriptions: []*sdp.MediaDescription{md},
	}
	return sd.Marshal()
}
