// Package store is Moonforge's persistence interface: a durable, ordered
// key-value map with versioned values, compare-and-set, TTLs, atomic batches
// and prefix scans, and its backends: embedded bbolt (bolt_store.go), Redis
// (redis_store.go), MySQL/MariaDB (mysql_store.go), MongoDB (mongo_store.go)
// and a tiered store, Redis in front of MySQL (tiered_store.go).
//
// Keys are arbitrary bytes held in a Go string, 1..MaxKeyLen bytes; values are
// arbitrary bytes up to the backend's Limits().MaxValueLen, at most
// MaxValueLen. Every backend passes the conformance suite in package
// storetest, which checks what Capabilities says the backend promises.
//
// A key that contains a group tag, the bytes between its first '{' and the
// next '}' (as in Redis Cluster's hash tags), belongs to the group named by
// its bytes up to that '}' (see Group): a batch whose keys are all of one
// group is atomic on every backend. Player data is
// laid out as PlayerKey(id, name) for that reason.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Limits on keys and values that every backend accepts.
const (
	// MaxKeyLen is the longest key in bytes. bbolt allows 32 KiB; ours is
	// smaller so that the SQL and Redis backends can index keys cheaply.
	MaxKeyLen = 1024
	// MaxValueLen is the largest value in bytes (16 MiB) of any backend;
	// Limits().MaxValueLen may be smaller.
	MaxValueLen = 16 << 20
)

// Errors returned by every Store. Test them with errors.Is: they are often
// wrapped with the offending key.
var (
	// ErrNotFound: Get of a key that is absent or expired.
	ErrNotFound = errors.New("store: not found")
	// ErrClosed: any call after Close.
	ErrClosed = errors.New("store: closed")
	// ErrInvalidKey: an empty key or one longer than MaxKeyLen.
	ErrInvalidKey = errors.New("store: invalid key")
	// ErrValueTooLarge: a value longer than the backend's MaxValueLen.
	ErrValueTooLarge = errors.New("store: value too large")
	// ErrConflict: a batch whose conditions (Op.Match) did not hold; nothing
	// of it was written.
	ErrConflict = errors.New("store: version conflict")
	// ErrTooManyOps: a batch longer than the backend's MaxBatchOps.
	ErrTooManyOps = errors.New("store: too many ops in one batch")
	// ErrCrossGroup: a conditional batch whose keys span groups on a backend
	// that cannot apply such a batch atomically (Capabilities.AtomicBatch
	// false).
	ErrCrossGroup = errors.New("store: conditional batch spans key groups")
	// ErrUnavailable: the backend did not answer (connection refused, timed
	// out, server restarting). The write may or may not have been applied
	// unless the call says otherwise; retrying a conditional write is safe.
	ErrUnavailable = errors.New("store: backend unavailable")
)

// Store is a durable key-value map. Implementations are safe for concurrent
// use by any number of goroutines; every call blocks its caller until done.
// Every call but Close checks ctx before it starts work and returns ctx.Err()
// if it is done; a write that has started is not abandoned half way.
//
// Every key has a version: 0 while it is absent, and after each write a
// number greater than 0 and different from every earlier version of the key
// as long as the key is not deleted (a deleted key may start again at 1).
// Writing a key with the same value changes its version too.
type Store interface {
	// Get returns the value of key, or ErrNotFound. The returned slice is the
	// caller's to keep and modify; it is non-nil (empty for an empty value).
	Get(ctx context.Context, key string) ([]byte, error)

	// GetVersion is Get that also returns the key's version, for a later
	// conditional write. A missing key is ErrNotFound with version 0.
	GetVersion(ctx context.Context, key string) ([]byte, uint64, error)

	// Put sets key to value. It blocks until the write is durable (see
	// Capabilities.Durable): once it returns nil the value survives a crash
	// of the process (kill -9). The store does not keep value after Put
	// returns.
	Put(ctx context.Context, key string, value []byte) error

	// Delete removes key, durably like Put. Deleting a missing key is not an
	// error.
	Delete(ctx context.Context, key string) error

	// Batch applies ops in order, all or nothing, durably like Put. Later ops
	// on the same key win. Invalid ops fail the whole batch before anything
	// is written. When any op has Match set and the key's version before the
	// batch differs from Op.Version, nothing is written and the error wraps
	// ErrConflict. An empty batch does nothing. See Capabilities.AtomicBatch
	// for batches whose keys span groups.
	Batch(ctx context.Context, ops []Op) error

	// Scan calls fn for each key that starts with prefix (every key when
	// prefix is empty), in byte order, skipping expired keys. key and value
	// are valid only during the call: copy them to keep them. fn runs on the
	// caller's goroutine and may call the store, but holds no transaction:
	// Scan is not a snapshot, and a key written during the scan may or may
	// not be seen. A non-nil error from fn stops the scan and is returned
	// unchanged.
	Scan(ctx context.Context, prefix string, fn func(key string, value []byte) error) error

	// Capabilities says what this backend guarantees, and its limits.
	Capabilities() Capabilities

	// Close flushes and releases the store, waiting for calls in progress.
	// Every later call, Close included, returns ErrClosed.
	Close() error
}

// Capabilities is what a backend promises beyond what every Store does, and
// its limits. docs/persistence.md has the table for each backend.
type Capabilities struct {
	// Backend names the backend: bolt, redis, mysql, mongo or tiered.
	Backend string
	// AtomicBatch: any batch is all or nothing for readers and on a crash.
	// When false, only a batch whose keys are all of one group (see the
	// package doc) is; a conditional batch spanning groups is refused with
	// ErrCrossGroup, an unconditional one is applied group by group.
	AtomicBatch bool
	// Durable: a write that returned nil survives a crash of the server
	// process. False for Redis without appendfsync always (see
	// docs/persistence.md), and for the tiered store's front.
	Durable bool
	// MaxValueLen is the largest value accepted, at most MaxValueLen.
	MaxValueLen int
	// MaxBatchOps is the longest batch accepted.
	MaxBatchOps int
	// MaxBatchBytes bounds the sum of key and value lengths of one batch.
	MaxBatchBytes int
	// TTLResolution is how late an expired key may still be read at worst;
	// 0 when it is never seen after its TTL.
	TTLResolution time.Duration
	// GroupCommit: writes made at once share commits (and their fsync), so
	// a caller with many writes to make gains from making them together
	// rather than a few at a time.
	GroupCommit bool
}

// Op is one write of a Batch: a Put of Value at Key, a Delete of Key when
// Delete is set (Value is then ignored), or only a condition when Check is
// set.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
	// TTL, when positive, makes a Put's key expire after TTL; it is then
	// absent to Get and Scan. A Put without TTL clears an earlier one.
	TTL time.Duration
	// Match makes the batch conditional: it applies only if Key's version
	// before the batch is Version (0: the key is absent).
	Match   bool
	Version uint64
	// Check makes the op a condition only (Match is implied): nothing is
	// written at Key. Fencing tokens use it (see Lease).
	Check bool
}

// conditional reports whether op carries a condition.
func (op Op) conditional() bool { return op.Match || op.Check }

// CompareAndSet writes value at key if the key's version is version (0: only
// if the key is absent), and returns ErrConflict otherwise.
func CompareAndSet(ctx context.Context, s Store, key string, version uint64, value []byte) error {
	return s.Batch(ctx, []Op{{Key: key, Value: value, Match: true, Version: version}})
}

// PlayerKey is the key of a player's record name, in the player's group, so
// that all of one player's keys can be batched atomically on every backend.
func PlayerKey(playerID, name string) string {
	return "p/{" + playerID + "}/" + name
}

// Group returns the group of key, or "" when it has none: its bytes up to
// and including the first '}' that follows a '{' with at least one byte
// between them. The bytes between the braces are the Redis Cluster hash tag,
// so all keys of a group are in one slot (and in one MongoDB document).
func Group(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return ""
	}
	return key[:i+2+j]
}

// validateKey reports whether key is acceptable to every Store, as an error
// wrapping ErrInvalidKey.
func validateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key of %d bytes is longer than %d (starts %s)", ErrInvalidKey, len(key), MaxKeyLen, quoteStart(key))
	}
	return nil
}

// validateValue reports whether value fits within max bytes, as an error
// wrapping ErrValueTooLarge.
func validateValue(key string, value []byte, max int) error {
	if len(value) > max {
		return fmt.Errorf("%w: %d bytes at key %s, the limit is %d", ErrValueTooLarge, len(value), quoteStart(key), max)
	}
	return nil
}

// validateOps checks every op of a batch against the keys' and the
// backend's limits.
func validateOps(ops []Op, c Capabilities) error {
	if len(ops) > c.MaxBatchOps {
		return fmt.Errorf("%w: %d ops, the limit is %d", ErrTooManyOps, len(ops), c.MaxBatchOps)
	}
	size := 0
	for i, op := range ops {
		if err := validateKey(op.Key); err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
		size += len(op.Key)
		if !op.Delete && !op.Check {
			if err := validateValue(op.Key, op.Value, c.MaxValueLen); err != nil {
				return fmt.Errorf("op %d: %w", i, err)
			}
			size += len(op.Value)
		}
		if op.TTL < 0 {
			return fmt.Errorf("store: op %d: negative TTL %v", i, op.TTL)
		}
	}
	if size > c.MaxBatchBytes {
		return fmt.Errorf("%w: a batch of %d bytes, the limit is %d", ErrValueTooLarge, size, c.MaxBatchBytes)
	}
	return nil
}

// singleGroup reports whether all keys of ops are of one group (a tagged
// group, or all untagged).
func singleGroup(ops []Op) bool {
	for _, op := range ops[1:] {
		if Group(op.Key) != Group(ops[0].Key) || Group(op.Key) == "" {
			return false
		}
	}
	return true
}

// conditional reports whether any op of ops carries a condition.
func conditional(ops []Op) bool {
	for _, op := range ops {
		if op.conditional() {
			return true
		}
	}
	return false
}

// validatePrefix accepts the empty prefix, unlike validateKey.
func validatePrefix(prefix string) error {
	if len(prefix) > MaxKeyLen {
		return fmt.Errorf("%w: prefix of %d bytes is longer than %d", ErrInvalidKey, len(prefix), MaxKeyLen)
	}
	return nil
}

// quoteStart quotes at most the first 64 bytes of key for an error message.
func quoteStart(key string) string {
	const n = 64
	if len(key) <= n {
		return fmt.Sprintf("%q", key)
	}
	return fmt.Sprintf("%q...", key[:n])
}

// conflictError wraps ErrConflict with the key whose version did not match.
func conflictError(key string, want, got uint64) error {
	return fmt.Errorf("%w: key %s is at version %d, the batch expected %d", ErrConflict, quoteStart(key), got, want)
}

// life guards a backend against use after Close: every call holds mu for
// reading, Close for writing, so Close waits for calls in progress.
type life struct {
	mu     sync.RWMutex
	closed bool
}

// enter checks ctx and read-locks l against Close. On success the caller
// must call l.leave.
func (l *life) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (l *life) leave() { l.mu.RUnlock() }

// end marks l closed once, waiting for calls in progress, and runs release
// with the lock held. A second call returns ErrClosed.
func (l *life) end(release func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.closed = true
	return release()
}
