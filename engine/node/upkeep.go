package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moonforge/moonforge/engine/admin"
	"github.com/moonforge/moonforge/engine/auth"
	"github.com/moonforge/moonforge/engine/cert"
)

// upkeepEvery is how often the node looks for changed key files and orphaned player data.
const upkeepEvery = 2 * time.Second

// sweepEvery is how often expired revocation entries are deleted.
const sweepEvery = 10 * time.Minute

// loadTokens reads the signing keys ($MOONFORGE_TOKEN_KEYS or the key file, created with a new
// key if missing) and returns the token issuer.
func (n *Node) loadTokens() (*auth.Tokens, error) {
	n.keysFile = n.cfg.Auth.KeysFile
	if n.keysFile == "" {
		n.keysFile = filepath.Join(n.cfg.DataDir, "token_keys")
	}
	_, statErr := os.Stat(n.keysFile)
	keys, source, err := auth.LoadKeys(n.keysFile, true)
	if err != nil {
		return nil, err
	}
	if os.IsNotExist(statErr) && source == n.keysFile {
		n.log.Warn("created a token key file: every node of a cluster needs the same one", "file", n.keysFile)
	}
	n.tokens, err = auth.NewTokens(keys, n.cfg.Auth.TokenTTL, n.cfg.Auth.RefreshTTL)
	return n.tokens, err
}

// upkeep runs until Stop: it re-reads the key file when it changes (rotation without a restart),
// sweeps expired revocation entries and unloads orphaned player data.
func (n *Node) upkeep() {
	keysMod := modTime(n.keysFile)
	lastSweep := time.Time{}
	t := time.NewTicker(upkeepEvery)
	defer t.Stop()
	for {
		if time.Since(lastSweep) >= sweepEvery {
			lastSweep = time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if removed, err := n.revocations.Sweep(ctx); err != nil {
				n.log.Warn("sweeping the revocation list failed", "error", err)
			} else if removed > 0 {
				n.log.Debug("revocation list swept", "removed", removed)
			}
			cancel()
		}
		if heap, changed := n.mem.check(); changed {
			if n.mem.Shedding() {
				n.log.Warn("memory above the high-water mark: new logins and rooms are refused", "heap_bytes", heap, "limit_bytes", n.cfg.MemoryLimit)
			} else {
				n.log.Info("memory below the high-water mark again: logins and rooms accepted", "heap_bytes", heap)
			}
		}
		n.unloadOrphans(time.Now())
		if m := modTime(n.keysFile); os.Getenv(auth.KeyEnv) == "" && !m.Equal(keysMod) {
			keysMod = m
			n.reloadKeys()
		}
		select {
		case <-n.stopBg:
			return
		case <-t.C:
		}
	}
}

func (n *Node) reloadKeys() {
	keys, _, err := auth.LoadKeys(n.keysFile, false)
	if err == nil {
		err = n.tokens.SetKeys(keys)
	}
	if err != nil {
		n.log.Error("token key file changed but cannot be used: the old keys stay", "file", n.keysFile, "error", err)
		return
	}
	n.log.Info("token keys reloaded", "file", n.keysFile, "keys", len(keys), "signing", keys[0].ID)
}

// modTime returns a file's modification time, zero if it cannot be read.
func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// tlsConfig returns the TLS configuration of the gateway's TLS listeners: from tls.cert_file and
// tls.key_file, or in dev mode from a self-signed certificate kept in the data directory; nil
// (TLS closed) otherwise.
func (n *Node) tlsConfig() (*tls.Config, error) {
	certFile, keyFile := n.cfg.TLS.CertFile, n.cfg.TLS.KeyFile
	if certFile == "" {
		if !n.cfg.Dev {
			return nil, nil
		}
		var err error
		if certFile, keyFile, err = cert.DevFiles(n.cfg.DataDir); err != nil {
			return nil, fmt.Errorf("dev tls certificate: %w", err)
		}
	}
	r, err := cert.NewReloader(certFile, keyFile, n.log.With("part", "tls"))
	if err != nil {
		return nil, err
	}
	n.certs = r
	return r.ServerConfig(), nil
}

// adminToken reads the admin bearer token from file, or $MOONFORGE_ADMIN_TOKEN when file is "".
func adminToken(file string) (string, error) {
	if file == "" {
		return os.Getenv(admin.TokenEnv), nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(raw))
	if len(token) < 16 {
		return "", fmt.Errorf("the token in %s is %d characters, want at least 16", file, len(token))
	}
	return token, nil
}
