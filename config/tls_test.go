package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotline12345/hotline/internal/tlstest"
)

// A certificate and key that can not serve are refused at start, the
// problem named by the setting that holds it.
func TestValidateTLSNamesTheKey(t *testing.T) {
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	good := ca.Issue().Write(t, dir)
	other := ca.Issue().Write(t, t.TempDir())
	notPEM := filepath.Join(dir, "notpem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	cases := []struct {
		key    string
		reason string // in the problem's text
		mutate func(*Config)
	}{
		{"http.tls_key", "go together", func(c *Config) { c.HTTP.TLSCert = good.Cert }},
		{"http.tls_cert", "go together", func(c *Config) { c.HTTP.TLSKey = good.Key }},
		{"http.tls_cert", "no such file", func(c *Config) { c.HTTP.TLSCert, c.HTTP.TLSKey = missing, good.Key }},
		{"http.tls_key", "no such file", func(c *Config) { c.HTTP.TLSCert, c.HTTP.TLSKey = good.Cert, missing }},
		// A folder where the file should be: it cannot be read (a file
		// without read permission would be read all the same by root).
		{"http.tls_key", "cannot be read", func(c *Config) { c.HTTP.TLSCert, c.HTTP.TLSKey = good.Cert, dir }},
		{"http.tls_cert", "no PEM certificate", func(c *Config) { c.HTTP.TLSCert, c.HTTP.TLSKey = notPEM, good.Key }},
		{"http.tls_cert", "no PEM certificate", func(c *Config) { c.HTTP.TLSCert, c.HTTP.TLSKey = good.Key, good.Key }},
		{"http.tls_key", "no PEM private key", func(c *Config) { c.HTTP.TLSCert, c.HTTP.TLSKey = good.Cert, good.Cert }},
		{"http.tls_key", "not the key of the certificate in http.tls_cert", func(c *Config) { c.HTTP.TLSCert, c.HTTP.TLSKey = good.Cert, other.Key }},
		{"sip.tls_cert", "needs a certificate", func(c *Config) { c.SIP.TLSListen = "127.0.0.1:5061" }},
		{"sip.transports", "set sip.tls_listen", func(c *Config) { c.SIP.Transports = []string{"udp", "tls"} }},
		{"sip.tls_listen", "empty while", func(c *Config) { c.SIP.TLSCert, c.SIP.TLSKey = good.Cert, good.Key }},
		{"sip.tls_listen", "asterisk", func(c *Config) {
			asterisk(c)
			c.SIP.TLSListen, c.SIP.TLSCert, c.SIP.TLSKey = "127.0.0.1:5061", good.Cert, good.Key
		}},
		{"sip.tls_listen", "missing port", func(c *Config) { c.SIP.TLSListen, c.SIP.TLSCert, c.SIP.TLSKey = "127.0.0.1", good.Cert, good.Key }},
		{"sip.tls_listen", "sip.listen", func(c *Config) { c.SIP.TLSListen, c.SIP.TLSCert, c.SIP.TLSKey = c.SIP.Listen, good.Cert, good.Key }},
		{"sip.tls_listen", "http.listen", func(c *Config) { c.SIP.TLSListen, c.SIP.TLSCert, c.SIP.TLSKey = c.HTTP.Listen, good.Cert, good.Key }},
		{"sip.tls_key", "go together", func(c *Config) {
			c.HTTP.TLSCert, c.HTTP.TLSKey = good.Cert, good.Key
			c.SIP.TLSListen, c.SIP.TLSCert = "127.0.0.1:5061", other.Cert
		}},
		{"sip.tls_key", "not the key of the certificate in sip.tls_cert", func(c *Config) {
			c.SIP.TLSListen, c.SIP.TLSCert, c.SIP.TLSKey = "127.0.0.1:5061", other.Cert, good.Key
		}},
	}
	for _, tc := range cases {
		c := Default()
		tc.mutate(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s (%s): no error", tc.key, tc.reason)
			continue
		}
		if ke := onlyProblem(t, err); ke.Key != tc.key || !strings.Contains(ke.Error(), tc.reason) {
			t.Errorf("problem %q, want one of %s saying %q", ke, tc.key, tc.reason)
		}
	}
}

// SIP over TLS serves HTTP's certificate unless it has its own; the TLS
// settings come from the environment like any.
func TestTLSSettings(t *testing.T) {
	ca := tlstest.NewCA(t)
	httpFiles := ca.Issue("hotline.example.org").Write(t, t.TempDir())
	sipFiles := ca.Issue("sip.example.org").Write(t, t.TempDir())
	env := map[string]string{
		"HOTLINE_HTTP_TLS_CERT":  httpFiles.Cert,
		"HOTLINE_HTTP_TLS_KEY":   httpFiles.Key,
		"HOTLINE_SIP_TLS_LISTEN": "127.0.0.1:5061",
	}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	c, err := Load("", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if !c.HTTPTLS() || c.SIP.TLSListen != "127.0.0.1:5061" {
		t.Fatalf("http tls %v, sip.tls_listen %q: want the environment's", c.HTTPTLS(), c.SIP.TLSListen)
	}
	if cert, key, from := c.SIPTLSFiles(); cert != httpFiles.Cert || key != httpFiles.Key || from != "http.tls_cert" {
		t.Errorf("SIP's certificate %s %s from %s: want HTTP's", cert, key, from)
	}

	env["HOTLINE_SIP_TLS_CERT"], env["HOTLINE_SIP_TLS_KEY"] = sipFiles.Cert, sipFiles.Key
	if c, err = Load("", lookup); err != nil {
		t.Fatal(err)
	}
	if cert, key, from := c.SIPTLSFiles(); cert != sipFiles.Cert || key != sipFiles.Key || from != "sip.tls_cert" {
		t.Errorf("SIP's certificate %s %s from %s: want its own", cert, key, from)
	}

	// A bad file given in the environment is reported with the variable.
	env["HOTLINE_SIP_TLS_KEY"] = httpFiles.Key
	_, err = Load("", lookup)
	if ke := onlyProblem(t, err); ke.Key != "sip.tls_key" || ke.Source != "HOTLINE_SIP_TLS_KEY" {
		t.Errorf("problem %+v, want sip.tls_key from HOTLINE_SIP_TLS_KEY", ke)
	}
}
