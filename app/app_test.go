package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/app"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/internal/sipptest"
	"github.com/hotline12345/hotline/prompts"
)

func dial(t *testing.T, h *hotlinetest.Hotline, who string, keys string) <-chan caller.Transcript {
	t.Helper()
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	script, err := caller.KeysScript(keys)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan caller.Transcript, 1)
	go func() {
		tr, err := caller.Call(context.Background(), caller.Options{
			Target: h.URI(), From: who, Script: script, Catalog: catalog,
			Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		})
		if err != nil && !errors.Is(err, caller.ErrCallEnded) {
			t.Errorf("call: %v", err)
		}
		out <- tr
	}()
	return out
}

// TestDrain: on SIGTERM's cause, a call in progress runs to its end while
// new calls are refused with 503; then hotline stops.
func TestDrain(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, func(c *config.Config) { c.Shutdown.Grace = config.Duration(2 * time.Minute) })
	done := dial(t, h, "13700000001", "1,1")
	h.Records.Answered(t, "13700000001")
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		h.Stop(t, app.ErrDrain)
	}()
	// New calls are refused while the first one finishes.
	var res sipptest.Result
	for range 50 {
		res = sipptest.Run(t, h.SIP, sipptest.Scenario{Caller: "1370001", Expect: 503}, sipptest.Options{})
		if res.Successful == 1 {
			break
		}
	}
	if res.Successful != 1 {
		t.Errorf("a new call while draining was not refused with 503: %s", res)
	}
	tr := <-done
	<-stopped
	if tr.HungUpBy != caller.HungUpByServer {
		t.Errorf("hung up by %q", tr.HungUpBy)
	}
	if rec := h.Records.Final(t, "13700000001"); rec.EndCause != calllog.FlowFinished {
		t.Errorf("drained call ended %s in %s, want flow_finished", rec.EndCause, rec.Stage)
	}
}

// TestInterrupt: on SIGINT's cause every call ends at once, recorded as
// ended by the shutdown, and the caller is sent a BYE.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, nil)
	done := dial(t, h, "13700000002", "")
	h.Records.Answered(t, "13700000002")
	h.Stop(t, app.ErrInterrupt)
	tr := <-done
	if tr.HungUpBy != caller.HungUpByServer {
		t.Errorf("hung up by %q, want server", tr.HungUpBy)
	}
	if rec := h.Records.Final(t, "13700000002"); rec.EndCause != calllog.Shutdown {
		t.Errorf("interrupted call ended %s, want shutdown", rec.EndCause)
	}
}
