package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// go-redis's lines come out as JSON, failures as warnings.
func TestGoRedis(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Options{Level: "info", Format: "json", Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	g := NewGoRedis(l.With().Str("component", "go-redis").Logger())
	g.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v", 5, "connection refused")
	g.Printf(context.Background(), "sentinel: new master=%q addr=%q", "hotline", "127.0.0.1:7001")
	g.Printf(context.Background(), "redis: 100%% of nothing")
	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		got = append(got, m)
	}
	want := []struct{ level, message string }{
		{"warn", "redis: connection pool: failed to dial after 5 attempts: connection refused"},
		{"info", `sentinel: new master="hotline" addr="127.0.0.1:7001"`},
		{"info", "redis: 100% of nothing"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), buf.String())
	}
	for i, w := range want {
		if got[i]["level"] != w.level || got[i]["message"] != w.message || got[i]["component"] != "go-redis" || got[i]["time"] == nil {
			t.Errorf("line %d: %v, want %s %q", i, got[i], w.level, w.message)
		}
	}
}
