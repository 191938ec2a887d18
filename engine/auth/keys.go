package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Key is one token signing key with its id. The id travels in every token, so that a verifier
// picks the key that signed it.
type Key struct {
	ID     string // 1..MaxKeyIDLen of A-Z, a-z, 0-9, '_' and '-'
	Secret []byte // at least MinKeyLen bytes
}

// MaxKeyIDLen is the longest key id.
const MaxKeyIDLen = 32

// KeyEnv is the environment variable that, when set, holds the signing keys instead of the key
// file, in the same format.
const KeyEnv = "MOONFORGE_TOKEN_KEYS"

// ParseKeys reads signing keys: entries "id:base64-secret" separated by newlines, spaces or
// commas; a line starting with '#' is a comment. The first key signs new tokens; every key
// verifies, so rotating is adding a new key first and removing the old one once its last
// tokens have expired (the refresh lifetime). Ids must be unique.
func ParseKeys(text string) ([]Key, error) {
	var keys []Key
	seen := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, entry := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' }) {
			id, secret64, ok := strings.Cut(entry, ":")
			if !ok {
				return nil, fmt.Errorf("token key %q: want id:base64-secret", clip(entry))
			}
			if err := checkKeyID(id); err != nil {
				return nil, err
			}
			if seen[id] {
				return nil, fmt.Errorf("token key id %q appears twice", id)
			}
			secret, err := decodeSecret(secret64)
			if err != nil {
				return nil, fmt.Errorf("token key %q: secret is not base64: %v", id, err)
			}
			if len(secret) < MinKeyLen {
				return nil, fmt.Errorf("token key %q is %d bytes, want at least %d", id, len(secret), MinKeyLen)
			}
			seen[id] = true
			keys = append(keys, Key{ID: id, Secret: secret})
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no token key")
	}
	return keys, nil
}

// decodeSecret accepts standard or URL base64, padded or not.
func decodeSecret(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

func checkKeyID(id string) error {
	if id == "" || len(id) > MaxKeyIDLen {
		return fmt.Errorf("token key id %q: want 1 to %d characters", clip(id), MaxKeyIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("token key id %q: only letters, digits, '_' and '-'", clip(id))
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// LoadKeys returns the signing keys from the environment variable KeyEnv when it is set, else
// from file. A missing file is created with one new random key (mode 0600) when create is set,
// so that a development node needs no set-up; otherwise it is an error. source says where the
// keys came from, for the log.
func LoadKeys(file string, create bool) (keys []Key, source string, err error) {
	if env := os.Getenv(KeyEnv); env != "" {
		keys, err := ParseKeys(env)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", KeyEnv, err)
		}
		return keys, "$" + KeyEnv, nil
	}
	raw, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) && create {
		if err := writeNewKeyFile(file); err != nil {
			return nil, "", err
		}
		raw, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, "", fmt.Errorf("token keys: %w (set %s or create the file: see docs/security.md)", err, KeyEnv)
	}
	keys, err = ParseKeys(string(raw))
	if err != nil {
		return nil, "", fmt.Errorf("token keys %s: %w", file, err)
	}
	return keys, file, nil
}

// NewKeyLine returns a key file line with a fresh random 32-byte secret under id.
func NewKeyLine(id string) string {
	secret := make([]byte, MinKeyLen)
	rand.Read(secret) // never fails
	return id + ":" + base64.RawURLEncoding.EncodeToString(secret)
}

func writeNewKeyFile(file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("token keys: %w", err)
	}
	content := "# Moonforge token signing keys: id:base64-secret, the first one signs. See docs/security.md.\n" + NewKeyLine("k1") + "\n"
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("token keys: %w", err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return fmt.Errorf("token keys: %w", err)
	}
	return f.Close()
}
