package sipptest

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// UAS is sipp running a server scenario, as a peer (a carrier's trunk)
// that answers the requests sent to Addr.
type UAS struct {
	Addr netip.AddrPort

	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

// StartUAS runs the scenario file xml on host (a loopback address such as
// 127.0.0.2, a "machine" of its own) and a free port, over UDP ("u1") or
// TCP ("t1", one connection per peer) as transport says, until the test
// ends. sipp answers as soon as it has bound the port; a test that must
// know when waits for a first answer.
func StartUAS(t testing.TB, xml string, host netip.Addr, transport string) *UAS {
	t.Helper()
	bin := Binary(t)
	xml, err := filepath.Abs(xml)
	if err != nil {
		t.Fatal(err)
	}
	if transport == "" {
		transport = "u1"
	}
	network := "udp"
	if transport != "u1" {
		network = "tcp"
	}
	port, err := freePort(network, host)
	if err != nil {
		t.Fatal(err)
	}
	mp, err := FreeMediaPort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	u := &UAS{Addr: netip.AddrPortFrom(host, uint16(port)), done: make(chan struct{})}
	u.cmd = exec.Command(bin, "-sf", xml, "-i", host.String(), "-p", strconv.Itoa(port), "-mp", strconv.Itoa(mp),
		"-t", transport, "-nostdin", "-trace_err", "-error_file", filepath.Join(dir, "errors.log"))
	u.cmd.Dir = dir
	u.cmd.Stdout, u.cmd.Stderr = (*lockedWriter)(u), (*lockedWriter)(u)
	if err := u.cmd.Start(); err != nil {
		t.Fatalf("sipp: %v", err)
	}
	go func() {
		defer close(u.done)
		_ = u.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = u.cmd.Process.Signal(os.Interrupt)
		select {
		case <-u.done:
		case <-time.After(5 * time.Second):
			_ = u.cmd.Process.Kill()
			<-u.done
		}
		if t.Failed() {
			errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
			t.Logf("sipp %s:\n%s\n%s", xml, u.Output(), errs)
		}
	})
	return u
}

// Output is what sipp wrote so far.
func (u *UAS) Output() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.out.String()
}

type lockedWriter UAS

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(p)
}

// freePort returns a port of host the kernel just handed out, on network
// (udp or tcp).
func freePort(network string, host netip.Addr) (int, error) {
	addr := netip.AddrPortFrom(host, 0).String()
	if network == "tcp" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return 0, err
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
