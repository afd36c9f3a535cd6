package app

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/tlscert"
)

// certificates are the servers' certificates: HTTP's and SIP's, one
// holder when SIP serves HTTP's files.
type certificates struct {
	http *tlscert.Holder // nil: HTTP without TLS
	sip  *tlscert.Holder // nil: no SIP over TLS
}

// loadCertificates reads the certificates the configuration names.
func loadCertificates(cfg config.Config, log zerolog.Logger) (*certificates, error) {
	var c certificates
	if cfg.HTTPTLS() {
		h, err := tlscert.Load("http.tls_cert", cfg.HTTP.TLSCert, cfg.HTTP.TLSKey, log)
		if err != nil {
			return nil, err
		}
		c.http = h
	}
	if cfg.Backend == "sip" && cfg.SIP.TLSListen != "" {
		cert, key, setting := cfg.SIPTLSFiles()
		if setting == "http.tls_cert" && c.http != nil {
			c.sip = c.http
		} else {
			h, err := tlscert.Load(setting, cert, key, log)
			if err != nil {
				return nil, err
			}
			c.sip = h
		}
	}
	return &c, nil
}

// reload reads every certificate again; one whose new files are bad
// stays as it was (tlscert.Holder.Reload logs why).
func (c *certificates) reload(log zerolog.Logger) {
	if c.http == nil && c.sip == nil {
		log.Info().Msg("reload: no certificate to read again (http.tls_cert and sip.tls_listen are not set)")
		return
	}
	if c.http != nil {
		_ = c.http.Reload()
	}
	if c.sip != nil && c.sip != c.http {
		_ = c.sip.Reload()
	}
}

// reloadOn reads the certificates again at each receive on reload (main
// sends one on SIGHUP), until ctx is done.
func (c *certificates) reloadOn(ctx context.Context, reload <-chan struct{}, log zerolog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
			c.reload(log)
		}
	}
}
