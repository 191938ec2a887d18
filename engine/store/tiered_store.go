package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// TieredConfig configures OpenTiered.
type TieredConfig struct {
	Front RedisConfig // a single node or Sentinel; not Cluster
	Back  MySQLConfig
	// WriteBack is how often the keys changed in Redis are written to MySQL.
	// Default 1s.
	WriteBack time.Duration
	// Log receives write-back failures (they are retried). Default
	// slog.Default().
	Log *slog.Logger
}

// TieredStore is Redis in front of MySQL. Reads and writes go to Redis;
// a key missing there is loaded from MySQL first. Every write adds its key to
// a set of dirty keys, which a goroutine writes back to MySQL every
// WriteBack, values with their versions, deletions as deletions. A deleted
// key stays in Redis as a tombstone until its deletion is written back (and
// some time after, so that a slow reader cannot load the deleted row again).
// Scan writes back first, then scans MySQL.
//
// What a write that returned means depends on Redis' persistence (see
// Capabilities.Durable and docs/persistence.md): with appendfsync always it
// survives a crash of Redis; MySQL has it within WriteBack. Redis must not
// evict keys (maxmemory-policy noeviction): an evicted dirty key is lost.
type TieredStore struct {
	life
	front  *RedisStore
	back   *MySQLStore
	caps   Capabilities
	every  time.Duration
	log    *slog.Logger
	flush  sync.Mutex // one write-back round at a time
	stop   chan struct{}
	once   sync.Once
	looped sync.WaitGroup
}

var _ Store = (*TieredStore)(nil)

// tieredBatch is redisBatch for the tiered layout: KEYS are the ops' keys,
// then the dirty set; a deletion leaves a tombstone (field d = 1). Every
// write, deletions too, changes field n, so that the write-back sees it.
var tieredBatch = redis.NewScript(`
local n = #KEYS - 1
for i = 1, n do
  local want = ARGV[4 * i - 2]
  if want ~= '' then
    local cur = '0'
    if redis.call('HGET', KEYS[i], 'd') ~= '1' then cur = redis.call('HGET', KEYS[i], 'n') or '0' end
    if cur ~= want then return {'conflict', i, cur} end
  end
end
for i = 1, n do
  local kind, ttl = ARGV[4 * i - 3], tonumber(ARGV[4 * i - 1])
  if kind == 'd' then
    redis.call('HINCRBY', KEYS[i], 'n', 1)
    redis.call('HDEL', KEYS[i], 'v')
    redis.call('HSET', KEYS[i], 'd', '1')
    redis.call('PERSIST', KEYS[i])
    redis.call('SADD', KEYS[n + 1], KEYS[i])
  elseif kind == 'p' then
    redis.call('HINCRBY', KEYS[i], 'n', 1)
    redis.call('HSET', KEYS[i], 'v', ARGV[4 * i], 'd', '0')
    if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) else redis.call('PERSIST', KEYS[i]) end
    redis.call('SADD', KEYS[n + 1], KEYS[i])
  end
end
return {'ok'}
`)

// tieredLoad copies a row read from MySQL into Redis unless the key is
// there already (written, or a tombstone, meanwhile).
var tieredLoad = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'n', ARGV[2], 'd', '0')
  if tonumber(ARGV[3]) > 0 then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) end
end
return 0
`)

// tieredClean marks a key written back at version ARGV[1] clean, unless it
// changed since; a tombstone then expires after ARGV[2] ms.
var tieredClean = redis.NewScript(`
local n = redis.call('HGET', KEYS[1], 'n')
if n == false or n == ARGV[1] then
  redis.call('SREM', KEYS[2], KEYS[1])
  if n ~= false and redis.call('HGET', KEYS[1], 'd') == '1' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
return 0
`)

// OpenTiered opens the front and the back and starts the write-back loop.
func OpenTiered(ctx context.Context, cfg TieredConfig) (*TieredStore, error) {
	if cfg.Front.Cluster {
		return nil, errors.New("store: tiered needs a single Redis node or Sentinel, not Cluster")
	}
	if cfg.WriteBack <= 0 {
		cfg.WriteBack = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	front, err := OpenRedis(ctx, cfg.Front)
	if err != nil {
		return nil, err
	}
	back, err := OpenMySQL(ctx, cfg.Back)
	if err != nil {
		_ = front.Close()
		return nil, err
	}
	fc, bc := front.Capabilities(), back.Capabilities()
	s := &TieredStore{
		front: front, back: back, every: cfg.WriteBack, log: cfg.Log, stop: make(chan struct{}),
		caps: Capabilities{
			Backend:       "tiered",
			AtomicBatch:   true,
			Durable:       fc.Durable,
			MaxValueLen:   min(fc.MaxValueLen, bc.MaxValueLen),
			MaxBatchOps:   min(fc.MaxBatchOps, bc.MaxBatchOps),
			MaxBatchBytes: min(fc.MaxBatchBytes, bc.MaxBatchBytes),
		},
	}
	s.looped.Go(s.loop)
	return s, nil
}

// Capabilities implements Store.
func (s *TieredStore) Capabilities() Capabilities { return s.caps }

func (s *TieredStore) dirtyKey() string { return s.front.prefix + "dirty" }

// Get implements Store.
func (s *TieredStore) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := s.GetVersion(ctx, key)
	return v, err
}

// GetVersion implements Store.
func (s *TieredStore) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := validateKey(key); err != nil {
		return nil, 0, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, 0, err
	}
	defer s.leave()
	v, n, found, err := s.readFront(ctx, key)
	if err != nil || found {
		return v, n, err
	}
	if err := s.load(ctx, key); err != nil {
		return nil, 0, err
	}
	v, n, found, err = s.readFront(ctx, key)
	if err == nil && !found {
		err = ErrNotFound
	}
	return v, n, err
}

// readFront reads key from Redis: found is false when Redis has nothing
// for it; a tombstone is ErrNotFound.
func (s *TieredStore) readFront(ctx context.Context, key string) (value []byte, version uint64, found bool, err error) {
	res, err := s.front.rdb.HMGet(ctx, s.front.dataKey(key), "v", "n", "d").Result()
	if err != nil {
		return nil, 0, false, fmt.Errorf("store: get %s: %w", quoteStart(key), redisErr(err))
	}
	if res[1] == nil {
		return nil, 0, false, nil
	}
	if res[2] == "1" {
		return nil, 0, true, ErrNotFound
	}
	v, _ := res[0].(string)
	n, err := strconv.ParseUint(res[1].(string), 10, 64)
	if err != nil {
		return nil, 0, true, fmt.Errorf("store: get %s: bad version %v", quoteStart(key), res[1])
	}
	return []byte(v), n, true, nil
}

// load copies key from MySQL into Redis if it is in MySQL and not in Redis.
func (s *TieredStore) load(ctx context.Context, key string) error {
	v, n, exp, err := s.back.getRow(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	err = tieredLoad.Run(ctx, s.front.rdb, []string{s.front.dataKey(key)}, v, n, exp).Err()
	if err != nil {
		return fmt.Errorf("store: load %s: %w", quoteStart(key), redisErr(err))
	}
	return nil
}

// Put implements Store.
func (s *TieredStore) Put(ctx context.Context, key string, value []byte) error {
	return s.Batch(ctx, []Op{{Key: key, Value: value}})
}

// Delete implements Store.
func (s *TieredStore) Delete(ctx context.Context, key string) error {
	return s.Batch(ctx, []Op{{Key: key, Delete: true}})
}

// Batch implements Store: the keys missing in Redis are loaded from MySQL,
// so that versions go on from MySQL's, then one script applies the batch.
func (s *TieredStore) Batch(ctx context.Context, ops []Op) error {
	if err := validateOps(ops, s.caps); err != nil {
		return err
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	if len(ops) == 0 {
		return nil
	}
	keys := make([]string, 0, len(ops)+1)
	args := make([]any, 0, 4*len(ops))
	for _, op := range ops {
		if !op.Delete || op.conditional() {
			if _, _, found, err := s.readFront(ctx, op.Key); err == nil && !found {
				if err := s.load(ctx, op.Key); err != nil {
					return err
				}
			}
		}
		keys = append(keys, s.front.dataKey(op.Key))
		args = append(args, redisOpArgs(op)...)
	}
	keys = append(keys, s.dirtyKey())
	return s.front.runScript(ctx, tieredBatch, ops, keys, args)
}

// Scan implements Store: it writes back what changed, then scans MySQL.
func (s *TieredStore) Scan(ctx context.Context, prefix string, fn func(key string, value []byte) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	err := s.writeBack(ctx)
	s.leave()
	if err != nil {
		return err
	}
	return s.back.Scan(ctx, prefix, fn)
}

// Flush writes back every key changed so far. It blocks until MySQL has
// them, or fails.
func (s *TieredStore) Flush(ctx context.Context) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	return s.writeBack(ctx)
}

func (s *TieredStore) loop() {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.Flush(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
				s.log.Warn("store: tiered write-back failed; retrying", "err", err)
			}
		}
	}
}

// tombstoneKeep is how long a deletion stays in Redis after MySQL has it.
func (s *TieredStore) tombstoneKeep() time.Duration { return max(time.Minute, 10*s.every) }

// writeBack writes every dirty key to MySQL, in chunks of 256 keys, one
// transaction each.
func (s *TieredStore) writeBack(ctx context.Context) error {
	s.flush.Lock()
	defer s.flush.Unlock()
	var cursor uint64
	for {
		members, next, err := s.front.rdb.SScan(ctx, s.dirtyKey(), cursor, "", 256).Result()
		if err != nil {
			return fmt.Errorf("store: write back: %w", redisErr(err))
		}
		if err := s.writeBackKeys(ctx, members); err != nil {
			return err
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

func (s *TieredStore) writeBackKeys(ctx context.Context, members []string) error {
	if len(members) == 0 {
		return nil
	}
	strip := len(s.front.dataKey(""))
	hm := make([]*redis.SliceCmd, len(members))
	ttl := make([]*redis.DurationCmd, len(members))
	_, err := s.front.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range members {
			hm[i] = p.HMGet(ctx, m, "v", "n", "d")
			ttl[i] = p.PTTL(ctx, m)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: write back: %w", redisErr(err))
	}
	rows := make([]backRow, 0, len(members))
	versions := make([]string, len(members))
	now := time.Now()
	for i, m := range members {
		if !strings.HasPrefix(m, s.front.dataKey("")) {
			continue
		}
		r := backRow{key: m[strip:], delete: true}
		res := hm[i].Val()
		if n, ok := res[1].(string); ok {
			versions[i] = n
			r.version, _ = strconv.ParseUint(n, 10, 64)
			if res[2] != "1" {
				v, _ := res[0].(string)
				r.value, r.delete = []byte(v), false
				if d := ttl[i].Val(); d > 0 {
					r.expiry = now.Add(d).UnixMilli()
				}
			}
		}
		rows = append(rows, r)
	}
	if err := s.back.writeBack(ctx, rows); err != nil {
		return err
	}
	_, err = s.front.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range members {
			tieredClean.Eval(ctx, p, []string{m, s.dirtyKey()}, versions[i], s.tombstoneKeep().Milliseconds())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: write back: %w", redisErr(err))
	}
	return nil
}

// Close implements Store: a last write-back, then both stores close.
func (s *TieredStore) Close() error {
	s.once.Do(func() { close(s.stop) })
	s.looped.Wait()
	return s.end(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := s.writeBack(ctx)
		return errors.Join(err, s.front.Close(), s.back.Close())
	})
}
