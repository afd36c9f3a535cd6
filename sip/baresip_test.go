package sip

// baresip (Debian's baresip-core) as an agent's softphone, run by
// internal/baresiptest: not registered anywhere, so the tests' Locator hands
// out its address as a registrar would.

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/hotline12345/hotline/internal/baresiptest"
)

// phoneBinding is where the phone takes requests, as a registrar keeps it.
func phoneBinding(p *baresiptest.Phone) Binding {
	return Binding{
		User:      p.User(),
		Contact:   fmt.Sprintf("sip:%s@%s", p.User(), p.Addr()),
		Source:    p.Addr(),
		Transport: "udp",
		Expires:   time.Now().Add(time.Hour),
		UserAgent: "baresip",
	}
}

// staticLocator is a Locator that knows a few phones.
type staticLocator map[string][]Binding

func (l staticLocator) Lookup(_ context.Context, user string) ([]Binding, error) {
	if b := l[user]; len(b) > 0 {
		return b, nil
	}
	return nil, ErrNotRegistered
}

// freePort returns a TCP port the kernel just handed out on loopback and
// took back: nothing listens there.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// toneLevel is the share of pcm's power at freq hertz.
func toneLevel(pcm []int16, freq float64) float64 { return baresiptest.ToneLevel(pcm, freq) }
