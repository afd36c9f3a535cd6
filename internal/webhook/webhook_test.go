package webhook_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/webhook"
)

// TestSignature: a signature verifies with its secret and timestamp
// only.
func TestSignature(t *testing.T) {
	body := []byte(`{"id":"1-0"}`)
	now := time.Unix(1_800_000_000, 0)
	h := http.Header{}
	h.Set(webhook.HeaderTimestamp, "1800000000")
	h.Set(webhook.HeaderSignature, webhook.Sign("s3cret-s3cret-s3cret", now.Unix(), body))
	if err := webhook.VerifySignature("s3cret-s3cret-s3cret", h, body, now, time.Minute); err != nil {
		t.Errorf("verify: %v", err)
	}
	if err := webhook.VerifySignature("another-secret-0123", h, body, now, time.Minute); err == nil {
		t.Error("another secret verified")
	}
	if err := webhook.VerifySignature("s3cret-s3cret-s3cret", h, body, now.Add(2*time.Minute), time.Minute); err == nil {
		t.Error("an old timestamp verified")
	}
	if err := webhook.VerifySignature("s3cret-s3cret-s3cret", h, []byte(`{"id":"2-0"}`), now, time.Minute); err == nil {
		t.Error("another body verified")
	}
}

// TestStream: the entries of a stream are posted with the stream's body,
// its headers, the entry's id and a signature, and acknowledged.
func TestStream(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan http.Header, 4)
	bodies := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := webhook.VerifySignature("s3cret-s3cret-s3cret", r.Header, b, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		got <- r.Header
		bodies <- string(b)
	}))
	defer srv.Close()
	const key = "test:{w}:events"
	if err := rdb.XGroupCreateMkStream(ctx, key, "ops", "$").Err(); err != nil {
		t.Fatal(err)
	}
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []string{"doc", "hello"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 4)
	h := webhook.New(rdb, webhook.Stream{
		Key: key, Group: "ops", Name: "test webhook", Header: http.Header{"X-Hotline-Topic": {"test"}},
		Body: func(m redis.XMessage) ([]byte, error) { return []byte(`"` + m.Values["doc"].(string) + `"`), nil },
	}, webhook.Options{URL: srv.URL, Secret: "s3cret-s3cret-s3cret", ClaimAfter: 200 * time.Millisecond,
		Done: func(_, outcome string) { done <- outcome }}, "n/1", zerolog.Nop())
	finished := make(chan struct{})
	go func() { defer close(finished); h.Run(ctx) }()
	defer func() { cancel(); <-finished }()
	select {
	case o := <-done:
		if o != webhook.Delivered {
			t.Errorf("outcome %s", o)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered")
	}
	hd, body := <-got, <-bodies
	if hd.Get(webhook.HeaderEventID) != id || hd.Get("X-Hotline-Topic") != "test" || body != `"hello"` {
		t.Errorf("request %v %s", hd, body)
	}
	p, err := rdb.XPending(ctx, key, "ops").Result()
	if err != nil || p.Count != 0 {
		t.Errorf("pending %+v %v", p, err)
	}
}
