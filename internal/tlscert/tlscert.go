// Package tlscert holds a server's certificate, read from its PEM files,
// and reads them again on demand (SIGHUP): a renewed certificate is
// served from the next handshake on, without a restart, and a bad new
// pair leaves the old one in service.
package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// MinVersion is the oldest TLS version hotline's servers speak: TLS 1.0
// and 1.1 are deprecated (RFC 8996).
const MinVersion = tls.VersionTLS12

// Holder is a certificate and its key, read from files. It is safe for
// use by many goroutines: handshakes read it while Reload replaces it.
type Holder struct {
	name     string // the setting it comes from, for logs: "http.tls_cert"
	certFile string
	keyFile  string
	log      zerolog.Logger
	mu       sync.RWMutex
	cert     *tls.Certificate
	notAfter time.Time
}

// Load reads certFile and keyFile. name is the setting they come from,
// as logs name it ("http.tls_cert").
func Load(name, certFile, keyFile string, log zerolog.Logger) (*Holder, error) {
	h := &Holder{name: name, certFile: certFile, keyFile: keyFile, log: log}
	cert, notAfter, err := read(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	h.cert, h.notAfter = cert, notAfter
	h.warnExpiry(time.Now())
	return h, nil
}

// read reads a certificate and its key; the key must be the
// certificate's.
func read(certFile, keyFile string) (*tls.Certificate, time.Time, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, time.Time{}, err
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, time.Time{}, err
		}
		cert.Leaf = leaf
	}
	return &cert, leaf.NotAfter, nil
}

// GetCertificate is tls.Config's GetCertificate: the certificate last
// read.
func (h *Holder) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.cert, nil
}

// Certificate is the certificate last read.
func (h *Holder) Certificate() *tls.Certificate {
	c, _ := h.GetCertificate(nil)
	return c
}

// ServerConfig is a server's TLS configuration serving the holder's
// certificate, TLS 1.2 and up.
func (h *Holder) ServerConfig() *tls.Config {
	return &tls.Config{MinVersion: MinVersion, GetCertificate: h.GetCertificate}
}

// Reload reads the files again. A pair that cannot be read, or a key
// that is not the certificate's, is logged as an error and returned; the
// certificate read before stays in service.
func (h *Holder) Reload() error {
	cert, notAfter, err := read(h.certFile, h.keyFile)
	if err != nil {
		h.log.Error().Err(err).Str("setting", h.name).Str("cert", h.certFile).Str("key", h.keyFile).
			Msg("certificate not reloaded: the one read before is still served")
		return fmt.Errorf("%s: %w", h.name, err)
	}
	h.mu.Lock()
	h.cert, h.notAfter = cert, notAfter
	h.mu.Unlock()
	h.log.Info().Str("setting", h.name).Str("cert", h.certFile).Str("subject", cert.Leaf.Subject.String()).
		Time("not_after", notAfter).Msg("certificate reloaded")
	h.warnExpiry(time.Now())
	return nil
}

// warnExpiry warns of a certificate out of date, or within a fortnight
// of it: peers that check refuse it.
func (h *Holder) warnExpiry(now time.Time) {
	h.mu.RLock()
	notAfter := h.notAfter
	h.mu.RUnlock()
	switch {
	case now.After(notAfter):
		h.log.Warn().Str("setting", h.name).Str("cert", h.certFile).Time("not_after", notAfter).
			Msg("certificate expired: peers that check it refuse to connect; replace the files and send SIGHUP")
	case now.Add(14 * 24 * time.Hour).After(notAfter):
		h.log.Warn().Str("setting", h.name).Str("cert", h.certFile).Time("not_after", notAfter).
			Msg("certificate expires within 14 days: replace the files and send SIGHUP")
	}
}
