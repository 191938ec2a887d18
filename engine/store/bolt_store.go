package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrLocked: OpenBolt found the file locked by another process, or by another
// open BoltStore in this one, for longer than BoltConfig.Timeout. bbolt takes
// the lock with flock on Linux and macOS and with LockFileEx on Windows; the
// error and its message (the path in forward slashes) are the same on each.
var ErrLocked = errors.New("store: database file is in use by another process")

// Defaults of BoltConfig.
const (
	DefaultBoltMode    os.FileMode = 0o600
	DefaultBoltTimeout             = time.Second
)

// BoltConfig configures OpenBolt. A zero (or negative) field takes its
// default.
type BoltConfig struct {
	// Path is the database file. Its parent directory is created (mode 0700)
	// if missing. Required.
	Path string
	// Mode of the file when OpenBolt creates it. Default 0600.
	Mode os.FileMode
	// Timeout is how long OpenBolt waits for the file's lock before it fails
	// with ErrLocked. Default 1s.
	Timeout time.Duration
	// NoSync skips fsync on commit. A write then still survives kill -9 of
	// the process but not a crash of the machine. For tests and tools only.
	NoSync bool
}

func (c BoltConfig) withDefaults() BoltConfig {
	if c.Mode == 0 {
		c.Mode = DefaultBoltMode
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultBoltTimeout
	}
	return c
}

// BoltStore is the embedded Store: one bbolt file, holding all keys in one
// bucket. Writes from concurrent goroutines are coalesced into shared
// transactions (a group commit, see commits), so they share one fsync. Safe for
// concurrent use.
type BoltStore struct {
	mu      sync.RWMutex // read-held by every call, write-held by Close
	closed  bool
	db      *bolt.DB
	commits commits
}

var _ Store = (*BoltStore)(nil)

var boltBucket = []byte("kv")

// Chunking of Scan: at most this many keys, or about this many value bytes,
// are read per read transaction.
const (
	scanChunkKeys  = 256
	scanChunkBytes = 1 << 20
)

// OpenBolt opens, or creates, the bbolt file at cfg.Path. It blocks for up
// to cfg.Timeout while another holder has the file's lock, then fails with
// an error wrapping ErrLocked.
func OpenBolt(cfg BoltConfig) (*BoltStore, error) {
	cfg = cfg.withDefaults()
	if cfg.Path == "" {
		return nil, errors.New("store: BoltConfig.Path is empty")
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory of %s: %w", filepath.ToSlash(cfg.Path), err)
	}
	db, err := bolt.Open(cfg.Path, cfg.Mode, &bolt.Options{Timeout: cfg.Timeout, NoSync: cfg.NoSync})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (gave up after %v)", ErrLocked, filepath.ToSlash(cfg.Path), cfg.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", filepath.ToSlash(cfg.Path), err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w", filepath.ToSlash(cfg.Path), err)
	}
	return &BoltStore{db: db}, nil
}

// enter checks ctx and read-locks s against Close. On success the caller
// must call s.mu.RUnlock.
func (s *BoltStore) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// Get implements Store.
func (s *BoltStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(boltBucket).Get([]byte(key)); v != nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("store: get %s: %w", quoteStart(key), err)
	case out == nil:
		return nil, ErrNotFound
	}
	return out, nil
}

// Put implements Store. Concurrent writes share a transaction; Put returns
// after that transaction's fsync.
func (s *BoltStore) Put(ctx context.Context, key string, value []byte) error {
	if err := validateKey(key); err != nil {
		return err
	}
	if err := validateValue(key, value); err != nil {
		return err
	}
	return s.write(ctx, func(b *bolt.Bucket) error {
		return b.Put([]byte(key), value)
	}, "put "+quoteStart(key))
}

// Delete implements Store.
func (s *BoltStore) Delete(ctx context.Context, key string) error {
	if err := validateKey(key); err != nil {
		return err
	}
	return s.write(ctx, func(b *bolt.Bucket) error {
		return b.Delete([]byte(key))
	}, "delete "+quoteStart(key))
}

// Batch implements Store: the ops run in one bbolt transaction, which may
// also carry other goroutines' writes.
func (s *BoltStore) Batch(ctx context.Context, ops []Op) error {
	if err := validateOps(ops); err != nil {
		return err
	}
	if len(ops) == 0 {
		return ctx.Err()
	}
	return s.write(ctx, func(b *bolt.Bucket) error {
		for _, op := range ops {
			var err error
			if op.Delete {
				err = b.Delete([]byte(op.Key))
			} else {
				err = b.Put([]byte(op.Key), op.Value)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}, fmt.Sprintf("batch of %d ops", len(ops)))
}

// write runs fn in a shared (batched) write transaction. fn may run more
// than once, so it must only write to b.
func (s *BoltStore) write(ctx context.Context, fn func(b *bolt.Bucket) error, what string) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	err := s.commits.run(s.db, func(tx *bolt.Tx) error {
		return fn(tx.Bucket(boltBucket))
	})
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// scanEntry is one key of a Scan chunk; its value is chunk.buf[start:end].
type scanEntry struct {
	key        string
	start, end int
}

type scanChunk struct {
	entries []scanEntry
	buf     []byte
}

// Scan implements Store. It reads keys in chunks, each in its own short read
// transaction, and calls fn with no transaction open, so fn may write to s.
func (s *BoltStore) Scan(ctx context.Context, prefix string, fn func(key string, value []byte) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	p := []byte(prefix)
	from := p
	var c scanChunk
	for {
		more, err := s.readChunk(ctx, p, from, &c)
		if err != nil {
			return err
		}
		for _, e := range c.entries {
			if err := fn(e.key, c.buf[e.start:e.end:e.end]); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		// The smallest key after the last one seen.
		from = append([]byte(c.entries[len(c.entries)-1].key), 0)
	}
}

// readChunk fills c with the keys from "from" on that start with prefix,
// and reports whether more such keys follow.
func (s *BoltStore) readChunk(ctx context.Context, prefix, from []byte, c *scanChunk) (more bool, err error) {
	c.entries, c.buf = c.entries[:0], c.buf[:0]
	if err := s.enter(ctx); err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	err = s.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(boltBucket).Cursor()
		for k, v := cur.Seek(from); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			if len(c.entries) == scanChunkKeys || (len(c.entries) > 0 && len(c.buf)+len(v) > scanChunkBytes) {
				more = true
				return nil
			}
			c.entries = append(c.entries, scanEntry{key: string(k), start: len(c.buf), end: len(c.buf) + len(v)})
			c.buf = append(c.buf, v...)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: scan %s: %w", quoteStart(string(prefix)), err)
	}
	return more, nil
}

// Close implements Store. It waits for calls in progress to finish.
func (s *BoltStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}
