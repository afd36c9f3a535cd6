package tlscert_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/internal/tlscert"
	"github.com/hotline12345/hotline/internal/tlstest"
)

// served is the certificate a TLS client is shown by a server using h.
func served(t *testing.T, h *tlscert.Holder, ca *tlstest.CA) []byte {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", h.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.(*tls.Conn).Handshake()
	}()
	conf := ca.ClientConfig()
	c, err := tls.Dial("tcp", ln.Addr().String(), conf)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// A renewed pair is served from the next handshake; a bad one is
// refused, logged, and the pair before stays in service.
func TestReload(t *testing.T) {
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	first := ca.Issue("127.0.0.1")
	files := first.Write(t, dir)
	var log bytes.Buffer
	h, err := tlscert.Load("http.tls_cert", files.Cert, files.Key, zerolog.New(&log))
	if err != nil {
		t.Fatal(err)
	}
	if got := served(t, h, ca); !bytes.Equal(got, first.Leaf.Raw) {
		t.Fatal("the first certificate is not the one served")
	}

	second := ca.Issue("127.0.0.1")
	second.Write(t, dir)
	if err := h.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := served(t, h, ca); !bytes.Equal(got, second.Leaf.Raw) {
		t.Fatal("after a reload, the renewed certificate is not the one served")
	}
	if !strings.Contains(log.String(), "certificate reloaded") {
		t.Errorf("no line says the certificate was reloaded:\n%s", log.String())
	}

	// A key of another certificate: refused.
	third := ca.Issue("127.0.0.1")
	if err := os.WriteFile(files.Key, third.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	if err := h.Reload(); err == nil {
		t.Fatal("a key of another certificate reloaded")
	}
	if !strings.Contains(log.String(), `"level":"error"`) || !strings.Contains(log.String(), "certificate not reloaded") {
		t.Errorf("a refused reload is not logged as an error:\n%s", log.String())
	}
	if got := served(t, h, ca); !bytes.Equal(got, second.Leaf.Raw) {
		t.Fatal("after a refused reload, the certificate before is not the one served")
	}

	// Files gone: the same.
	if err := os.Remove(files.Cert); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reload without the certificate's file: %v, want it not found", err)
	}
	if got := served(t, h, ca); !bytes.Equal(got, second.Leaf.Raw) {
		t.Fatal("with the files gone, the certificate before is not the one served")
	}
}

// Load refuses a key that is not the certificate's, naming the setting.
func TestLoadRefusesAMismatchedKey(t *testing.T) {
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	files := ca.Issue().Write(t, dir)
	if err := os.WriteFile(files.Key, ca.Issue().KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := tlscert.Load("sip.tls_cert", files.Cert, files.Key, zerolog.Nop())
	if err == nil || !strings.HasPrefix(err.Error(), "sip.tls_cert: ") {
		t.Fatalf("a mismatched key: %v, want an error naming sip.tls_cert", err)
	}
}

// Servers made from the holder refuse TLS 1.1.
func TestMinVersion(t *testing.T) {
	ca := tlstest.NewCA(t)
	files := ca.Issue().Write(t, t.TempDir())
	h, err := tlscert.Load("http.tls_cert", files.Cert, files.Key, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", h.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.(*tls.Conn).Handshake()
	}()
	conf := ca.ClientConfig()
	conf.MinVersion, conf.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if c, err := tls.Dial("tcp", ln.Addr().String(), conf); err == nil {
		c.Close()
		t.Fatal("a TLS 1.1 client was served")
	}
}
