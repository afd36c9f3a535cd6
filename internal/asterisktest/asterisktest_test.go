package asterisktest_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotline12345/hotline/internal/asterisktest"
)

// ariGet makes one ARI request, with the test user's credentials when
// auth is set, and returns the status and decoded body.
func ariGet(t *testing.T, a *asterisktest.Asterisk, path string, auth bool, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.ARI+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(asterisktest.Username, asterisktest.Password)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if out != nil && res.StatusCode == http.StatusOK {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return res.StatusCode
}

// An instance answers ARI with the test password only, listens for SIP
// where it says, has the trunk and agents asked for and hotline's prompts
// as its sounds, and restarts on the same ports.
func TestStart(t *testing.T) {
	t.Parallel()
	a := asterisktest.Start(t, asterisktest.Options{
		Trunk:  "127.0.0.2",
		Agents: []asterisktest.Agent{{User: "2001", Password: "secret-2001"}},
	})
	if got := ariGet(t, a, "/asterisk/info", false, nil); got != http.StatusUnauthorized {
		t.Errorf("ARI without credentials: %d, want 401", got)
	}
	var info struct {
		System struct {
			Version string `json:"version"`
		} `json:"system"`
		Status struct {
			StartupTime string `json:"startup_time"`
		} `json:"status"`
	}
	if got := ariGet(t, a, "/asterisk/info", true, &info); got != http.StatusOK || info.System.Version != "22.10.1" {
		t.Fatalf("ARI info: %d %+v, want Asterisk 22.10.1", got, info)
	}
	eps := a.CLI(t, "pjsip show endpoints")
	for _, want := range []string{"test-trunk", "2001/2001", "1001/1001", "carrier"} {
		if !strings.Contains(eps, want) {
			t.Errorf("pjsip show endpoints lacks %s:\n%s", want, eps)
		}
	}
	if tr := a.CLI(t, "pjsip show transports"); strings.Count(tr, a.SIP.String()) != 2 {
		t.Errorf("transports not both on %s:\n%s", a.SIP, tr)
	}
	for _, f := range []string{"zh/hotline/greeting.ulaw", "en/hotline/greeting.alaw", "zh/hotline/app_unavailable.wav"} {
		if _, err := os.Stat(filepath.Join(a.Dir, "lib", "sounds", f)); err != nil {
			t.Errorf("prompt not installed: %v", err)
		}
	}
	var sound struct {
		Formats []struct {
			Language string `json:"language"`
			Format   string `json:"format"`
		} `json:"formats"`
	}
	if got := ariGet(t, a, "/sounds/hotline%2Fgreeting", true, &sound); got != http.StatusOK || len(sound.Formats) != 6 {
		t.Errorf("GET /sounds/hotline/greeting: %d %+v, want ulaw, alaw and wav in zh and en", got, sound)
	}

	before := info.Status.StartupTime
	a.Restart(t)
	if ariGet(t, a, "/asterisk/info", true, &info); info.Status.StartupTime == before {
		t.Errorf("startup time %s unchanged by the restart", before)
	}
	if eps := a.CLI(t, "pjsip show endpoints"); !strings.Contains(eps, "2001/2001") {
		t.Errorf("after the restart, pjsip show endpoints lacks the agent:\n%s", eps)
	}
}
