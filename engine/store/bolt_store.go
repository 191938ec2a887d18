package store

import (
	"bytes"
	"context"
	"encoding/binary"
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
	Path string `yaml:"path"`
	// Mode of the file when OpenBolt creates it. Default 0600.
	Mode os.FileMode `yaml:"-"`
	// Timeout is how long OpenBolt waits for the file's lock before it fails
	// with ErrLocked. Default 1s.
	Timeout time.Duration `yaml:"-"`
	// NoSync skips fsync on commit. A write then still survives kill -9 of
	// the process but not a crash of the machine. For tests and tools only.
	NoSync bool `yaml:"-"`
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

// BoltStore is the embedded Store: one bbolt file. Values live in bucket kv
// (as raw bytes, so files written before versions existed stay readable),
// each key's version and expiry in bucket meta, and keys with a TTL also in
// bucket exp, ordered by expiry, for the sweeper. Writes from concurrent
// goroutines are coalesced into shared transactions (a group commit, see
// commits), so they share one fsync. Safe for concurrent use.
type BoltStore struct {
	life
	db      *bolt.DB
	commits commits
	now     func() time.Time
	stop    chan struct{}
	swept   sync.WaitGroup
}

var _ Store = (*BoltStore)(nil)

var (
	boltBucket = []byte("kv")
	metaBucket = []byte("meta") // key -> version (8 bytes) and expiry in unix ns (8 bytes, 0: none)
	expBucket  = []byte("exp")  // expiry (8 bytes) + key -> nothing
)

// boltSweepEvery is how often expired keys are removed from the file. Reads
// never see them, whenever they are removed.
const boltSweepEvery = time.Minute

// Chunking of Scan: at most this many keys, or about this many value bytes,
// are read per read transaction.
const (
	scanChunkKeys  = 256
	scanChunkBytes = 1 << 20
)

var boltCaps = Capabilities{
	Backend:       "bolt",
	AtomicBatch:   true,
	Durable:       true,
	MaxValueLen:   MaxValueLen,
	MaxBatchOps:   100000,
	MaxBatchBytes: 64 << 20,
	GroupCommit:   true,
}

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
		for _, b := range [][]byte{boltBucket, metaBucket, expBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w", filepath.ToSlash(cfg.Path), err)
	}
	s := &BoltStore{db: db, now: time.Now, stop: make(chan struct{})}
	s.swept.Go(s.sweeper)
	return s, nil
}

// Capabilities implements Store.
func (s *BoltStore) Capabilities() Capabilities { return boltCaps }

// boltMeta is a key's entry in the meta bucket.
type boltMeta struct {
	version uint64
	expiry  int64 // unix ns, 0: none
}

// readMeta returns the meta of key; a key with a value but no meta (written
// before versions existed) is at version 1, an absent key at 0.
func readMeta(tx *bolt.Tx, key []byte) (m boltMeta, present bool) {
	if tx.Bucket(boltBucket).Get(key) == nil {
		return boltMeta{}, false
	}
	raw := tx.Bucket(metaBucket).Get(key)
	if len(raw) != 16 {
		return boltMeta{version: 1}, true
	}
	return boltMeta{version: binary.BigEndian.Uint64(raw), expiry: int64(binary.BigEndian.Uint64(raw[8:]))}, true
}

func (m boltMeta) expired(now int64) bool { return m.expiry != 0 && m.expiry <= now }

// Get implements Store.
func (s *BoltStore) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := s.GetVersion(ctx, key)
	return v, err
}

// GetVersion implements Store.
func (s *BoltStore) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := validateKey(key); err != nil {
		return nil, 0, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, 0, err
	}
	defer s.leave()
	var out []byte
	var version uint64
	now := s.now().UnixNano()
	err := s.db.View(func(tx *bolt.Tx) error {
		m, ok := readMeta(tx, []byte(key))
		if ok && !m.expired(now) {
			out = bytes.Clone(tx.Bucket(boltBucket).Get([]byte(key)))
			version = m.version
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, 0, fmt.Errorf("store: get %s: %w", quoteStart(key), err)
	case out == nil:
		return nil, 0, ErrNotFound
	}
	return out, version, nil
}

// Put implements Store. Concurrent writes share a transaction; Put returns
// after that transaction's fsync.
func (s *BoltStore) Put(ctx context.Context, key string, value []byte) error {
	return s.Batch(ctx, []Op{{Key: key, Value: value}})
}

// Delete implements Store.
func (s *BoltStore) Delete(ctx context.Context, key string) error {
	return s.Batch(ctx, []Op{{Key: key, Delete: true}})
}

// Batch implements Store: the ops run in one bbolt transaction, which may
// also carry other goroutines' writes.
func (s *BoltStore) Batch(ctx context.Context, ops []Op) error {
	if err := validateOps(ops, boltCaps); err != nil {
		return err
	}
	if len(ops) == 0 {
		return ctx.Err()
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	var conflict error
	err := s.commits.run(s.db, func(tx *bolt.Tx) error {
		conflict = nil
		now := s.now()
		for _, op := range ops {
			if !op.conditional() {
				continue
			}
			m, ok := readMeta(tx, []byte(op.Key))
			if !ok || m.expired(now.UnixNano()) {
				m.version = 0
			}
			if m.version != op.Version {
				// Not an error of the transaction: the others sharing it go on.
				conflict = conflictError(op.Key, op.Version, m.version)
				return nil
			}
		}
		for _, op := range ops {
			if err := boltApply(tx, op, now); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("store: batch of %d ops: %w", len(ops), err)
	case conflict != nil:
		return conflict
	}
	return nil
}

// boltApply writes one op in tx.
func boltApply(tx *bolt.Tx, op Op, now time.Time) error {
	if op.Check {
		return nil
	}
	key := []byte(op.Key)
	kv, meta, exp := tx.Bucket(boltBucket), tx.Bucket(metaBucket), tx.Bucket(expBucket)
	old, present := readMeta(tx, key)
	if old.expiry != 0 {
		if err := exp.Delete(expKey(old.expiry, key)); err != nil {
			return err
		}
	}
	if op.Delete {
		if err := kv.Delete(key); err != nil {
			return err
		}
		return meta.Delete(key)
	}
	next := boltMeta{version: 1}
	if present && !old.expired(now.UnixNano()) {
		next.version = old.version + 1
	}
	if op.TTL > 0 {
		next.expiry = now.Add(op.TTL).UnixNano()
		if err := exp.Put(expKey(next.expiry, key), nil); err != nil {
			return err
		}
	}
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:], next.version)
	binary.BigEndian.PutUint64(raw[8:], uint64(next.expiry))
	if err := meta.Put(key, raw[:]); err != nil {
		return err
	}
	value := op.Value
	if value == nil {
		value = []byte{}
	}
	return kv.Put(key, value)
}

func expKey(expiry int64, key []byte) []byte {
	out := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(key)), uint64(expiry))
	return append(out, key...)
}

// sweeper removes expired keys every boltSweepEvery until Close.
func (s *BoltStore) sweeper() {
	t := time.NewTicker(boltSweepEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			_ = s.sweep()
		}
	}
}

// sweep deletes up to 10000 expired keys in one transaction.
func (s *BoltStore) sweep() error {
	if err := s.enter(context.Background()); err != nil {
		return err
	}
	defer s.leave()
	return s.db.Update(func(tx *bolt.Tx) error {
		now := s.now().UnixNano()
		var due [][]byte
		cur := tx.Bucket(expBucket).Cursor()
		for k, _ := cur.First(); k != nil && len(due) < 10000; k, _ = cur.Next() {
			if len(k) < 8 || int64(binary.BigEndian.Uint64(k)) > now {
				break
			}
			due = append(due, bytes.Clone(k))
		}
		for _, k := range due {
			if err := tx.Bucket(expBucket).Delete(k); err != nil {
				return err
			}
			key := k[8:]
			if m, ok := readMeta(tx, key); ok && m.expired(now) {
				if err := tx.Bucket(boltBucket).Delete(key); err != nil {
					return err
				}
				if err := tx.Bucket(metaBucket).Delete(key); err != nil {
					return err
				}
			}
		}
		return nil
	})
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
	defer s.leave()
	now := s.now().UnixNano()
	err = s.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(boltBucket).Cursor()
		for k, v := cur.Seek(from); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			if m, _ := readMeta(tx, k); m.expired(now) {
				continue
			}
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
	err := s.end(func() error {
		close(s.stop)
		return s.db.Close()
	})
	if errors.Is(err, ErrClosed) {
		return err
	}
	s.swept.Wait()
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}
