package client_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hotline12345/hotline/web/client"
)

// TestDoWithoutContent: a 202 or 204 without a body is a success that
// leaves the answer as it was; a 200 without one is an unreadable answer.
func TestDoWithoutContent(t *testing.T) {
	status := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, status = range []int{http.StatusAccepted, http.StatusNoContent} {
		into := map[string]string{"kept": "yes"}
		if err := c.Do(t.Context(), http.MethodPost, "/x", map[string]string{}, &into); err != nil || into["kept"] != "yes" {
			t.Errorf("%d: %v, %v", status, into, err)
		}
	}
	status = http.StatusOK
	var into map[string]string
	if err := c.Do(t.Context(), http.MethodGet, "/x", nil, &into); err == nil {
		t.Errorf("200 without a body: no error")
	}
}
