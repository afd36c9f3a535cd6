package config

import (
	"testing"
	"time"
)

func TestEvaluationSettings(t *testing.T) {
	c, err := Load(writeFile(t, "evaluation:\n  complaint_limit_per_10000: 5\n  retention: 2400h\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Evaluation.ComplaintLimitPer10000 != 5 || time.Duration(c.Evaluation.Retention) != 100*24*time.Hour {
		t.Errorf("evaluation %+v", c.Evaluation)
	}
	c, err = Load(writeFile(t, ""), envMap(map[string]string{"HOTLINE_EVALUATION_COMPLAINT_LIMIT_PER_10000": "2"}))
	if err != nil || c.Evaluation.ComplaintLimitPer10000 != 2 {
		t.Errorf("from the environment: %+v, %v", c.Evaluation, err)
	}
	for _, tc := range []struct {
		key string
		set func(*Config)
	}{
		{"evaluation.complaint_limit_per_10000", func(c *Config) { c.Evaluation.ComplaintLimitPer10000 = 0 }},
		{"evaluation.complaint_limit_per_10000", func(c *Config) { c.Evaluation.ComplaintLimitPer10000 = 10001 }},
		{"evaluation.retention", func(c *Config) { c.Evaluation.Retention = Duration(61 * 24 * time.Hour) }},
		{"evaluation.retention", func(c *Config) { c.Evaluation.Retention = Duration(11 * 365 * 24 * time.Hour) }},
	} {
		c := Default()
		tc.set(&c)
		if ke := onlyProblem(t, c.Validate()); ke.Key != tc.key {
			t.Errorf("problem for %s; want %s", ke.Key, tc.key)
		}
	}
}
