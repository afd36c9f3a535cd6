package agentua

import (
	"testing"

	"go.uber.org/goleak"
)

// A stopped fleet leaves no goroutine behind: Stop returns once its calls,
// registrations, pacer, reader and SIP stack have ended.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
