package sip

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hotline12345/hotline/internal/redistest"
)

// TestMain fails the package's tests (the in-package ones and the sipp
// ones of sip_test, which share the binary) when goroutines outlive them,
// and stops the Redis Sentinel and Cluster the registrar's tests share.
func TestMain(m *testing.M) {
	code := redistest.RunTests(m)
	if code == 0 {
		if err := settled(leakWait); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines outlived the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// leakWait is how long goroutines may take to end after their call. SIP
// keeps some for a while by design: an INVITE server transaction hands an
// ACK to a goroutine that lives until Timer I (T4, 5 s on UDP, RFC 3261
// §17.2.1).
const leakWait = 10 * time.Second

// settled waits up to d for every goroutine not excluded by opts to end,
// and returns goleak's report of those that did not.
func settled(d time.Duration, opts ...goleak.Option) error {
	deadline := time.Now().Add(d)
	for {
		err := goleak.Find(opts...) // retries for about half a second
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}
