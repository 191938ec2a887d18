package tests

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/cert"
	"github.com/moonforge/moonforge/engine/client"
)

// rootsOf trusts the PEM certificate in file.
func rootsOf(t testing.TB, file string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", file)
	}
	return roots
}

// TestDevTLS: `run -dev` serves TCP over TLS and WebSocket over TLS with a self-signed
// certificate kept in the data directory (the same one after a restart); TLS 1.1 is refused.
func TestDevTLS(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	if s.tls == "" || s.wss == "" {
		t.Fatalf("dev mode without TLS listeners: tls=%q wss=%q", s.tls, s.wss)
	}
	certFile := s.path("data/dev-cert.pem")
	roots := rootsOf(t, certFile)
	for _, transport := range []string{"tls", "wss"} {
		t.Run(transport, func(t *testing.T) {
			c := s.dialConfig(t, client.Config{Transport: transport, TLS: &tls.Config{RootCAs: roots, ServerName: "localhost"}})
			guest(t, c, "tls-"+transport)
			s.mustEcho(t, c, 7, 7)
		})
	}
	for _, args := range [][]string{{"-addr", s.tls}, {"-addr", s.wss, "-ws"}} {
		args = append(append([]string{"call", "-tls", certFile, "-proto", s.path("proto")}, args...), "EchoReq", `{"n": 41}`)
		out, err := exec.Command(built.moonforge, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `EchoAck {"n":"41"}`) {
			t.Errorf("moonforge %v: %v\n%s", args, err, out)
		}
	}
	for _, bad := range []string{s.path("nope.pem"), s.path("proto/demo/demo.proto")} {
		out, err := exec.Command(built.moonforge, "call", "-tls", bad, "-addr", s.tls, "-proto", s.path("proto"), "EchoReq", "{}").CombinedOutput()
		if code := exitCode(err); code != 1 || !strings.Contains(string(out), filepath.Base(bad)) || strings.Contains(string(out), "panic") {
			t.Errorf("call -tls %s: exit %d\n%s", bad, code, out)
		}
	}
	_, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.tls,
		&tls.Config{RootCAs: roots, ServerName: "localhost", MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	before, _ := os.ReadFile(certFile)
	if code := s.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	s.restart()
	if after, _ := os.ReadFile(certFile); string(after) != string(before) {
		t.Fatal("the development certificate was made anew at restart")
	}
}

// TestTLSCertificateReload: with tls.cert_file and tls.key_file the gateway and the admin
// endpoint serve that certificate (HTTPS), and a renewed certificate is served without a restart.
// Without them a production node opens no TLS listener.
func TestTLSCertificateReload(t *testing.T) {
	t.Parallel()
	writePair := func(dir, name string) {
		certPEM, keyPEM, err := cert.SelfSigned([]string{name, "localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir+"/tls/cert.pem", string(certPEM))
		writeFile(t, dir+"/tls/key.pem", string(keyPEM))
	}
	s := startServer(t, options{production: true,
		config:  "tls:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n",
		prepare: func(_ testing.TB, dir string) { writePair(dir, "first.example") }})
	served := func() string {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.tls, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].DNSNames[0]
	}
	if got := served(); got != "first.example" {
		t.Fatalf("served %q", got)
	}
	roots := rootsOf(t, s.path("tls/cert.pem"))
	https := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}}}
	resp, err := https.Get("https://" + s.admin + "/healthz")
	if err != nil {
		t.Fatalf("admin over HTTPS: %v", err)
	}
	resp.Body.Close()

	time.Sleep(1100 * time.Millisecond) // modification times must differ
	writePair(s.dir, "second.example")
	deadline := time.Now().Add(10 * time.Second)
	for served() != "second.example" {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate was not served")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !s.log.waitFor(5*time.Second, "tls certificate reloaded") {
		t.Fatal("no log line for the reload")
	}

	plain := startServer(t, options{production: true})
	if plain.tls != "" || plain.wss != "" {
		t.Fatalf("production without a certificate opened TLS: %q %q", plain.tls, plain.wss)
	}
}

// exitCode is the exit status of a finished command (0 for a nil error, -1 if it did not run).
func exitCode(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	return -1
}
