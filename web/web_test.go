package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/web"
)

// get asks for path with the rig's token and checks the status.
func get(t *testing.T, r *rig, path string, want int, into any) string {
	t.Helper()
	return r.do("GET", path, "", want, into)
}

func TestCallsNewestFirst(t *testing.T) {
	r := startRig(t, nil)
	ctx := context.Background()
	base := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for i, id := range []string{"a", "b", "c"} {
		if err := r.calls.Save(ctx, calllog.Record{ID: id, Caller: "1390000000" + id, StartedAt: base.Add(time.Duration(i) * time.Minute), Events: []calllog.Event{}}); err != nil {
			t.Fatal(err)
		}
	}
	var list web.Page[calllog.Record]
	get(t, r, "/api/v1/calls?limit=2", 200, &list)
	if len(list.Items) != 2 || list.Items[0].ID != "c" || list.Items[1].ID != "b" || list.NextCursor == "" {
		t.Errorf("calls %+v, want c then b, and more", list)
	}
	var second web.Page[calllog.Record]
	get(t, r, "/api/v1/calls?limit=2&cursor="+list.NextCursor, 200, &second)
	if len(second.Items) != 1 || second.Items[0].ID != "a" || second.NextCursor != "" {
		t.Errorf("second page %+v, want a alone", second)
	}
	var one calllog.Record
	get(t, r, "/api/v1/calls/a", 200, &one)
	if one.ID != "a" || one.Caller != "1390000000a" {
		t.Errorf("call a: %+v", one)
	}
	var e web.Error
	get(t, r, "/api/v1/calls/zzz", 404, &e)
	get(t, r, "/api/v1/calls?cursor=zzz", 400, &e)
	for _, bad := range []string{"0", "501", "x", "-1"} {
		get(t, r, "/api/v1/calls?limit="+bad, 400, &e)
		if e.Error == "" {
			t.Errorf("limit=%s: no error message", bad)
		}
	}
}

func TestAppeal(t *testing.T) {
	r := startRig(t, nil)
	a, err := r.appeals.Create(context.Background(), appeal.New{CallID: "c1", Caller: "13900000000", Category: appeal.Livelihood, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	get(t, r, "/api/v1/appeals/"+a.ID, 200, &raw)
	for _, k := range []string{"created_at", "dispatch_due", "sign_due", "feedback_due"} {
		s, _ := raw[k].(string)
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			t.Errorf("%s = %v, want RFC 3339: %v", k, raw[k], err)
		}
	}
	if raw["category"] != "livelihood" || raw["call_id"] != "c1" {
		t.Errorf("appeal %v", raw)
	}
	get(t, r, "/api/v1/appeals/0000000000", 404, &map[string]string{})
}

// TestHealth: healthy while Redis answers, 503 naming Redis when it is down,
// healthy again once it is back.
func TestHealth(t *testing.T) {
	r := startRig(t, nil)
	var h struct {
		Status string
		Checks map[string]string
	}
	get(t, r, "/healthz", 200, &h)
	r.redis.Kill(t)
	get(t, r, "/healthz", 503, &h)
	if h.Status != "unavailable" || h.Checks["redis"] == "ok" {
		t.Errorf("health with Redis down: %+v", h)
	}
	r.redis.Start(t)
	get(t, r, "/healthz", 200, &h)
}

func TestMetrics(t *testing.T) {
	r := startRig(t, nil)
	body := get(t, r, "/metrics", 200, nil)
	for _, want := range []string{`hotline_calls_active 0`, `hotline_calls_total{cause="caller_hangup"} 0`, `hotline_dtmf_digits_total{method="info"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestHealthModes: a failing check that names a mode leaves the node
// serving, degraded in that mode (200); another failing check makes it
// unavailable (503); a draining node answers 503 draining whatever its
// checks say.
func TestHealthModes(t *testing.T) {
	var redisDown, journalFull, draining bool
	fails := func(b *bool, msg string) func(context.Context) error {
		return func(context.Context) error {
			if *b {
				return errors.New(msg)
			}
			return nil
		}
	}
	h := web.NewHandler(web.Options{
		Checks: []web.Check{
			{Name: "redis", Check: fails(&redisDown, "does not answer"), Degraded: "journal"},
			{Name: "journal", Check: fails(&journalFull, "full")},
		},
		Draining: func() bool { return draining },
		Logger:   zerolog.Nop(),
	})
	for _, tc := range []struct {
		redisDown, journalFull, draining bool
		code                             int
		want                             web.Health
	}{
		{false, false, false, 200, web.Health{Status: "ok", Checks: map[string]string{"redis": "ok", "journal": "ok"}}},
		{true, false, false, 200, web.Health{Status: "degraded", Mode: "journal", Checks: map[string]string{"redis": "does not answer", "journal": "ok"}}},
		{true, true, false, 503, web.Health{Status: "unavailable", Checks: map[string]string{"redis": "does not answer", "journal": "full"}}},
		{false, true, false, 503, web.Health{Status: "unavailable", Checks: map[string]string{"redis": "ok", "journal": "full"}}},
		{true, false, true, 503, web.Health{Status: "draining", Checks: map[string]string{"redis": "does not answer", "journal": "ok"}}},
		{false, false, true, 503, web.Health{Status: "draining", Checks: map[string]string{"redis": "ok", "journal": "ok"}}},
	} {
		redisDown, journalFull, draining = tc.redisDown, tc.journalFull, tc.draining
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		var got web.Health
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if rec.Code != tc.code || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("redis down %v, journal full %v, draining %v: %d %+v; want %d %+v",
				tc.redisDown, tc.journalFull, tc.draining, rec.Code, got, tc.code, tc.want)
		}
	}
}
