package web_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestStoreDown: with Redis gone, an API request is answered 503 with
// Retry-After and a message that says nothing was done, rather than 500.
func TestStoreDown(t *testing.T) {
	r := startRig(t, nil)
	r.do("GET", "/api/v1/agents", "", http.StatusOK, nil)
	r.redis.Kill(t)
	code, header, body := r.send(request{method: "GET", path: "/api/v1/agents", token: r.token})
	if code != http.StatusServiceUnavailable || header.Get("Retry-After") == "" {
		t.Fatalf("with Redis killed: %d (Retry-After %q) %s, want 503 with Retry-After", code, header.Get("Retry-After"), body)
	}
	if !strings.Contains(string(body), "does not answer") {
		t.Errorf("with Redis killed: %s, want it said the store does not answer", body)
	}
	r.redis.Start(t)
	r.do("GET", "/api/v1/agents", "", http.StatusOK, nil)
}
