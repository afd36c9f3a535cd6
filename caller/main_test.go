package caller

import (
	"testing"

	"go.uber.org/goleak"
)

// Every call must leave no goroutine behind: Call returns only once its
// receiver, sender, keypad and SIP stack have stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
