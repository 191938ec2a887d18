// Package store is Moonforge's persistence interface: a durable, ordered
// key-value map with atomic batches and prefix scans.
//
// Keys are arbitrary bytes held in a Go string, 1..MaxKeyLen bytes; values are
// arbitrary bytes up to MaxValueLen. Every backend (the embedded bbolt one in
// this package; Redis and MySQL later) passes the conformance suite in
// package storetest. Features that only some backends will have, such as
// versioned values with compare-and-set and TTLs, come as further interfaces
// that a Store may also implement, and as new Op fields whose zero value keeps
// today's meaning.
package store

import (
	"context"
	"errors"
	"fmt"
)

// Limits on keys and values, the same for every backend.
const (
	// MaxKeyLen is the longest key in bytes. bbolt allows 32 KiB; ours is
	// smaller so that the SQL and Redis backends can index keys cheaply.
	MaxKeyLen = 1024
	// MaxValueLen is the largest value in bytes (16 MiB).
	MaxValueLen = 16 << 20
)

// Errors returned by every Store. Test them with errors.Is: they are often
// wrapped with the offending key.
var (
	// ErrNotFound: Get of a key that is absent.
	ErrNotFound = errors.New("store: not found")
	// ErrClosed: any call after Close.
	ErrClosed = errors.New("store: closed")
	// ErrInvalidKey: an empty key or one longer than MaxKeyLen.
	ErrInvalidKey = errors.New("store: invalid key")
	// ErrValueTooLarge: a value longer than MaxValueLen.
	ErrValueTooLarge = errors.New("store: value too large")
)

// Store is a durable key-value map. Implementations are safe for concurrent
// use by any number of goroutines. Every call but Close checks ctx before it
// starts work and returns ctx.Err() if it is done; a write that has started
// is not abandoned half way.
type Store interface {
	// Get returns the value of key, or ErrNotFound. The returned slice is the
	// caller's to keep and modify; it is non-nil (empty for an empty value).
	Get(ctx context.Context, key string) ([]byte, error)

	// Put sets key to value. It blocks until the write is durable: once it
	// returns nil the value survives a crash of the process (kill -9). The
	// store does not keep value after Put returns.
	Put(ctx context.Context, key string, value []byte) error

	// Delete removes key, durably like Put. Deleting a missing key is not an
	// error.
	Delete(ctx context.Context, key string) error

	// Batch applies ops in order, all or nothing, durably like Put. Later ops
	// on the same key win. Invalid ops fail the whole batch before anything
	// is written. An empty batch does nothing.
	Batch(ctx context.Context, ops []Op) error

	// Scan calls fn for each key that starts with prefix (every key when
	// prefix is empty), in byte order. key and value are valid only during
	// the call: copy them to keep them. fn runs on the caller's goroutine and
	// may call the store, but holds no transaction: Scan is not a snapshot,
	// and a key written during the scan may or may not be seen. A non-nil
	// error from fn stops the scan and is returned unchanged.
	Scan(ctx context.Context, prefix string, fn func(key string, value []byte) error) error

	// Close flushes and releases the store, waiting for calls in progress.
	// Every later call, Close included, returns ErrClosed.
	Close() error
}

// Op is one write of a Batch: a Put of Value at Key, or a Delete of Key when
// Delete is set (Value is then ignored).
type Op struct {
	Key    string
	Value  []byte
	Delete bool
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

// validateValue reports whether value fits in every Store, as an error
// wrapping ErrValueTooLarge.
func validateValue(key string, value []byte) error {
	if len(value) > MaxValueLen {
		return fmt.Errorf("%w: %d bytes at key %s, the limit is %d", ErrValueTooLarge, len(value), quoteStart(key), MaxValueLen)
	}
	return nil
}

// validateOps checks every op of a batch with validateKey and validateValue.
func validateOps(ops []Op) error {
	for i, op := range ops {
		if err := validateKey(op.Key); err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
		if !op.Delete {
			if err := validateValue(op.Key, op.Value); err != nil {
				return fmt.Errorf("op %d: %w", i, err)
			}
		}
	}
	return nil
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
