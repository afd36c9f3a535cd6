package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/app"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/tlstest"
)

// runConfig is app.Run on cfg in a goroutine, its log kept, reading the
// certificates again at each send on reload.
func runConfig(t *testing.T, cfg config.Config, reload <-chan struct{}) *running {
	t.Helper()
	r := &running{ready: make(chan app.Addrs, 1), done: make(chan struct{}), log: &syncBuffer{}}
	ctx, cancel := context.WithCancelCause(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.err = app.Run(ctx, app.Options{
			Config: cfg,
			Logger: zerolog.New(r.log).Level(zerolog.InfoLevel),
			Ready:  func(a app.Addrs) { r.ready <- a },
			Reload: reload,
		})
	}()
	t.Cleanup(func() {
		cancel(app.ErrInterrupt)
		select {
		case <-r.done:
		case <-time.After(2 * time.Minute):
			t.Errorf("hotline did not stop")
		}
	})
	return r
}

// addrs waits for hotline to serve.
func (r *running) addrs(t *testing.T) app.Addrs {
	t.Helper()
	select {
	case a := <-r.ready:
		return a
	case <-r.done:
		t.Fatalf("hotline ended before serving: %v\n%s", r.err, r.log)
	case <-time.After(time.Minute):
		t.Fatalf("hotline does not serve within a minute:\n%s", r.log)
	}
	return app.Addrs{}
}

// servedCertificate fetches /healthz over a new TLS connection that
// trusts ca alone, and returns the certificate the server showed.
func servedCertificate(t *testing.T, ca *tlstest.CA, addr string) []byte {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: ca.ClientConfig(), DisableKeepAlives: true}}
	res, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over TLS: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz over TLS: %s", res.Status)
	}
	if res.TLS == nil {
		t.Fatal("/healthz was not served over TLS")
	}
	return res.TLS.PeerCertificates[0].Raw
}

// With http.tls_cert, HTTP is served over TLS alone, TLS 1.2 and up; a
// reload serves the renewed certificate from the next connection, and a
// bad pair leaves the one before in service.
func TestHTTPSAndCertificateReload(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	first := ca.Issue("127.0.0.1")
	files := first.Write(t, dir)
	cfg := config.Default()
	cfg.SIP.Listen, cfg.HTTP.Listen = "127.0.0.1:0", "127.0.0.1:0"
	rdb := redistest.Start(t)
	cfg.Redis.URL = rdb.URL()
	cfg.Storage.Dir = t.TempDir()
	cfg.HTTP.TLSCert, cfg.HTTP.TLSKey = files.Cert, files.Key
	reload := make(chan struct{})
	h := runConfig(t, cfg, reload)
	addr := h.addrs(t).HTTP.String()

	if got := servedCertificate(t, ca, addr); !bytes.Equal(got, first.Leaf.Raw) {
		t.Fatal("the certificate served is not the one configured")
	}
	if res, err := http.Get("http://" + addr + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Fatal("/healthz answered over plain HTTP")
		}
	}
	// A console session over TLS: its cookie is for HTTPS only.
	if _, err := auth.NewStore(rdb.Client(t), auth.StoreOptions{}).AddUser(t.Context(), auth.UserSpec{
		Name: "li", Roles: []auth.Role{auth.Supervisor}, Password: "li's long password", By: "test"}); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientConfig()}}
	res, err := client.Post("https://"+addr+"/api/v1/session", "application/json", strings.NewReader(`{"user":"li","password":"li's long password"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if cs := res.Cookies(); res.StatusCode != http.StatusCreated || len(cs) != 1 || !cs[0].Secure || !cs[0].HttpOnly {
		t.Fatalf("a session over TLS: %d %v; want a Secure, HttpOnly cookie", res.StatusCode, cs)
	}
	old := ca.ClientConfig()
	old.MaxVersion = tls.VersionTLS11
	old.MinVersion = tls.VersionTLS10
	if c, err := tls.Dial("tcp", addr, old); err == nil {
		c.Close()
		t.Fatal("a TLS 1.1 client was served")
	}

	second := ca.Issue("127.0.0.1")
	second.Write(t, dir)
	reload <- struct{}{}
	h.waitFor(t, "info", "certificate reloaded", 1)
	if got := servedCertificate(t, ca, addr); !bytes.Equal(got, second.Leaf.Raw) {
		t.Fatal("after the reload, the renewed certificate is not served")
	}

	if err := os.WriteFile(files.Key, ca.Issue("127.0.0.1").KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	h.waitFor(t, "error", "certificate not reloaded", 1)
	if got := servedCertificate(t, ca, addr); !bytes.Equal(got, second.Leaf.Raw) {
		t.Fatal("after a reload of a bad pair, the certificate before is not served")
	}
}

// On a non-loopback address, HTTP without TLS and SIP without
// sip.tls_listen each start with a warning that says what to set; with
// them, neither does.
func TestWarnsWithoutTLSOffLoopback(t *testing.T) {
	t.Parallel()
	redisURL := redistest.Start(t).URL()
	const httpWarning = "HTTP is served without TLS on a non-loopback address"
	const sipWarning = "SIP is received without TLS on a non-loopback address"
	base := func() config.Config {
		cfg := config.Default()
		cfg.SIP.Listen, cfg.HTTP.Listen = "0.0.0.0:0", "0.0.0.0:0"
		cfg.SIP.ExternalIP = "127.0.0.1"
		cfg.Redis.URL = redisURL
		cfg.Storage.Dir = t.TempDir()
		cfg.Node = strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())
		return cfg
	}
	warnings := func(cfg config.Config) []string {
		t.Helper()
		h := runConfig(t, cfg, nil)
		h.addrs(t)
		h.cancel(app.ErrInterrupt)
		<-h.done
		return h.log.messages(t, "warn")
	}
	has := func(list []string, prefix string) bool {
		return slices.ContainsFunc(list, func(m string) bool { return strings.HasPrefix(m, prefix) })
	}

	plain := warnings(base())
	if !has(plain, httpWarning+": passwords, tokens and the console's sessions cross the network in clear; set http.tls_cert and http.tls_key") {
		t.Errorf("no warning of HTTP without TLS, saying what to set, in %q", plain)
	}
	if !has(plain, sipWarning) || !slices.ContainsFunc(plain, func(m string) bool { return strings.Contains(m, "set sip.tls_listen") }) {
		t.Errorf("no warning of SIP without TLS, saying what to set, in %q", plain)
	}
	if !has(plain, "/metrics and /healthz are open") {
		t.Errorf("the metrics token's warning is gone: %q", plain)
	}

	ca := tlstest.NewCA(t)
	files := ca.Issue("127.0.0.1").Write(t, t.TempDir())
	cfg := base()
	cfg.HTTP.TLSCert, cfg.HTTP.TLSKey = files.Cert, files.Key
	cfg.SIP.TLSListen = "0.0.0.0:0"
	secure := warnings(cfg)
	if has(secure, httpWarning) || has(secure, sipWarning) {
		t.Errorf("warnings of TLS with TLS configured: %q", secure)
	}
}
