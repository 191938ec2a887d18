package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// Token limits.
const (
	// MinKeyLen is the shortest HMAC key accepted.
	MinKeyLen = 32
	// MaxIDLen is the longest player or session id, in bytes, that a token
	// carries.
	MaxIDLen = 255
	// MaxTokenLen is the longest token Verify looks at; longer input is
	// ErrBadToken before any decoding or hashing. A token of two MaxIDLen
	// ids is about 800 bytes.
	MaxTokenLen = 1024
)

const (
	tokenPrefix = "v2."
	macLen      = sha256.Size
	refreshID   = 16 // random bytes that make each refresh token single-use
)

// Kind tells access tokens from refresh tokens; each is refused where the
// other is expected.
type Kind byte

// Token kinds.
const (
	Access  Kind = 1
	Refresh Kind = 2
)

// Claims is what a token says: who, in which session, since and until when.
type Claims struct {
	Kind      Kind
	PlayerID  string
	SessionID string
	ID        string    // refresh tokens: random, unique; access tokens: empty
	IssuedAt  time.Time // millisecond precision
	ExpiresAt time.Time // millisecond precision
}

// Tokens issues and verifies signed, expiring tokens:
//
//	"v2." + key id + "." + base64url(payload) + "." + base64url(HMAC-SHA256(key, everything before the last "."))
//
// where payload is the kind (1 byte), the issue and expiry times in Unix
// milliseconds (8 bytes each, big-endian), then the player id, the session
// id and the token id, each as one length byte and its bytes. Tokens is safe
// for concurrent use; SetKeys swaps the keys while it serves.
type Tokens struct {
	keys       atomic.Pointer[keySet]
	ttl        time.Duration
	refreshTTL time.Duration
	now        func() time.Time
}

type keySet struct {
	signer Key
	byID   map[string][]byte
}

// NewTokens returns Tokens that sign with keys[0], verify with any of keys
// (see ParseKeys), and issue access tokens valid for ttl and refresh tokens
// valid for refreshTTL.
func NewTokens(keys []Key, ttl, refreshTTL time.Duration) (*Tokens, error) {
	if ttl <= 0 || refreshTTL <= 0 {
		return nil, fmt.Errorf("auth: token lifetimes %v and %v must be positive", ttl, refreshTTL)
	}
	t := &Tokens{ttl: ttl, refreshTTL: refreshTTL, now: time.Now}
	if err := t.SetKeys(keys); err != nil {
		return nil, err
	}
	return t, nil
}

// SetKeys replaces the keys (they are copied); tokens signed by a key that
// is no longer listed stop verifying.
func (t *Tokens) SetKeys(keys []Key) error {
	if len(keys) == 0 {
		return fmt.Errorf("auth: no token key")
	}
	ks := &keySet{byID: map[string][]byte{}}
	for _, k := range keys {
		if err := checkKeyID(k.ID); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
		if len(k.Secret) < MinKeyLen {
			return fmt.Errorf("auth: token key %q is %d bytes, want at least %d", k.ID, len(k.Secret), MinKeyLen)
		}
		if _, dup := ks.byID[k.ID]; dup {
			return fmt.Errorf("auth: token key id %q appears twice", k.ID)
		}
		ks.byID[k.ID] = append([]byte(nil), k.Secret...)
	}
	ks.signer = Key{ID: keys[0].ID, Secret: ks.byID[keys[0].ID]}
	t.keys.Store(ks)
	return nil
}

// Issue returns an access token for the player and session, valid until
// expiresAt (now plus the ttl, in whole milliseconds). Both ids are the
// engine's own, never client input: an id longer than MaxIDLen is a
// programming error, and Issue panics on it.
func (t *Tokens) Issue(playerID, sessionID string) (token string, expiresAt time.Time) {
	return t.issue(Access, playerID, sessionID, t.ttl)
}

// IssueRefresh returns a refresh token for the player and session, valid
// for the refresh lifetime; each carries a fresh random id.
func (t *Tokens) IssueRefresh(playerID, sessionID string) (token string, expiresAt time.Time) {
	return t.issue(Refresh, playerID, sessionID, t.refreshTTL)
}

// RefreshTTL is the lifetime of refresh tokens: the longest any token lives.
func (t *Tokens) RefreshTTL() time.Duration { return t.refreshTTL }

func (t *Tokens) issue(kind Kind, playerID, sessionID string, ttl time.Duration) (string, time.Time) {
	if len(playerID) > MaxIDLen || len(sessionID) > MaxIDLen {
		panic(fmt.Sprintf("auth: Issue: player id (%d bytes) or session id (%d bytes) longer than %d", len(playerID), len(sessionID), MaxIDLen))
	}
	now := t.now()
	c := Claims{
		Kind:      kind,
		PlayerID:  playerID,
		SessionID: sessionID,
		IssuedAt:  time.UnixMilli(now.UnixMilli()),
		ExpiresAt: time.UnixMilli(now.Add(ttl).UnixMilli()),
	}
	if kind == Refresh {
		id := make([]byte, refreshID)
		rand.Read(id) // never fails
		c.ID = string(id)
	}
	return t.sign(t.keys.Load().signer, c), c.ExpiresAt
}

// sign encodes and signs c, whose ids are at most MaxIDLen bytes.
func (t *Tokens) sign(k Key, c Claims) string {
	payload := make([]byte, 0, 20+len(c.PlayerID)+len(c.SessionID)+len(c.ID))
	payload = append(payload, byte(c.Kind))
	payload = binary.BigEndian.AppendUint64(payload, uint64(c.IssuedAt.UnixMilli()))
	payload = binary.BigEndian.AppendUint64(payload, uint64(c.ExpiresAt.UnixMilli()))
	for _, s := range []string{c.PlayerID, c.SessionID, c.ID} {
		payload = append(payload, byte(len(s)))
		payload = append(payload, s...)
	}
	signed := tokenPrefix + k.ID + "." + b64.EncodeToString(payload)
	return signed + "." + b64.EncodeToString(mac(k.Secret, signed))
}

func mac(key []byte, signed string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(signed))
	return h.Sum(nil)
}

// Verify checks an access token's signature and expiry and returns its
// claims. It fails with ErrBadToken for anything malformed, too long, not
// signed by one of the keys or not an access token, and with
// ErrExpiredToken for a genuine token past its expiry. Revocation is
// Revocations.Check's business.
func (t *Tokens) Verify(token string) (Claims, error) { return t.verify(token, Access) }

// VerifyRefresh is Verify for refresh tokens.
func (t *Tokens) VerifyRefresh(token string) (Claims, error) { return t.verify(token, Refresh) }

func (t *Tokens) verify(token string, kind Kind) (Claims, error) {
	if len(token) > MaxTokenLen {
		return Claims{}, ErrBadToken
	}
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return Claims{}, ErrBadToken
	}
	kid, rest, ok := strings.Cut(rest, ".")
	if !ok {
		return Claims{}, ErrBadToken
	}
	payload64, sig64, ok := strings.Cut(rest, ".")
	if !ok {
		return Claims{}, ErrBadToken
	}
	key, ok := t.keys.Load().byID[kid]
	if !ok {
		return Claims{}, ErrBadToken
	}
	sig, err := decodeCanonical(b64, sig64)
	if err != nil || len(sig) != macLen {
		return Claims{}, ErrBadToken
	}
	if subtle.ConstantTimeCompare(sig, mac(key, token[:len(token)-len(sig64)-1])) != 1 {
		return Claims{}, ErrBadToken
	}
	payload, err := decodeCanonical(b64, payload64)
	if err != nil {
		return Claims{}, ErrBadToken
	}
	c, ok := decodeClaims(payload)
	if !ok || c.Kind != kind {
		return Claims{}, ErrBadToken
	}
	if !t.now().Before(c.ExpiresAt) {
		return Claims{}, ErrExpiredToken
	}
	return c, nil
}

// decodeClaims parses a payload that must hold exactly the claims.
func decodeClaims(p []byte) (Claims, bool) {
	if len(p) < 17 {
		return Claims{}, false
	}
	c := Claims{
		Kind:      Kind(p[0]),
		IssuedAt:  time.UnixMilli(int64(binary.BigEndian.Uint64(p[1:]))),
		ExpiresAt: time.UnixMilli(int64(binary.BigEndian.Uint64(p[9:]))),
	}
	p = p[17:]
	var ok bool
	for _, dst := range []*string{&c.PlayerID, &c.SessionID, &c.ID} {
		if *dst, p, ok = cutLenPrefixed(p); !ok {
			return Claims{}, false
		}
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
