package asteriskconf

import "embed"

// Files are the configuration files of this directory (*.conf), as they
// go to /etc/asterisk; tests start a real Asterisk with them.
//
//go:embed *.conf
var Files embed.FS
