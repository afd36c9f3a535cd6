package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal and returns its controlling side and the
// terminal a program would write to.
func openPTY(t *testing.T) (control, term *os.File) {
	t.Helper()
	control, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { control.Close() })
	// ptmx(4): unlock the terminal side, then learn its number.
	if err := unix.IoctlSetPointerInt(int(control.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(control.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	term, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { term.Close() })
	return control, term
}

// readLine reads from the pty until a line end arrives.
func readLine(t *testing.T, control *os.File) string {
	t.Helper()
	if err := control.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatalf("deadline: %v", err)
	}
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte("\n")) {
		n, err := control.Read(buf)
		if err != nil {
			t.Fatalf("read pty after %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	return string(got)
}

func TestAutoIsColouredConsoleAtATerminal(t *testing.T) {
	control, term := openPTY(t)
	l, err := New(Options{Format: "auto", Out: term})
	if err != nil {
		t.Fatal(err)
	}
	call := WithCall(l, "c-9")
	call.Info().Msg("answered")

	line := readLine(t, control)
	if json.Valid([]byte(strings.TrimSpace(line))) {
		t.Errorf("auto wrote JSON to a terminal: %q", line)
	}
	if !strings.Contains(line, "answered") || !strings.Contains(line, "c-9") {
		t.Errorf("terminal line %q lacks the message or call id", line)
	}
	if !strings.Contains(line, "\x1b[") {
		t.Errorf("terminal line %q has no colour", line)
	}
}
