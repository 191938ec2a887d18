package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Lease errors.
var (
	// ErrLeaseHeld: Acquire found the lease held by another owner, not yet
	// expired.
	ErrLeaseHeld = errors.New("store: lease held by another owner")
	// ErrLeaseLost: the lease was taken over (it had expired) or released;
	// the write was refused and nothing of it was written. It wraps
	// ErrConflict.
	ErrLeaseLost = fmt.Errorf("store: lease lost: %w", ErrConflict)
)

// Lease is one owner's claim on a group of keys, such as a player's data,
// with a fencing token: the version of the lease's record. Every write made
// through the lease carries the token as a condition (an Op with Check), so
// the store refuses it once another owner has taken the lease over, however
// late the write arrives (a process frozen past its lease, a slow network).
//
// The record lives at one key, in the same group as the keys it guards (see
// PlayerKey), so that the token and the writes form one atomic batch on
// every backend. It holds the owner and the expiry time; it is never deleted
// and has no TTL, so its version only grows and a token is never reused.
// Expiry compares wall clocks: the nodes' clocks must agree within a small
// part of the TTL.
//
// A Lease is safe for concurrent use; Renew and Batch are serialized, since
// a renewal changes the token.
type Lease struct {
	store Store
	key   string
	owner string
	ttl   time.Duration

	mu    sync.Mutex
	token uint64
	until time.Time
	// unsure holds the records of the writes since the last acknowledged
	// one whose outcome is unknown: each failed other than by a conflict
	// (a timeout after the server ran it, Redis' wait_replicas not met), or
	// was applied and reading its token back failed. At most one of them
	// was applied: each was conditional on the same token.
	unsure [][]byte
}

type leaseRecord struct {
	Owner string `json:"owner"`
	Until int64  `json:"until"` // unix ms; 0: released
}

// Acquire takes the lease at key for owner, for ttl, if it is free,
// expired, released or already owner's. Otherwise it fails with an error
// wrapping ErrLeaseHeld, naming the holder.
func Acquire(ctx context.Context, s Store, key, owner string, ttl time.Duration) (*Lease, error) {
	if owner == "" || ttl <= 0 {
		return nil, errors.New("store: Acquire needs an owner and a positive TTL")
	}
	l := &Lease{store: s, key: key, owner: owner, ttl: ttl}
	for {
		raw, version, err := s.GetVersion(ctx, key)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if err == nil {
			var rec leaseRecord
			if json.Unmarshal(raw, &rec) != nil {
				return nil, fmt.Errorf("store: lease %s: unreadable record %q", quoteStart(key), raw)
			}
			if rec.Owner != owner && time.Now().UnixMilli() < rec.Until {
				return nil, fmt.Errorf("%w: %s holds %s until %s", ErrLeaseHeld, rec.Owner, quoteStart(key),
					time.UnixMilli(rec.Until).UTC().Format(time.RFC3339Nano))
			}
		}
		err = l.write(ctx, version)
		if errors.Is(err, ErrConflict) {
			continue // another owner wrote the record meanwhile: look again
		}
		if err != nil {
			return nil, err
		}
		return l, nil
	}
}

// write sets the record to owner until now+ttl if it is at version, and
// reads the new token back.
func (l *Lease) write(ctx context.Context, version uint64) error {
	until := time.Now().Add(l.ttl)
	raw, _ := json.Marshal(leaseRecord{Owner: l.owner, Until: until.UnixMilli()})
	if err := CompareAndSet(ctx, l.store, l.key, version, raw); err != nil {
		if !errors.Is(err, ErrConflict) {
			l.remember(raw) // a timeout may come after the store applied it
		}
		return err
	}
	got, token, err := l.store.GetVersion(ctx, l.key)
	if err != nil {
		l.remember(raw) // applied, but its token is unknown
		return err
	}
	l.unsure = nil
	if string(got) != string(raw) { // taken over between the write and the read
		return fmt.Errorf("%w: %s", ErrLeaseLost, quoteStart(l.key))
	}
	l.token, l.until = token, until
	return nil
}

// Token returns the current fencing token.
func (l *Lease) Token() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.token
}

// Until returns when the lease expires unless renewed, by this node's clock.
func (l *Lease) Until() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}

// Renew extends the lease by its TTL from now, changing the token. It fails
// with ErrLeaseLost when another owner took it over. A renewal that failed
// but was applied (a timeout, or its token could not be read back) is found
// by the next one (the record is still the one it wrote), which renews from
// there.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.write(ctx, l.token)
	if errors.Is(err, ErrConflict) && !errors.Is(err, ErrLeaseLost) {
		if ok, rerr := l.renewUnsure(ctx); ok {
			err = rerr
		}
	}
	if errors.Is(err, ErrConflict) && !errors.Is(err, ErrLeaseLost) {
		return fmt.Errorf("%w: %s", ErrLeaseLost, quoteStart(l.key))
	}
	return err
}

// maxUnsure bounds the unsure records a lease keeps: as many failed
// renewals in a row outlast any lease's TTL.
const maxUnsure = 8

// remember adds raw to the unsure records.
func (l *Lease) remember(raw []byte) {
	if len(l.unsure) == maxUnsure {
		l.unsure = l.unsure[1:]
	}
	l.unsure = append(l.unsure, raw)
}

// renewUnsure renews the lease from the record's version when the record
// is one of the unsure ones: that write was applied, and no other owner
// has written since. ok reports whether it was; err is the renewal's.
// Renewing (rather than taking that version as the token) makes the token
// one whose write was acknowledged: with Redis' wait_replicas, one that a
// failover keeps.
func (l *Lease) renewUnsure(ctx context.Context) (ok bool, err error) {
	if len(l.unsure) == 0 {
		return false, nil
	}
	raw, version, err := l.store.GetVersion(ctx, l.key)
	if err != nil || !slices.ContainsFunc(l.unsure, func(u []byte) bool { return bytes.Equal(u, raw) }) {
		return false, nil
	}
	return true, l.write(ctx, version)
}

// Batch applies ops with the lease's token as a condition: all of them, or
// none and an error wrapping ErrLeaseLost when the lease was taken over (or
// ErrConflict when another condition of ops failed).
func (l *Lease) Batch(ctx context.Context, ops []Op) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	fenced := make([]Op, 0, len(ops)+1)
	fenced = append(fenced, Op{Key: l.key, Check: true, Version: l.token})
	err := l.store.Batch(ctx, append(fenced, ops...))
	if errors.Is(err, ErrConflict) {
		if ok, rerr := l.renewUnsure(ctx); ok {
			err = rerr
			if rerr == nil {
				fenced[0].Version = l.token
				err = l.store.Batch(ctx, append(fenced, ops...))
			}
		}
	}
	if !errors.Is(err, ErrConflict) {
		return err
	}
	if _, v, gerr := l.store.GetVersion(ctx, l.key); gerr == nil && v == l.token {
		return err // another condition failed; the lease holds
	}
	return fmt.Errorf("%w: %s (token %d)", ErrLeaseLost, quoteStart(l.key), l.token)
}

// Release gives the lease up, so that another owner may take it at once.
// Releasing a lease already lost is not an error.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	raw, _ := json.Marshal(leaseRecord{Owner: l.owner})
	err := CompareAndSet(ctx, l.store, l.key, l.token, raw)
	if errors.Is(err, ErrConflict) {
		return nil
	}
	return err
}

// LeaseOwner reads the lease record at key: its owner (the last one to take,
// renew or release it; "" when never taken) and its version.
func LeaseOwner(ctx context.Context, s Store, key string) (owner string, version uint64, err error) {
	raw, version, err := s.GetVersion(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	var rec leaseRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return "", 0, fmt.Errorf("store: lease %s: unreadable record %q", quoteStart(key), raw)
	}
	return rec.Owner, version, nil
}
