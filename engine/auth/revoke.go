package auth

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/moonforge/moonforge/engine/store"
)

// Store keys of the revocation list; each value starts with the entry's own expiry (Unix ms, 8
// bytes big-endian), after which no token it concerns can be valid anyway and Sweep drops it.
const (
	revokedPrefix  = "revoked/"
	revokedSession = revokedPrefix + "session/" // + session id: every token of the session
	revokedPlayer  = revokedPrefix + "player/"  // + player id; then 8 bytes: tokens issued up to then
	usedRefresh    = revokedPrefix + "refresh/" // + hex token id: a refresh token already used
)

// Revocations is the revocation list of tokens, kept in the store so that every process sharing
// it sees it. Its methods block on the store; it is safe for concurrent use.
type Revocations struct {
	store store.Store
	ttl   time.Duration // how long an entry must outlive its revocation: the longest token life
	now   func() time.Time
}

// NewRevocations returns the list over s, whose entries live for ttl (pass Tokens.RefreshTTL).
func NewRevocations(s store.Store, ttl time.Duration) *Revocations {
	return &Revocations{store: s, ttl: ttl, now: time.Now}
}

// RevokeSession revokes every token of a session.
func (r *Revocations) RevokeSession(ctx context.Context, sessionID string) error {
	return r.store.Put(ctx, revokedSession+sessionID, r.until(nil))
}

// RevokePlayer revokes every token of the player issued until now, in every session.
func (r *Revocations) RevokePlayer(ctx context.Context, playerID string) error {
	return r.store.Put(ctx, revokedPlayer+playerID, r.until(binary.BigEndian.AppendUint64(nil, uint64(r.now().UnixMilli()))))
}

func (r *Revocations) until(rest []byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(r.now().Add(r.ttl).UnixMilli())), rest...)
}

// Check returns ErrRevokedToken if the token of c was revoked, or the store's error.
func (r *Revocations) Check(ctx context.Context, c Claims) error {
	if _, err := r.store.Get(ctx, revokedSession+c.SessionID); err == nil {
		return ErrRevokedToken
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("auth: revocation list: %w", err)
	}
	v, err := r.store.Get(ctx, revokedPlayer+c.PlayerID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("auth: revocation list: %w", err)
	case len(v) >= 16 && c.IssuedAt.UnixMilli() <= int64(binary.BigEndian.Uint64(v[8:])):
		return ErrRevokedToken
	}
	return nil
}

// UseRefresh checks a refresh token's revocation and marks it used: a second use is
// ErrRevokedToken, on any process sharing the store (the mark is written by compare-and-set, so
// of two uses at once exactly one passes).
func (r *Revocations) UseRefresh(ctx context.Context, c Claims) error {
	if c.Kind != Refresh {
		return ErrBadToken
	}
	if err := r.Check(ctx, c); err != nil {
		return err
	}
	key := usedRefresh + hex.EncodeToString([]byte(c.ID))
	err := store.CompareAndSet(ctx, r.store, key, 0, binary.BigEndian.AppendUint64(nil, uint64(c.ExpiresAt.UnixMilli())))
	switch {
	case errors.Is(err, store.ErrConflict):
		return ErrRevokedToken
	case err != nil:
		return fmt.Errorf("auth: revocation list: %w", err)
	}
	return nil
}

// Sweep deletes the entries past their expiry and returns how many it deleted.
func (r *Revocations) Sweep(ctx context.Context) (int, error) {
	now := r.now().UnixMilli()
	var ops []store.Op
	err := r.store.Scan(ctx, revokedPrefix, func(key string, v []byte) error {
		if len(v) < 8 || int64(binary.BigEndian.Uint64(v)) < now {
			ops = append(ops, store.Op{Key: key, Delete: true})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(ops), r.store.Batch(ctx, ops)
}
