package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
)

// TestProbeOnce: `hotline probe --once` signs its call, hears the whole
// intake of the test hotline, which keeps a synthetic record, and serves
// the probe's families while it runs.
func TestProbeOnce(t *testing.T) {
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

// TestProbeMetrics: the families are served, the last probe's values set.
func TestProbeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newProbeMetrics(reg)
	m.observe(probeResult{ok: true, duration: 12 * time.Second, pdd: 150 * time.Millisecond, prompts: 15})
	m.observe(probeResult{ok: false, duration: 3 * time.Second, pdd: 200 * time.Millisecond, prompts: 2})
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	body := get(t, srv.URL)
	for _, f := range []string{
		`hotline_probe_calls_total{outcome="failure"} 1`, `hotline_probe_calls_total{outcome="success"} 1`,
		"hotline_probe_success 0", "hotline_probe_duration_seconds 3", "hotline_probe_post_dial_delay_seconds 0.2",
		"hotline_probe_prompts_recognised 2",
	} {
		if !strings.Contains(body, f) {
			t.Errorf("metrics lack %s:\n%s", f, body)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestProbeBadFlags(t *testing.T) {
	env := func(k string) (string, bool) { return "short", true }
	for _, args := range [][]string{{}, {"--every", "0", "sip:12345@127.0.0.1"}, {"--keys", "x", "sip:12345@127.0.0.1"}, {"sip:12345@127.0.0.1"}} {
		var ee exitError
		if err := runProbe(t.Context(), args, env, io.Discard, io.Discard, nil); !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("%q: %v, want exit 2", args, err)
		}
	}
}
