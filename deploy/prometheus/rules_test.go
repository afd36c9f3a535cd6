package prometheus_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	rules     = "hotline-rules.yml"
	ruleTests = "hotline-rules.test.yml"
)

// The rules load and their unit tests pass in Prometheus's own promtool;
// either failing fails the test with what promtool said. test.sh installs
// promtool (Debian package prometheus): without it the test fails too.
func TestRulesWithPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (Debian package prometheus, which test.sh installs): %v", err)
	}
	for _, args := range [][]string{
		{"check", "rules", rules},
		{"test", "rules", ruleTests},
	} {
		t.Run(args[0], func(t *testing.T) {
			out, err := exec.CommandContext(t.Context(), promtool, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// promtool does not mind an alert its tests never name: every alert of the
// rules has an alert_rule_test.
func TestEveryAlertIsTested(t *testing.T) {
	var r struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	var rt struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	load(t, rules, &r)
	load(t, ruleTests, &rt)
	tested := map[string]bool{}
	for _, test := range rt.Tests {
		for _, a := range test.AlertRuleTest {
			tested[a.Alertname] = true
		}
	}
	alerts := 0
	for _, g := range r.Groups {
		for _, rule := range g.Rules {
			if rule.Alert == "" {
				continue // a recording rule
			}
			alerts++
			if !tested[rule.Alert] {
				t.Errorf("alert %s has no alert_rule_test in %s", rule.Alert, ruleTests)
			}
		}
	}
	if alerts == 0 {
		t.Fatalf("no alert in %s", rules)
	}
}

func load(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
