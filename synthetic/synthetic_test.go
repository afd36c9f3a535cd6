package synthetic

import (
	"errors"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	const secret, callID = "0123456789abcdef", "a84b4c76e66710@pc33.example.com"
	now := time.Unix(1_800_000_000, 0)
	good := Sign(secret, callID, now)
	for _, tc := range []struct {
		name, secret, callID, v string
		want                    error
	}{
		{"signed", secret, callID, good, nil},
		{"signed, within the skew", secret, callID, Sign(secret, callID, now.Add(-4*time.Minute)), nil},
		{"stale", secret, callID, Sign(secret, callID, now.Add(-6*time.Minute)), ErrStale},
		{"from the future", secret, callID, Sign(secret, callID, now.Add(6*time.Minute)), ErrStale},
		{"another call", secret, "other@example.com", good, ErrSignature},
		{"another secret", "fedcba9876543210", callID, good, ErrSignature},
		{"no secret", "", callID, good, ErrNoSecret},
		{"unsigned", secret, callID, "1", ErrMalformed},
		{"no sig", secret, callID, "t=1800000000", ErrMalformed},
		{"sig not hex", secret, callID, "t=1800000000,sig=zz", ErrMalformed},
	} {
		if err := Verify(tc.secret, tc.callID, tc.v, now); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("t=1800000000,sig=00")
	f.Fuzz(func(t *testing.T, v string) {
		_ = Verify("0123456789abcdef", "c", v, time.Unix(1_800_000_000, 0))
	})
}
