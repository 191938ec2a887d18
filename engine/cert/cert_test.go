package cert

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestDevFilesAndReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, err := DevFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(certFile)
	again, _, err := DevFiles(dir)
	if err != nil || again != certFile {
		t.Fatal(err)
	}
	if kept, _ := os.ReadFile(certFile); string(kept) != string(first) {
		t.Fatal("a valid development certificate was replaced")
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	r, err := NewReloader(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := r.GetCertificate(nil)

	// A renewed pair is picked up at the next handshake after checkEvery.
	certPEM, keyPEM, err := SelfSigned([]string{"renewed.example"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	for f, b := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_ = os.Chtimes(f, later, later)
	}
	r.checked = time.Time{}
	c2, _ := r.GetCertificate(nil)
	leaf, err := x509.ParseCertificate(c2.Certificate[0])
	if err != nil || c2 == c1 || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "renewed.example" {
		t.Fatalf("the renewed certificate was not loaded: %v %v", leaf.DNSNames, err)
	}

	// A broken file keeps the previous certificate.
	if err := os.WriteFile(certFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(certFile, later.Add(time.Minute), later.Add(time.Minute))
	r.checked = time.Time{}
	if c3, err := r.GetCertificate(nil); err != nil || c3 != c2 {
		t.Fatalf("a broken file replaced the certificate: %v", err)
	}
	if _, err := NewReloader(certFile, keyFile, nil); err == nil {
		t.Fatal("NewReloader accepted a broken certificate file")
	}
	if _, err := NewReloader(filepath.Join(dir, "missing.pem"), keyFile, nil); err == nil {
		t.Fatal("NewReloader accepted a missing file")
	}
}

// TLS 1.1 is refused; 1.2 and 1.3 are served.
func TestMinVersion(t *testing.T) {
	certFile, keyFile, err := DevFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReloader(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", r.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	pem, _ := os.ReadFile(certFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	for v, ok := range map[uint16]bool{tls.VersionTLS11: false, tls.VersionTLS12: true, tls.VersionTLS13: true} {
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: v, MaxVersion: v})
		if ok != (err == nil) {
			t.Errorf("TLS version %x: %v", v, err)
		}
		if c != nil {
			c.Close()
		}
	}
}
