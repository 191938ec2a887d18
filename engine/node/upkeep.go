package node

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/moonforge/moonforge/engine/auth"
)

// upkeepEvery is how often the node sweeps the revocation list and looks for changed key files.
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

// upkeep runs until Stop: it re-reads the key file when it changes (rotation without a restart)
// and sweeps expired revocation entries.
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
