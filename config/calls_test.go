package config

import (
	"testing"
	"time"
)

func TestCallsRetention(t *testing.T) {
	c, err := Load(writeFile(t, "calls:\n  retention: 8760h\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(c.Calls.Retention); got != 365*24*time.Hour {
		t.Errorf("calls.retention %s", got)
	}
	for _, d := range []time.Duration{0, 29 * 24 * time.Hour, 11 * 365 * 24 * time.Hour} {
		c := Default()
		c.Calls.Retention = Duration(d)
		if ke := onlyProblem(t, c.Validate()); ke.Key != "calls.retention" {
			t.Errorf("%s: problem for %s", d, ke.Key)
		}
	}
}
