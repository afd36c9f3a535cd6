package console_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/hotline12345/hotline/web/console/consoletest"
)

// browser is the one Chromium the tests share: starting one costs more
// than most of the tests.
var browser *consoletest.Browser

func TestMain(m *testing.M) {
	b, err := consoletest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	browser = b
	code := m.Run()
	b.Close()
	os.Exit(code)
}
