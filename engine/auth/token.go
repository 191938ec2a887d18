package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moonforge/moonforge/engine/store"
)

// Token limits.
const (
	// MinKeyLen is the shortest HMAC key NewTokens accepts.
	MinKeyLen = 32
	// MaxIDLen is the longest player or session id, in bytes, that a token
	// carries.
	MaxIDLen = 255
	// MaxTokenLen is the longest token Verify looks at; longer input is
	// ErrBadToken before any decoding or hashing. A token of two MaxIDLen
	// ids is about 740 bytes.
	MaxTokenLen = 1024
	// TokenKeyKey is the store key of the token key (LoadOrCreateKey).
	TokenKeyKey = "sys/token_key"
)

const (
	tokenPrefix = "v1."
	macLen      = sha256.Size
)

// Claims is what a token says: who, in which session, until when.
type Claims struct {
	PlayerID  string
	SessionID string
	ExpiresAt time.Time // millisecond precision
}

// Tokens issues and verifies signed, expiring login tokens:
//
//	"v1." + base64url(payload) + "." + base64url(HMAC-SHA256(key, "v1." + base64url(payload)))
//
// where payload is the expiry in Unix milliseconds (8 bytes, big-endian),
// then the player id and the session id, each as one length byte and its
// bytes. Any byte values are allowed in the ids. Tokens is safe for
// concurrent use.
type Tokens struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewTokens returns Tokens that sign with key (at least MinKeyLen bytes; it
// is copied) and issue tokens valid for ttl.
func NewTokens(key []byte, ttl time.Duration) (*Tokens, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("auth: token key is %d bytes, want at least %d", len(key), MinKeyLen)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("auth: token lifetime %v is not positive", ttl)
	}
	return &Tokens{key: append([]byte(nil), key...), ttl: ttl, now: time.Now}, nil
}

// Issue returns a token for the player and session, valid until expiresAt
// (now plus the ttl, in whole milliseconds). Both ids are the engine's own,
// never client input: an id longer than MaxIDLen is a programming error, and
// Issue panics on it.
func (t *Tokens) Issue(playerID, sessionID string) (token string, expiresAt time.Time) {
	if len(playerID) > MaxIDLen || len(sessionID) > MaxIDLen {
		panic(fmt.Sprintf("auth: Issue: player id (%d bytes) or session id (%d bytes) longer than %d", len(playerID), len(sessionID), MaxIDLen))
	}
	expiresAt = time.UnixMilli(t.now().Add(t.ttl).UnixMilli())
	return t.sign(Claims{PlayerID: playerID, SessionID: sessionID, ExpiresAt: expiresAt}), expiresAt
}

// sign encodes and signs c, whose ids are at most MaxIDLen bytes.
func (t *Tokens) sign(c Claims) string {
	payload := make([]byte, 0, 10+len(c.PlayerID)+len(c.SessionID))
	payload = binary.BigEndian.AppendUint64(payload, uint64(c.ExpiresAt.UnixMilli()))
	payload = append(payload, byte(len(c.PlayerID)))
	payload = append(payload, c.PlayerID...)
	payload = append(payload, byte(len(c.SessionID)))
	payload = append(payload, c.SessionID...)
	signed := tokenPrefix + b64.EncodeToString(payload)
	return signed + "." + b64.EncodeToString(t.mac(signed))
}

func (t *Tokens) mac(signed string) []byte {
	h := hmac.New(sha256.New, t.key)
	h.Write([]byte(signed))
	return h.Sum(nil)
}

// Verify checks token's signature and expiry and returns its claims. It
// fails with ErrBadToken for anything malformed, too long or not signed by
// this key, and with ErrExpiredToken for a genuine token past its expiry.
func (t *Tokens) Verify(token string) (Claims, error) {
	if len(token) > MaxTokenLen {
		return Claims{}, ErrBadToken
	}
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return Claims{}, ErrBadToken
	}
	payload64, sig64, ok := strings.Cut(rest, ".")
	if !ok {
		return Claims{}, ErrBadToken
	}
	sig, err := decodeCanonical(b64, sig64)
	if err != nil || len(sig) != macLen {
		return Claims{}, ErrBadToken
	}
	if subtle.ConstantTimeCompare(sig, t.mac(token[:len(tokenPrefix)+len(payload64)])) != 1 {
		return Claims{}, ErrBadToken
	}
	payload, err := decodeCanonical(b64, payload64)
	if err != nil {
		return Claims{}, ErrBadToken
	}
	c, ok := decodeClaims(payload)
	if !ok {
		return Claims{}, ErrBadToken
	}
	if !t.now().Before(c.ExpiresAt) {
		return Claims{}, ErrExpiredToken
	}
	return c, nil
}

// decodeClaims parses a payload that must hold exactly the claims.
func decodeClaims(p []byte) (Claims, bool) {
	if len(p) < 8 {
		return Claims{}, false
	}
	c := Claims{ExpiresAt: time.UnixMilli(int64(binary.BigEndian.Uint64(p)))}
	p = p[8:]
	var ok bool
	if c.PlayerID, p, ok = cutLenPrefixed(p); !ok {
		return Claims{}, false
	}
	if c.SessionID, p, ok = cutLenPrefixed(p); !ok {
		return Claims{}, false
	}
	return c, len(p) == 0
}

func cutLenPrefixed(p []byte) (s string, rest []byte, ok bool) {
	if len(p) < 1 || len(p)-1 < int(p[0]) {
		return "", nil, false
	}
	n := int(p[0]) + 1
	return string(p[1:n]), p[n:], true
}

// LoadOrCreateKey returns the token key stored under TokenKeyKey, creating
// a random 32-byte key on first use, so that tokens outlive a restart. Call
// it once at start-up: two processes creating the key at the same moment
// could each keep a different one (the store has no compare-and-set yet).
func LoadOrCreateKey(ctx context.Context, s store.Store) ([]byte, error) {
	key, err := s.Get(ctx, TokenKeyKey)
	switch {
	case err == nil:
		if len(key) < MinKeyLen {
			return nil, fmt.Errorf("auth: stored token key %q is %d bytes, want at least %d", TokenKeyKey, len(key), MinKeyLen)
		}
		return key, nil
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("auth: load token key: %w", err)
	}
	key = make([]byte, MinKeyLen)
	rand.Read(key) // never fails
	if err := s.Put(ctx, TokenKeyKey, key); err != nil {
		return nil, fmt.Errorf("auth: save token key: %w", err)
	}
	return key, nil
}
