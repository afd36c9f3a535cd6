package sip

import (
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/synthetic"
)

var _ ivr.Synthetic = (*call)(nil)

// Synthetic reports whether the call's INVITE carried a validly signed
// X-Hotline-Probe header: the synthetic probe's call.
func (c *call) Synthetic() bool { return c.synthetic }

// probeClaim checks req's X-Hotline-Probe header against the probe
// secret. A claim that does not check out (no secret here, a bad
// signature, out of time) is ignored, and the call is an ordinary
// citizen's; it is logged, sampled, for anyone can send the header.
func (s *Server) probeClaim(req *sip.Request, log zerolog.Logger) bool {
	h := req.GetHeader(synthetic.Header)
	if h == nil {
		return false
	}
	err := synthetic.Verify(s.opts.ProbeSecret, req.CallID().Value(), h.Value(), time.Now())
	if err != nil {
		s.sampledLog.Warn().Err(err).Str("sip_call_id", req.CallID().Value()).Str("source", req.Source()).
			Msg("sip: probe claim ignored: the call is an ordinary one")
		return false
	}
	log.Debug().Msg("sip: the synthetic probe's call")
	return true
}
