package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotline12345/hotline/internal/tlstest"
)

// SIGHUP makes "hotline serve" read its certificates again, and stops
// nothing: the renewed certificate is served from the next connection.
func TestSIGHUPReloadsTheCertificate(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	certs := t.TempDir()
	files := ca.Issue("127.0.0.1").Write(t, certs)
	path := filepath.Join(t.TempDir(), "hotline.yaml")
	yaml := "http:\n  tls_cert: " + files.Cert + "\n  tls_key: " + files.Key + "\nlog:\n  format: json\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := serveIn(t, t.TempDir(), t.TempDir(), "--config", path)
	if !strings.HasPrefix(p.api, "https://") {
		t.Fatalf("serving %s: want HTTPS", p.api)
	}
	served := func() []byte {
		t.Helper()
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: ca.ClientConfig(), DisableKeepAlives: true}}
		res, err := client.Get(p.api + "/healthz")
		if err != nil {
			t.Fatalf("GET /healthz: %v", err)
		}
		res.Body.Close()
		return res.TLS.PeerCertificates[0].Raw
	}
	served()

	renewed := ca.Issue("127.0.0.1")
	renewed.Write(t, certs)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.log.await(t, "certificate reloaded")
	if !bytes.Equal(served(), renewed.Leaf.Raw) {
		t.Fatal("after SIGHUP, the renewed certificate is not served")
	}
	select {
	case err := <-p.done:
		t.Fatalf("hotline serve ended on SIGHUP: %v", err)
	default:
	}
}
