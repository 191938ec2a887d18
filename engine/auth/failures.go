package auth

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/moonforge/moonforge/engine/store"
)

// failuresPrefix is the store prefix of the failed-login counts; + the key (method/account).
const failuresPrefix = "login-failures/"

// Failures counts failed logins per key in the store, with the growing delay and lockout of a
// Throttle, so that every node sharing the store sees one count: an account guessed at through
// several proxies is locked out as if through one. A key's entry expires ThrottleConfig.Lockout
// after its last failure. Its methods block on the store; it is safe for concurrent use.
type Failures struct {
	store store.Store
	cfg   ThrottleConfig
	now   func() time.Time
}

// NewFailures returns the counts kept in s, under cfg's rules.
func NewFailures(s store.Store, cfg ThrottleConfig) *Failures {
	return &Failures{store: s, cfg: cfg.withDefaults(), now: time.Now}
}

// failureRecord is an entry: the failures in a row, and the time before which no attempt is let
// through. Stored as 16 bytes: the count and the Unix ms, big-endian.
type failureRecord struct {
	count int
	until time.Time
}

func (r failureRecord) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(r.count))
	return binary.BigEndian.AppendUint64(b, uint64(r.until.UnixMilli()))
}

// decodeFailures reads an entry; a value of another shape counts as no entry.
func decodeFailures(b []byte) (failureRecord, bool) {
	if len(b) != 16 {
		return failureRecord{}, false
	}
	count := binary.BigEndian.Uint64(b)
	if count > 1<<31 {
		return failureRecord{}, false
	}
	return failureRecord{count: int(count), until: time.UnixMilli(int64(binary.BigEndian.Uint64(b[8:])))}, true
}

// Wait returns how long key must wait before its next attempt (0: it may try now), and whether
// the key has failures on record (Succeeded need not be called otherwise).
func (f *Failures) Wait(ctx context.Context, key string) (time.Duration, bool, error) {
	b, err := f.store.Get(ctx, failuresPrefix+key)
	if errors.Is(err, store.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("login failures: %w", err)
	}
	r, ok := decodeFailures(b)
	if !ok {
		return 0, true, nil
	}
	return max(r.until.Sub(f.now()), 0), true, nil
}

// maxFailureWrites bounds the compare-and-set attempts of one Failed; each conflict is another
// node's failure counted meanwhile.
const maxFailureWrites = 8

// Failed counts a failed attempt on key and returns the wait it imposes (0 while failures are
// free).
func (f *Failures) Failed(ctx context.Context, key string) (time.Duration, error) {
	k := failuresPrefix + key
	for range maxFailureWrites {
		b, version, err := f.store.GetVersion(ctx, k)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, fmt.Errorf("login failures: %w", err)
		}
		r, _ := decodeFailures(b)
		r.count++
		now := f.now()
		wait := f.cfg.waitAfter(r.count)
		r.until = now.Add(wait)
		err = f.store.Batch(ctx, []store.Op{{Key: k, Value: r.encode(), TTL: f.cfg.Lockout, Match: true, Version: version}})
		if err == nil {
			return wait, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return 0, fmt.Errorf("login failures: %w", err)
		}
	}
	return 0, fmt.Errorf("login failures: %d conflicting writes on %s", maxFailureWrites, key)
}

// Succeeded forgets key's failures.
func (f *Failures) Succeeded(ctx context.Context, key string) error {
	if err := f.store.Delete(ctx, failuresPrefix+key); err != nil {
		return fmt.Errorf("login failures: %w", err)
	}
	return nil
}
