package media

import "time"

// The E-model (ITU-T G.107) simplified for G.711 on a network with random
// loss: no echo, no other impairment than delay and packet loss, so that
// R = R0 − Id − Ie,eff with the default R0 − Is of 93.2.
const (
	defaultR = 93.2
	// g711Ie is G.711's equipment impairment (ITU-T G.113 Appendix I).
	g711Ie = 0
	// g711Bpl is G.711's packet-loss robustness with packet loss
	// concealment (G.113 Appendix I: 25.1; without concealment 4.3). The
	// phones at either end of a call conceal lost frames, as every
	// current phone and softphone does.
	g711Bpl = 25.1
)

// RFactor is the E-model's transmission rating for G.711 with loss, the
// ratio of packets lost (0–1, random loss: BurstR = 1), and one-way mouth
// to ear delay.
func RFactor(loss float64, delay time.Duration) float64 {
	ppl := 100 * min(max(loss, 0), 1)
	ie := g711Ie + (95-g711Ie)*ppl/(ppl+g711Bpl)
	return defaultR - delayImpairment(delay) - ie
}

// delayImpairment is Id as the simplified E-model (Cole and Rosenbluth)
// approximates G.107's: 0.024·d, and 0.11·(d − 177.3) more beyond
// 177.3 ms, where interaction begins to suffer; d in milliseconds.
func delayImpairment(delay time.Duration) float64 {
	d := float64(delay) / float64(time.Millisecond)
	id := 0.024 * d
	if d > 177.3 {
		id += 0.11 * (d - 177.3)
	}
	return id
}

// MOSFromR is the estimated mean opinion score (conversational quality,
// 1–4.5) for a rating R (G.107 Annex B).
func MOSFromR(r float64) float64 {
	switch {
	case r <= 0:
		return 1
	case r >= 100:
		return 4.5
	}
	return 1 + 0.035*r + r*(r-60)*(100-r)*7e-6
}

// EstimateMOS estimates a G.711 call's MOS from its packet loss ratio and
// one-way delay.
func EstimateMOS(loss float64, delay time.Duration) float64 {
	return MOSFromR(RFactor(loss, delay))
}

// StreamMOS is a call's estimated MOS from what is known of both
// directions: the worse direction's loss ratio and interarrival jitter,
// and the round trip (0 when unknown). The one-way delay is half the
// round trip plus a jitter buffer of twice the jitter. Both backends
// estimate their calls' MOS with it, the embedded one from its own RTP
// and RTCP, the Asterisk one from Asterisk's RTP statistics.
func StreamMOS(loss float64, jitter, rtt time.Duration) float64 {
	return EstimateMOS(loss, rtt/2+2*jitter)
}
