// Package cert serves the TLS certificate of the gateway's TLS listeners and the admin endpoint:
// it loads a PEM certificate and key from files, reads them again when they change (a renewed
// certificate needs no restart), and makes the self-signed development certificate.
package cert

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// checkEvery is how often, at most, a handshake looks at the files' modification times.
const checkEvery = time.Second

// Reloader holds a certificate loaded from files and reloads it when a file changes. It is safe
// for concurrent use: GetCertificate runs on handshake goroutines.
type Reloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	mods    [2]time.Time
	checked time.Time
}

// NewReloader loads the certificate; an unreadable or invalid pair is an error.
func NewReloader(certFile, keyFile string, log *slog.Logger) (*Reloader, error) {
	if log == nil {
		log = slog.Default()
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, log: log}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	r.cert, r.mods, r.checked = &c, r.modTimes(), time.Now()
	return r, nil
}

func (r *Reloader) modTimes() [2]time.Time {
	var m [2]time.Time
	for i, f := range []string{r.certFile, r.keyFile} {
		if fi, err := os.Stat(f); err == nil {
			m[i] = fi.ModTime()
		}
	}
	return m
}

// GetCertificate is tls.Config.GetCertificate: the current certificate, reloaded first if a file
// changed. A pair that fails to load is logged and the previous certificate stays.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= checkEvery {
		r.checked = now
		if m := r.modTimes(); m != r.mods {
			c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
			if err != nil {
				r.log.Error("tls certificate changed but cannot be loaded: the previous one stays", "cert", r.certFile, "error", err)
			} else {
				r.cert = &c
				r.mods = m
				r.log.Info("tls certificate reloaded", "cert", r.certFile)
			}
		}
	}
	return r.cert, nil
}

// ServerConfig returns a server TLS configuration over the reloader: TLS 1.2 at least.
func (r *Reloader) ServerConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}

// DevFiles returns the paths of the development certificate in dir, making a self-signed one
// (RSA 2048, which every TLS stack reads, mono's included; for localhost, 127.0.0.1 and ::1;
// valid a year) when it is missing or expires
// within a week.
func DevFiles(dir string) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, "dev-cert.pem"), filepath.Join(dir, "dev-key.pem")
	if validFor(certFile, 7*24*time.Hour) {
		if _, err := os.Stat(keyFile); err == nil {
			return certFile, keyFile, nil
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	certPEM, keyPEM, err := SelfSigned([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, 365*24*time.Hour)
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// validFor reports whether the PEM certificate in file is still valid after d.
func validFor(file string, d time.Duration) bool {
	raw, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return false
	}
	c, err := x509.ParseCertificate(block.Bytes)
	return err == nil && time.Now().Add(d).Before(c.NotAfter)
}

// SelfSigned makes a self-signed certificate and its key, PEM encoded.
func SelfSigned(hosts []string, ips []net.IP, valid time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Moonforge development"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(valid),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              hosts,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
