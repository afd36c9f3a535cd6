package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/web"
)

type fixture struct {
	srv     *httptest.Server
	redis   *redistest.Server
	calls   *calllog.Store
	appeals *appeal.Store
}

func start(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{redis: redistest.Start(t)}
	rdb := f.redis.Client(t)
	f.calls = calllog.NewStore(rdb, calllog.StoreOptions{})
	f.appeals = appeal.NewStore(rdb, appeal.StoreOptions{})
	reg := prometheus.NewRegistry()
	m := ivr.NewMetrics(reg)
	m.Digits.WithLabelValues(string(ivr.DTMFInfo)).Inc()
	f.srv = httptest.NewServer(web.NewHandler(web.Options{
		Calls: f.calls, Appeals: f.appeals, Gatherer: reg,
		Checks: []web.Check{{Name: "redis", Check: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }}},
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func get(t *testing.T, f *fixture, path string, want int, into any) string {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", path, resp.StatusCode, body, want)
	}
	if into != nil {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: content type %q", path, ct)
		}
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	return string(body)
}

func TestCallsNewestFirst(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for i, id := range []string{"a", "b", "c"} {
		if err := f.calls.Save(ctx, calllog.Record{ID: id, Caller: "1390000000" + id, StartedAt: base.Add(time.Duration(i) * time.Minute), Events: []calllog.Event{}}); err != nil {
			t.Fatal(err)
		}
	}
	var list struct{ Calls []calllog.Record }
	get(t, f, "/api/v1/calls?limit=2", 200, &list)
	if len(list.Calls) != 2 || list.Calls[0].ID != "c" || list.Calls[1].ID != "b" {
		t.Errorf("calls %+v, want c then b", list.Calls)
	}
	var one calllog.Record
	get(t, f, "/api/v1/calls/a", 200, &one)
	if one.ID != "a" || one.Caller != "1390000000a" {
		t.Errorf("call a: %+v", one)
	}
	var e struct{ Error string }
	get(t, f, "/api/v1/calls/zzz", 404, &e)
	for _, bad := range []string{"0", "501", "x", "-1"} {
		get(t, f, "/api/v1/calls?limit="+bad, 400, &e)
		if e.Error == "" {
			t.Errorf("limit=%s: no error message", bad)
		}
	}
}

func TestAppeal(t *testing.T) {
	f := start(t)
	a, err := f.appeals.Create(context.Background(), appeal.New{CallID: "c1", Caller: "13900000000", Category: appeal.Livelihood, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	get(t, f, "/api/v1/appeals/"+a.ID, 200, &raw)
	for _, k := range []string{"created_at", "dispatch_due", "sign_due", "feedback_due"} {
		s, _ := raw[k].(string)
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			t.Errorf("%s = %v, want RFC 3339: %v", k, raw[k], err)
		}
	}
	if raw["category"] != "livelihood" || raw["call_id"] != "c1" {
		t.Errorf("appeal %v", raw)
	}
	get(t, f, "/api/v1/appeals/0000000000", 404, &map[string]string{})
}

// TestHealth: healthy while Redis answers, 503 naming Redis when it is down,
// healthy again once it is back.
func TestHealth(t *testing.T) {
	f := start(t)
	var h struct {
		Status string
		Checks map[string]string
	}
	get(t, f, "/healthz", 200, &h)
	f.redis.Kill(t)
	get(t, f, "/healthz", 503, &h)
	if h.Status != "unavailable" || h.Checks["redis"] == "ok" {
		t.Errorf("health with Redis down: %+v", h)
	}
	f.redis.Start(t)
	get(t, f, "/healthz", 200, &h)
}

func TestMetrics(t *testing.T) {
	f := start(t)
	body := get(t, f, "/metrics", 200, nil)
	for _, want := range []string{`hotline_calls_active 0`, `hotline_calls_total{cause="caller_hangup"} 0`, `hotline_dtmf_digits_total{method="info"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestStoreDown: with Redis gone the API answers an error, not a hang.
func TestStoreDown(t *testing.T) {
	f := start(t)
	f.redis.Kill(t)
	resp, err := http.Get(f.srv.URL + "/api/v1/calls")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 500 {
		t.Errorf("status %d with Redis down, want 5xx", resp.StatusCode)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Error("request hung")
	}
}
