package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// HTTPTLS reports whether HTTP is served over TLS: http.tls_cert and
// http.tls_key are set.
func (c Config) HTTPTLS() bool { return c.HTTP.TLSCert != "" && c.HTTP.TLSKey != "" }

// SIPTLSFiles are the certificate and key files SIP over TLS serves:
// sip.tls_cert and sip.tls_key, or, when those are empty, http.tls_cert
// and http.tls_key — one certificate for the host's name covers both.
// setting names the key they came from, for messages. All are "" when
// there are none.
func (c Config) SIPTLSFiles() (cert, key, setting string) {
	if c.SIP.TLSCert != "" || c.SIP.TLSKey != "" {
		return c.SIP.TLSCert, c.SIP.TLSKey, "sip.tls_cert"
	}
	if c.HTTPTLS() {
		return c.HTTP.TLSCert, c.HTTP.TLSKey, "http.tls_cert"
	}
	return "", "", ""
}

// validateTLS checks the TLS settings of HTTP and SIP: a certificate and
// its key go together, both readable, the key the certificate's.
func (c Config) validateTLS(p *problems) {
	checkPair(p, "http", c.HTTP.TLSCert, c.HTTP.TLSKey)
	if c.SIP.TLSListen == "" {
		if c.SIP.TLSCert != "" || c.SIP.TLSKey != "" {
			p.check("sip.tls_listen", errors.New("empty while sip.tls_cert or sip.tls_key is set: set it (e.g. 0.0.0.0:5061) to serve SIP over TLS, or empty them"))
		}
		return
	}
	if c.Backend == "asterisk" {
		p.check("sip.tls_listen", errors.New("set with the asterisk backend, where Asterisk receives SIP: give Asterisk a transport-tls instead (asterisk-conf/README.md)"))
		return
	}
	if err := checkAddress(c.SIP.TLSListen); err != nil {
		p.check("sip.tls_listen", err)
		return
	}
	if c.SIP.TLSListen == c.SIP.Listen && !strings.HasSuffix(c.SIP.TLSListen, ":0") && containsFold(c.SIP.Transports, "tcp") {
		p.check("sip.tls_listen", fmt.Errorf("%q: sip.listen has the same address, and SIP listens on TCP there", c.SIP.TLSListen))
	}
	if c.SIP.TLSListen == c.HTTP.Listen && !strings.HasSuffix(c.SIP.TLSListen, ":0") {
		p.check("sip.tls_listen", fmt.Errorf("%q: http.listen has the same address", c.SIP.TLSListen))
	}
	if c.SIP.TLSCert == "" && c.SIP.TLSKey == "" && !c.HTTPTLS() {
		p.check("sip.tls_cert", errors.New("empty, and so is http.tls_cert: SIP over TLS (sip.tls_listen) needs a certificate; set sip.tls_cert and sip.tls_key, or http.tls_cert and http.tls_key to serve both"))
		return
	}
	checkPair(p, "sip", c.SIP.TLSCert, c.SIP.TLSKey)
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// checkPair checks the certificate and key files of section ("http",
// "sip"): both or neither; each readable PEM; the key the certificate's.
func checkPair(p *problems, section, certFile, keyFile string) {
	certKey, keyKey := section+".tls_cert", section+".tls_key"
	switch {
	case certFile == "" && keyFile == "":
		return
	case certFile == "":
		p.check(certKey, fmt.Errorf("empty while %s is set: the certificate and its key go together", keyKey))
		return
	case keyFile == "":
		p.check(keyKey, fmt.Errorf("empty while %s is set: the certificate and its key go together", certKey))
		return
	}
	certPEM, certErr := readPEMFile(certFile)
	keyPEM, keyErr := readPEMFile(keyFile)
	if certErr == nil {
		certErr = checkCertificatePEM(certFile, certPEM)
	}
	if keyErr == nil {
		keyErr = checkKeyPEM(keyFile, keyPEM)
	}
	p.check(certKey, certErr)
	p.check(keyKey, keyErr)
	if certErr != nil || keyErr != nil {
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		p.check(keyKey, fmt.Errorf("%q: not the key of the certificate in %s (%q)", keyFile, certKey, certFile))
	}
}

// readPEMFile reads a file, saying in words why it cannot be.
func readPEMFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		return b, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%q: no such file", path)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("%q: not readable by this user (permission denied)", path)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return nil, fmt.Errorf("%q: cannot be read: %w", path, err)
}

// checkCertificatePEM accepts a PEM chain of certificates, the server's
// first.
func checkCertificatePEM(path string, b []byte) error {
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("%q: certificate %d: %w", path, n+1, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%q: no PEM certificate in it (want -----BEGIN CERTIFICATE-----)", path)
	}
	return nil
}

// checkKeyPEM accepts a PEM private key: PKCS #8, PKCS #1 (RSA) or SEC 1
// (EC), as crypto/tls does.
func checkKeyPEM(path string, b []byte) error {
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return fmt.Errorf("%q: no PEM private key in it (want -----BEGIN PRIVATE KEY-----)", path)
		}
		if block.Type != "PRIVATE KEY" && !strings.HasSuffix(block.Type, " PRIVATE KEY") {
			continue
		}
		if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			return nil
		}
		if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
			return nil
		}
		if _, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
			return nil
		}
		return fmt.Errorf("%q: the private key cannot be read (want PKCS #8, PKCS #1 or SEC 1, unencrypted)", path)
	}
}
