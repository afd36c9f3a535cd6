// Package systemd holds the hotline's systemd unit (hotline.service); its
// test checks the unit with systemd-analyze verify, holds its exposure
// score under a bound with systemd-analyze security, and checks that its
// limits fit the configuration's defaults.
package systemd
