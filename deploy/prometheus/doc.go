// Package prometheus holds the Prometheus rules for the hotline's complaint
// line and review SLA (hotline-rules.yml) with their unit tests
// (hotline-rules.test.yml); its test runs both through promtool.
package prometheus
