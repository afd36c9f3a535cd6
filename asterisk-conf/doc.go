// Package asteriskconf is the Asterisk 20/22 configuration that runs hotline
// as a Stasis application over ARI: the .conf files in this directory go to
// /etc/asterisk, and README.md says how, step by step.
//
// Files holds the .conf files, for tests that run a real Asterisk with
// them (internal/asterisktest). The package's own tests parse every file with
// Asterisk's configuration syntax and check that the files fit together and
// fit hotline: templates and PJSIP references resolve, the dialplan hands
// calls to the application hotline's settings name and falls back when it is
// down, and ARI is served on loopback only.
package asteriskconf
