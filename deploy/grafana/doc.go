// Package grafana holds the hotline's Grafana dashboard (hotline.json) and
// its test, which checks the dashboard's shape, that its queries parse in
// promtool, and that every hotline metric they read is one a running
// hotline (or the synthetic probe, hotline probe) exports, and every
// bucket they pick one its histogram has.
package grafana
