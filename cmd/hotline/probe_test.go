package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
)

// TestProbeOnce: `hotline probe --once` signs its call, hears the whole
// intake of the test hotline, which keeps a synthetic record, and serves
// the probe's families while it runs.
func TestProbeOnce(t *testing.T) {
	t.Parallel()
	const secret = "probe-secret-0123456789"
	h := hotlinetest.Start(t, func(c *config.Config) { c.Probe.Secret = secret })
	env := func(k string) (string, bool) { return map[string]string{"HOTLINE_PROBE_SECRET": secret}[k], true }
	var metrics string
	ready := func(addr net.Addr) { metrics = "http://" + addr.String() + "/metrics" }
	var out, errOut bytes.Buffer
	err := runProbe(t.Context(), []string{"--once", "--listen", "127.0.0.1:0", "--from", "13900000095", h.URI()}, env, &out, &errOut, ready)
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, errOut.String())
	}
	if rec := h.Records.Final(t, "13900000095"); !rec.Synthetic || rec.QueuedAt != nil {
		t.Errorf("record synthetic %v, queued %v", rec.Synthetic, rec.QueuedAt)
	}
	if metrics == "" {
		t.Fatal("no metrics listener")
	}
}

func TestProbeBadFlags(t *testing.T) {
	t.Parallel()
	env := func(k string) (string, bool) { return "short", true }
	for _, args := range [][]string{{}, {"--every", "0", "sip:12345@127.0.0.1"}, {"--keys", "x", "sip:12345@127.0.0.1"}, {"sip:12345@127.0.0.1"}} {
		var ee exitError
		if err := runProbe(t.Context(), args, env, io.Discard, io.Discard, nil); !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("%q: %v, want exit 2", args, err)
		}
	}
}
