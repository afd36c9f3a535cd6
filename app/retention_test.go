package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/internal/sipptest"
)

// Every call record expires after calls.retention (from its call's start):
// calls from anyone, junk included, must not fill Redis for ever.
func TestCallRecordsExpire(t *testing.T) {
	t.Parallel()
	const retention = 31 * 24 * time.Hour
	h := hotlinetest.Start(t, func(c *config.Config) { c.Calls.Retention = config.Duration(retention) })
	res := sipptest.Run(t, h.SIP, sipptest.Scenario{
		Caller: "1370009", Actions: []sipptest.Action{{Pause: time.Second}}, Hangup: true,
	}, sipptest.Options{})
	if res.Successful != 1 {
		t.Fatalf("sipp: %s", res)
	}
	rec := h.Records.Final(t, "13700091")
	key := "hotline:{calls}:record:" + rec.ID
	ttl, err := h.Client.PTTL(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Until(rec.StartedAt.Add(retention)); ttl <= 0 || ttl > want+time.Second || ttl < want-time.Minute {
		t.Errorf("%s expires in %s, want %s", key, ttl, want.Round(time.Second))
	}
}
