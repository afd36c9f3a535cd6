package caller

import (
	"testing"

	"go.uber.org/goleak"
)

// Every call must leave no goroutine behind: Call returns only once its
// receiver, sender, keypad and SIP stack have stopped.
//
// One goroutine is exempt: sipgo v1.7.3 opens a UDP connection, with a
// reader goroutine, for a request that is sent after its transport layer
// was closed (a BYE racing the shutdown of the in-process hotline these
// tests call), and nothing closes that connection afterwards.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/emiago/sipgo/sip.(*TransportUDP).readUDPConnection"))
}
