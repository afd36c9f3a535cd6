// Package synthetic signs and checks the claim a synthetic probe's call
// makes about itself: the X-Hotline-Probe header of its INVITE,
//
//	X-Hotline-Probe: t=<unix seconds>,sig=<hex HMAC-SHA256(secret, t "." Call-ID)>
//
// The Call-ID binds the claim to one call and t to a few minutes, so a
// header seen once cannot make other calls probes. A call whose claim
// does not check out is an ordinary citizen's.
//
// Metrics are the families the probe (`hotline probe`) serves of its calls.
package synthetic

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is the SIP header a probe's INVITE carries.
const Header = "X-Hotline-Probe"

// MaxSkew is how far a claim's time may be from the hotline's clock.
const MaxSkew = 5 * time.Minute

// Errors of Verify.
var (
	ErrMalformed = errors.New("synthetic: malformed probe claim")
	ErrStale     = errors.New("synthetic: probe claim out of time")
	ErrSignature = errors.New("synthetic: probe claim badly signed")
	ErrNoSecret  = errors.New("synthetic: no secret to check a probe claim with")
)

// Sign is the header's value for the call callID at t.
func Sign(secret, callID string, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",sig=" + hex.EncodeToString(mac(secret, ts, callID))
}

// Verify checks the header's value v for the call callID at now: nil when
// it is signed with secret and its time is within MaxSkew of now.
func Verify(secret, callID, v string, now time.Time) error {
	if secret == "" {
		return ErrNoSecret
	}
	var ts, sig string
	for part := range strings.SplitSeq(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok:
			return fmt.Errorf("%w: %q", ErrMalformed, part)
		case k == "t":
			ts = val
		case k == "sig":
			sig = val
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("%w: want t=<unix>,sig=<hex>", ErrMalformed)
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: sig is not hex", ErrMalformed)
	}
	if !hmac.Equal(got, mac(secret, ts, callID)) {
		return ErrSignature
	}
	if d := now.Sub(time.Unix(unix, 0)); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("%w: %s from now", ErrStale, d.Round(time.Second))
	}
	return nil
}

func mac(secret, ts, callID string) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts + "." + callID))
	return h.Sum(nil)
}
