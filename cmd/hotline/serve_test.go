package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hotline12345/hotline/config"
)

// serve's flags beat the file and the environment, and the configuration
// is validated with them applied.
func TestServeFlagsOverrideFileAndEnvironment(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hotline.yaml")
	// Asterisk without its password: invalid on its own.
	if err := os.WriteFile(path, []byte("backend: asterisk\nsip:\n  listen: 127.0.0.1:5070\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(name string) (string, bool) {
		if name == "HOTLINE_SIP_LISTEN" {
			return "127.0.0.1:5080", true
		}
		return "", false
	}
	if _, err := loadServeConfig(path, map[string]string{}, env); err == nil {
		t.Fatal("a file for Asterisk without ari.password loaded")
	}
	cfg, err := loadServeConfig(path, map[string]string{"BACKEND": "sip", "SIP_LISTEN": "127.0.0.1:5090"}, env)
	if err != nil {
		t.Fatalf("--backend sip over a file for Asterisk: %v", err)
	}
	if cfg.Backend != "sip" || cfg.SIP.Listen != "127.0.0.1:5090" {
		t.Errorf("backend %q, sip.listen %q: want the flags' sip and 127.0.0.1:5090", cfg.Backend, cfg.SIP.Listen)
	}
	cfg, err = loadServeConfig(path, map[string]string{"BACKEND": "sip"}, env)
	if err != nil || cfg.SIP.Listen != "127.0.0.1:5080" {
		t.Errorf("without the flag, sip.listen %q (%v): want the environment's", cfg.SIP.Listen, err)
	}
	_, err = loadServeConfig("", map[string]string{"BACKEND": "pbx"}, env)
	var ke *config.KeyError
	if !errors.As(err, &ke) || ke.Key != "backend" {
		t.Errorf("--backend pbx: %v, want an error about backend", err)
	}
}
