package aritest

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test must leave nothing running: the double's clock, sockets and
// HTTP server, and the clients the tests use.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
