package asterisk

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/media"
)

// rtpStatsVar is the channel variable in which Asterisk leaves a channel's
// RTP statistics when its media ends.
//
// chan_pjsip, as the channel hangs up, and ARI's DELETE /channels/{id},
// before its soft hang-up, call ast_rtp_instance_set_stats_vars
// (main/rtp_engine.c), which sets five variables, each only when it is not
// set yet: RTPAUDIOQOS, RTPAUDIOQOSJITTER, RTPAUDIOQOSLOSS, RTPAUDIOQOSRTT
// and RTPAUDIOQOSMES. ARI sends each as a ChannelVarset, in that order,
// before ChannelHangupRequest and StasisEnd. Only RTPAUDIOQOS has the
// call's totals; the other four are the minimum, maximum, mean and
// standard deviation of each RTCP interval's figures, which the record
// does not keep. A channel in a two-party bridge also leaves its figures
// on its peer as RTPAUDIOQOSBRIDGED and so on: those are the other leg's
// and are ignored.
//
// RTPAUDIOQOS is ast_rtp_instance_get_quality's
//
//	ssrc=%u;themssrc=%u;lp=%u;rxjitter=%f;rxcount=%u;txjitter=%f;txcount=%u;rlp=%u;rtt=%f;rxmes=%f;txmes=%f
//
// with the figures res_rtp_asterisk.c's ast_rtp_get_stat gives (Asterisk
// 22.10). The jitters and the MES are swapped against their names there
// (txjitter is rtp->rxjitter, rxjitter rtcp->reported_jitter); what each
// field is:
//
//   - rxcount, txcount: RTP packets Asterisk received from the far end and
//     sent to it over the whole call.
//   - lp: the far end's packets lost on the way, cumulative (the extended
//     highest sequence number less the first, plus one, less rxcount, RFC
//     3550 A.3), as Asterisk last worked it out for an RTCP report of its
//     own: every rtcpinterval (rtp.conf, 5 s by default) while RTP flows.
//     Losses after its last report, in the call's last seconds, are not
//     in it; rxcount is up to date.
//   - txjitter: Asterisk's interarrival jitter of the far end's RTP (RFC
//     3550 A.8) at the end, in seconds (ast_samp2sec of the jitter in
//     timestamp units).
//   - rlp, rxjitter: the far end's cumulative loss count of Asterisk's
//     packets and its interarrival jitter of them, in seconds, from its
//     last RTCP receiver report; 0 until one comes. rlp is the report's
//     24-bit field read unsigned: a far end counting more duplicates than
//     losses reports a huge number.
//   - rtt: the round trip from the far end's last report answering a
//     sender report of Asterisk's (LSR and DLSR, RFC 3550 6.4.1), in
//     seconds; 0 until then.
//   - txmes, rxmes: Asterisk's "media experience score" (0–100) of the
//     RTP it received, worked out at each of its own reports, and the same
//     from the far end's reports; a score is at least 20, so rxmes above 0
//     says the far end reported.
//   - ssrc, themssrc: the two streams' SSRCs; themssrc is 0 until the far
//     end sends.
const rtpStatsVar = "RTPAUDIOQOS"

// rtpStatsFields are the fields of RTPAUDIOQOS hotline reads.
var rtpStatsFields = map[string]bool{
	"lp": true, "rxjitter": true, "rxcount": true, "txjitter": true, "txcount": true,
	"rlp": true, "rtt": true, "rxmes": true, "txmes": true,
}

// rtpStats are the figures of an RTPAUDIOQOS value, by field name.
type rtpStats map[string]float64

// parseRTPStats reads an RTPAUDIOQOS value leniently: fields are
// "name=number" separated by ";", blanks around them ignored, as are
// unknown fields; a field whose number does not parse, or is negative or
// not finite (Asterisk writes none such), is left out, and a field given
// twice has its last value.
func parseRTPStats(v string) rtpStats {
	st := rtpStats{}
	for part := range strings.SplitSeq(v, ";") {
		name, num, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok || !rtpStatsFields[name] {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			continue
		}
		st[name] = f
	}
	return st
}

// quality is the call quality of the statistics: nil when Asterisk
// received no RTP from the far end (or rxcount is missing), as the
// embedded backend leaves it for a call without media. Loss is lp of
// rxcount+lp; jitter txjitter; the far end's view (rlp of txcount,
// rxjitter) only when it sent a report, and the round trip only when it
// answered one of Asterisk's. The MOS is the embedded backend's estimate
// from the same figures (media.StreamMOS).
func (st rtpStats) quality() *calllog.Quality {
	received := st["rxcount"]
	if received <= 0 {
		return nil
	}
	lost := st["lp"]
	q := &calllog.Quality{
		PacketsReceived: uint64(received),
		PacketsExpected: uint64(received + lost),
		PacketsLost:     int64(lost),
		LossRatio:       lost / (received + lost),
		JitterMS:        1000 * st["txjitter"],
	}
	loss, jitter, rtt := q.LossRatio, st["txjitter"], 0.0
	if r := st["rtt"]; r > 0 {
		rtt = r
		ms := 1000 * r
		q.RTTMS = &ms
	}
	// A far end that sent no report leaves its figures at 0; one figure
	// above 0 (rxmes is once it reports) says it did.
	if st["rxmes"] > 0 || st["rlp"] > 0 || st["rxjitter"] > 0 || rtt > 0 {
		if j, ok := st["rxjitter"]; ok {
			ms := 1000 * j
			q.RemoteJitterMS = &ms
			jitter = max(jitter, j)
		}
		if rl, ok := st["rlp"]; ok && st["txcount"] > 0 {
			ratio := min(rl/st["txcount"], 1)
			q.RemoteLossRatio = &ratio
			loss = max(loss, ratio)
		}
	}
	q.MOS = media.StreamMOS(loss, seconds(jitter), seconds(rtt))
	return q
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
