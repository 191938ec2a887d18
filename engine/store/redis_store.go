package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig configures OpenRedis. The client is go-redis's universal
// client: one address is a single node, a MasterName makes it Sentinel, and
// Cluster (or several addresses without a MasterName) makes it Redis Cluster.
type RedisConfig struct {
	Addrs      []string `yaml:"addrs"`       // host:port of the node, the Sentinels or the Cluster's seeds
	MasterName string   `yaml:"master_name"` // Sentinel's name of the master
	Cluster    bool     `yaml:"cluster"`     // Redis Cluster, also with one seed address
	Username   string   `yaml:"username"`
	Password   string   `yaml:"password"`
	DB         int      `yaml:"db"` // single node and Sentinel only
	// Prefix starts every Redis key of this store, so that several stores
	// (or test packages) share one server. It must not contain '{' or '}'.
	Prefix string `yaml:"prefix"`
	// DialTimeout and ReadTimeout bound each connection and command; 0:
	// go-redis's defaults (5s and 3s).
	DialTimeout time.Duration `yaml:"dial_timeout"`
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WaitReplicas, when positive, makes every write batch wait (Redis'
	// WAIT) until that many replicas have received it before it is
	// acknowledged; a batch that fewer replicas took within WaitTimeout
	// fails with ErrUnavailable (it is applied on the master, and a failover
	// may lose it). Redis' replication is asynchronous: without it, an
	// acknowledged write not yet replicated is lost when Sentinel promotes a
	// replica, or when Redis Cluster fails a master over.
	WaitReplicas int `yaml:"wait_replicas"`
	// WaitTimeout bounds that wait; 0: 1s. It must be shorter than
	// ReadTimeout.
	WaitTimeout time.Duration `yaml:"wait_timeout"`
}

// waitTimeout is WaitTimeout or its default.
func (c RedisConfig) waitTimeout() time.Duration {
	if c.WaitTimeout > 0 {
		return c.WaitTimeout
	}
	return time.Second
}

// validate checks the options that do not need a server.
func (c RedisConfig) validate() error {
	readTimeout := c.ReadTimeout
	if readTimeout == 0 {
		readTimeout = 3 * time.Second // go-redis' default
	}
	switch {
	case len(c.Addrs) == 0:
		return errors.New("store: RedisConfig.Addrs is empty")
	case strings.ContainsAny(c.Prefix, "{}"):
		return fmt.Errorf("store: redis prefix %q must not contain { or }", c.Prefix)
	case c.WaitReplicas < 0:
		return fmt.Errorf("store: redis wait_replicas %d is negative", c.WaitReplicas)
	case c.WaitReplicas > 0 && c.waitTimeout() >= readTimeout:
		return fmt.Errorf("store: redis wait_timeout %v must be shorter than read_timeout %v", c.waitTimeout(), readTimeout)
	}
	return nil
}

// RedisStore is the Store on Redis. Each key is a hash (field v: the value,
// n: the version) at Prefix+"k:"+key, so that a key's group tag is its Redis
// Cluster hash tag; every batch is one Lua script, atomic on the server. On a
// single node or Sentinel a sorted set at Prefix+"i" indexes the keys for
// ordered scans. On Cluster there is no index: Scan lists the matching keys
// of every master (holding their names in memory) and sorts them, and
// batches are atomic only within one group.
//
// Durable is true only when an acknowledged write survives a kill -9 of the
// server: the server (every master, on Cluster) reports appendonly yes and
// appendfsync always at open, and a failover cannot lose it: on Sentinel,
// WaitReplicas is at least 1; on Cluster, WaitReplicas is at least 1 or no
// master has a replica at open.
// See docs/persistence.md.
type RedisStore struct {
	life
	rdb     redis.UniversalClient
	cluster bool
	prefix  string
	wait    int           // WaitReplicas
	waitFor time.Duration // WaitTimeout
	caps    Capabilities
}

var _ Store = (*RedisStore)(nil)

// redisBatch applies one batch: KEYS are the ops' keys, then the index (when
// ARGV[1] is "1"); ARGV[2] is the length of the key prefix to strip for the
// index member; each op has four ARGV: kind (p, d or c), the version it must
// match ("" for none), the TTL in ms and the value.
var redisBatch = redis.NewScript(`
local idx = ARGV[1] == '1'
local strip = tonumber(ARGV[2])
local n = #KEYS
if idx then n = n - 1 end
for i = 1, n do
  local want = ARGV[4 * i]
  if want ~= '' then
    local cur = redis.call('HGET', KEYS[i], 'n') or '0'
    if cur ~= want then return {'conflict', i, cur} end
  end
end
for i = 1, n do
  local kind, ttl = ARGV[4 * i - 1], tonumber(ARGV[4 * i + 1])
  if kind == 'd' then
    redis.call('DEL', KEYS[i])
    if idx then redis.call('ZREM', KEYS[n + 1], string.sub(KEYS[i], strip + 1)) end
  elseif kind == 'p' then
    redis.call('HINCRBY', KEYS[i], 'n', 1)
    redis.call('HSET', KEYS[i], 'v', ARGV[4 * i + 2])
    if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) else redis.call('PERSIST', KEYS[i]) end
    if idx then redis.call('ZADD', KEYS[n + 1], 0, string.sub(KEYS[i], strip + 1)) end
  end
end
return {'ok'}
`)

// redisUnindex drops an index member whose key has expired, unless the key
// was written again meanwhile.
var redisUnindex = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[1]) end
return 0
`)

// OpenRedis connects to Redis and checks it with a PING.
func OpenRedis(ctx context.Context, cfg RedisConfig) (*RedisStore, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	opts := &redis.UniversalOptions{
		Addrs:         cfg.Addrs,
		MasterName:    cfg.MasterName,
		IsClusterMode: cfg.Cluster,
		Username:      cfg.Username,
		Password:      cfg.Password,
		DB:            cfg.DB,
		DialTimeout:   cfg.DialTimeout,
		ReadTimeout:   cfg.ReadTimeout,
		WriteTimeout:  cfg.ReadTimeout,
	}
	rdb := redis.NewUniversalClient(opts)
	_, cluster := rdb.(*redis.ClusterClient)
	s := &RedisStore{rdb: rdb, cluster: cluster, prefix: cfg.Prefix, wait: cfg.WaitReplicas, waitFor: cfg.waitTimeout()}
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("store: redis %s: %w", strings.Join(cfg.Addrs, ","), redisErr(err))
	}
	s.caps = Capabilities{
		Backend:       "redis",
		AtomicBatch:   !cluster,
		Durable:       s.fsyncAlways(ctx) && (cfg.MasterName == "" || s.wait > 0),
		MaxValueLen:   MaxValueLen,
		MaxBatchOps:   10000,
		MaxBatchBytes: 64 << 20,
	}
	return s, nil
}

// fsyncAlways reports whether the server says appendonly yes and
// appendfsync always (on Cluster: every master, and without WaitReplicas
// none with a replica, since the Cluster's failover may lose what was not
// replicated).
func (s *RedisStore) fsyncAlways(ctx context.Context) bool {
	check := func(ctx context.Context, c *redis.Client) error {
		conf, err := c.ConfigGet(ctx, "append*").Result()
		if err != nil {
			return err
		}
		if conf["appendonly"] != "yes" || conf["appendfsync"] != "always" {
			return errors.New("not fsynced")
		}
		if s.cluster && s.wait == 0 {
			info, err := c.Info(ctx, "replication").Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "connected_slaves:0\r\n") {
				return errors.New("a master with replicas")
			}
		}
		return nil
	}
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, check) == nil
	case *redis.Client:
		return check(ctx, c) == nil
	}
	return false
}

// Capabilities implements Store.
func (s *RedisStore) Capabilities() Capabilities { return s.caps }

func (s *RedisStore) dataKey(key string) string { return s.prefix + "k:" + key }
func (s *RedisStore) indexKey() string          { return s.prefix + "i" }

// redisErr maps a client error: a server's error reply stays as it is,
// unless it says the server cannot take the command now (see
// redisTransient); that and anything else (connection refused or reset,
// timeouts) wraps ErrUnavailable.
func redisErr(err error) error {
	var reply redis.Error
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.As(err, &reply) && !redisTransient(reply.Error()):
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// failed maps err with redisErr. On Cluster, an unavailable server also
// makes the client reload the slots' masters: go-redis does so by itself on
// a redirection and every minute, but not when a master stops answering,
// so without it the store would call a failed master until the minute is
// up, long after the Cluster has promoted its replica.
func (s *RedisStore) failed(err error) error {
	err = redisErr(err)
	if c, ok := s.rdb.(*redis.ClusterClient); ok && errors.Is(err, ErrUnavailable) {
		c.ReloadState(context.Background())
	}
	return err
}

// redisTransient reports whether an error reply means that the command was
// not run because of the server's state, not because of the command: a
// server loading its data, a replica (a master demoted by a failover), a
// replica that lost its master, a Cluster slot down, moving or migrating,
// too few replicas for min-replicas-to-write. go-redis retries these a few
// times; when they last longer the store is unavailable for the while.
func redisTransient(reply string) bool {
	kind, _, _ := strings.Cut(reply, " ")
	switch kind {
	case "LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK", "NOREPLICAS":
		return true
	}
	return false
}

// Get implements Store.
func (s *RedisStore) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := s.GetVersion(ctx, key)
	return v, err
}

// GetVersion implements Store.
func (s *RedisStore) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := validateKey(key); err != nil {
		return nil, 0, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, 0, err
	}
	defer s.leave()
	res, err := s.rdb.HMGet(ctx, s.dataKey(key), "v", "n").Result()
	if err != nil {
		return nil, 0, fmt.Errorf("store: get %s: %w", quoteStart(key), s.failed(err))
	}
	v, ok := res[0].(string)
	if !ok {
		return nil, 0, ErrNotFound
	}
	n, _ := res[1].(string)
	version, err := strconv.ParseUint(n, 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("store: get %s: bad version %q", quoteStart(key), n)
	}
	return []byte(v), version, nil
}

// Put implements Store.
func (s *RedisStore) Put(ctx context.Context, key string, value []byte) error {
	return s.Batch(ctx, []Op{{Key: key, Value: value}})
}

// Delete implements Store.
func (s *RedisStore) Delete(ctx context.Context, key string) error {
	return s.Batch(ctx, []Op{{Key: key, Delete: true}})
}

// Batch implements Store: one script call, or on Cluster one per group.
func (s *RedisStore) Batch(ctx context.Context, ops []Op) error {
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
	if !s.cluster {
		return s.runBatch(ctx, ops, true)
	}
	if singleGroup(ops) {
		return s.runBatch(ctx, ops, false)
	}
	if conditional(ops) {
		return fmt.Errorf("%w: %d ops", ErrCrossGroup, len(ops))
	}
	// Group by group tag, keeping the order of ops within each key.
	var groups [][]Op
	at := map[string]int{}
	for _, op := range ops {
		g := Group(op.Key)
		if g == "" {
			g = "\x00" + op.Key // an untagged key is its own group
		}
		i, ok := at[g]
		if !ok {
			i = len(groups)
			at[g] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], op)
	}
	for _, g := range groups {
		if err := s.runBatch(ctx, g, false); err != nil {
			return err
		}
	}
	return nil
}

// runBatch runs redisBatch for ops, with the index when indexed.
func (s *RedisStore) runBatch(ctx context.Context, ops []Op, indexed bool) error {
	keys := make([]string, 0, len(ops)+1)
	args := make([]any, 0, 2+4*len(ops))
	args = append(args, "0", len(s.prefix)+2)
	if indexed {
		args[0] = "1"
	}
	for _, op := range ops {
		keys = append(keys, s.dataKey(op.Key))
		args = append(args, redisOpArgs(op)...)
	}
	if indexed {
		keys = append(keys, s.indexKey())
	}
	return s.runScript(ctx, redisBatch, ops, keys, args)
}

// runScript runs a batch script (redisBatch, or the tiered store's) for
// ops and turns its reply into nil or a conflict; with WaitReplicas, only
// once the replicas have the batch.
func (s *RedisStore) runScript(ctx context.Context, script *redis.Script, ops []Op, keys []string, args []any) error {
	if s.wait > 0 {
		return s.runReplicated(ctx, script, ops, keys, args)
	}
	res, err := script.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return fmt.Errorf("store: batch of %d ops: %w", len(ops), s.failed(err))
	}
	return batchResult(res, ops)
}

// runReplicated runs the batch script and WAIT in one pipeline, so on
// one connection: WAIT counts the replicas that have this connection's
// writes. On Cluster the pipeline goes to the master of the batch's slot,
// following the Cluster's redirections here (go-redis follows them only
// for commands it routes itself).
func (s *RedisStore) runReplicated(ctx context.Context, script *redis.Script, ops []Op, keys []string, args []any) error {
	c, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return s.replicated(ctx, s.rdb, false, script, ops, keys, args)
	}
	for attempt := 0; ; attempt++ {
		err := s.replicatedOnSlot(ctx, c, script, ops, keys, args)
		if !clusterRetry(err) {
			return err
		}
		// The slot moved, is moving, or its master is failing over.
		c.ReloadState(ctx)
		if attempt < 9 {
			select {
			case <-ctx.Done():
			case <-time.After(min(10*time.Millisecond<<attempt, 200*time.Millisecond)):
				continue
			}
		}
		return fmt.Errorf("store: batch of %d ops: %w", len(ops), s.failed(err))
	}
}

// replicatedOnSlot runs replicated on the master of the batch's slot, or
// after ASKING on the master it is migrating to when its keys have left.
func (s *RedisStore) replicatedOnSlot(ctx context.Context, c *redis.ClusterClient, script *redis.Script, ops []Op, keys []string, args []any) error {
	node, err := c.MasterForKey(ctx, keys[0])
	if err != nil {
		return fmt.Errorf("store: batch of %d ops: %w", len(ops), s.failed(err))
	}
	err = s.replicated(ctx, node, false, script, ops, keys, args)
	addr, ok := askTarget(err)
	if !ok {
		return err
	}
	asked := false
	err = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		if m.Options().Addr != addr {
			return nil
		}
		asked = true
		return s.replicated(ctx, m, true, script, ops, keys, args)
	})
	if err == nil && !asked {
		err = fmt.Errorf("%w: batch of %d ops: ASK to %s, not a known master", ErrUnavailable, len(ops), addr)
	}
	return err
}

// askTarget returns the address of an ASK redirection.
func askTarget(err error) (string, bool) {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return "", false
	}
	f := strings.Fields(reply.Error())
	if len(f) != 3 || f[0] != "ASK" {
		return "", false
	}
	return f[2], true
}

// clusterRetry reports whether a replicated batch on Cluster failed before
// its script ran, in a way that a later attempt may not: a redirection, a
// slot down or migrating, a master that could not be reached.
func clusterRetry(err error) bool {
	var reply redis.Error
	if errors.As(err, &reply) {
		kind, _, _ := strings.Cut(reply.Error(), " ")
		return kind == "MOVED" || kind == "ASK" || kind == "TRYAGAIN" || kind == "CLUSTERDOWN"
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// replicated runs a batch script and WAIT in one pipeline on c, after
// ASKING when asking: the script's digest first, its text when the server
// lacks it (a promoted replica's script cache is empty). A redirection or
// an unreached server comes back as go-redis reports it (see
// clusterRetry); every other error is mapped.
func (s *RedisStore) replicated(ctx context.Context, c redis.Cmdable, asking bool, script *redis.Script, ops []Op, keys []string, args []any) error {
	run := func(eval func(redis.Pipeliner) *redis.Cmd) (*redis.Cmd, *redis.IntCmd, error) {
		var ran *redis.Cmd
		var wait *redis.IntCmd
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			if asking {
				p.Do(ctx, "asking")
			}
			ran = eval(p)
			wait = redis.NewIntCmd(ctx, "wait", s.wait, s.waitFor.Milliseconds())
			return p.Process(ctx, wait)
		})
		return ran, wait, err
	}
	ran, wait, err := run(func(p redis.Pipeliner) *redis.Cmd { return script.EvalSha(ctx, p, keys, args...) })
	if redis.HasErrorPrefix(ran.Err(), "NOSCRIPT") {
		ran, wait, err = run(func(p redis.Pipeliner) *redis.Cmd { return script.Eval(ctx, p, keys, args...) })
	}
	if err := ran.Err(); err != nil {
		if s.cluster && clusterRetry(err) {
			return err
		}
		return fmt.Errorf("store: batch of %d ops: %w", len(ops), s.failed(err))
	}
	if err != nil {
		return fmt.Errorf("store: batch of %d ops, waiting for replicas: %w", len(ops), s.failed(err))
	}
	res, err := ran.Slice()
	if err != nil {
		return fmt.Errorf("store: batch of %d ops: %w", len(ops), err)
	}
	if err := batchResult(res, ops); err != nil {
		return err
	}
	if n := wait.Val(); n < int64(s.wait) {
		return fmt.Errorf("%w: batch of %d ops applied on the master but received by %d of %d replicas within %v; a failover may lose it",
			ErrUnavailable, len(ops), n, s.wait, s.waitFor)
	}
	return nil
}

// redisOpArgs are the four script arguments of op: kind (p, d or c), the
// version it must match ("" for none), the TTL in ms (rounded up) and the
// value.
func redisOpArgs(op Op) []any {
	kind := "p"
	switch {
	case op.Check:
		kind = "c"
	case op.Delete:
		kind = "d"
	}
	match := ""
	if op.conditional() {
		match = strconv.FormatUint(op.Version, 10)
	}
	value := op.Value
	if value == nil {
		value = []byte{}
	}
	return []any{kind, match, op.TTL.Milliseconds() + boolInt(op.TTL%time.Millisecond != 0), value}
}

// batchResult turns a batch script's reply into nil or a conflict error.
func batchResult(res []any, ops []Op) error {
	if len(res) == 3 && res[0] == "conflict" {
		i, _ := res[1].(int64)
		cur, _ := strconv.ParseUint(fmt.Sprint(res[2]), 10, 64)
		return conflictError(ops[i-1].Key, ops[i-1].Version, cur)
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Scan implements Store.
func (s *RedisStore) Scan(ctx context.Context, prefix string, fn func(key string, value []byte) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	if s.cluster {
		return s.scanCluster(ctx, prefix, fn)
	}
	from := "[" + prefix
	to := "+"
	if end, ok := prefixEnd(prefix); ok {
		to = "(" + end
	}
	for {
		members, err := s.zrange(ctx, from, to)
		if err != nil {
			return err
		}
		if err := s.visit(ctx, members, fn); err != nil {
			return err
		}
		if len(members) < scanChunkKeys {
			return nil
		}
		from = "(" + members[len(members)-1]
	}
}

func (s *RedisStore) zrange(ctx context.Context, from, to string) ([]string, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	members, err := s.rdb.ZRangeByLex(ctx, s.indexKey(), &redis.ZRangeBy{Min: from, Max: to, Count: scanChunkKeys}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: scan: %w", s.failed(err))
	}
	return members, nil
}

// visit reads the values of keys in one pipeline and calls fn for each
// that has not expired.
func (s *RedisStore) visit(ctx context.Context, keys []string, fn func(key string, value []byte) error) error {
	if len(keys) == 0 {
		return nil
	}
	values, err := s.readMany(ctx, keys)
	if err != nil {
		return err
	}
	for i, k := range keys {
		if values[i] == nil {
			if !s.cluster {
				_ = redisUnindex.Run(ctx, s.rdb, []string{s.dataKey(k), s.indexKey()}, k).Err()
			}
			continue
		}
		if err := fn(k, values[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *RedisStore) readMany(ctx context.Context, keys []string) ([][]byte, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HGet(ctx, s.dataKey(k), "v")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: scan: %w", s.failed(err))
	}
	out := make([][]byte, len(keys))
	for i, c := range cmds {
		if v, err := c.Bytes(); err == nil {
			out[i] = v
		}
	}
	return out, nil
}

// scanCluster lists the keys under prefix on every master with SCAN, sorts
// them and reads them in chunks.
func (s *RedisStore) scanCluster(ctx context.Context, prefix string, fn func(key string, value []byte) error) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	c := s.rdb.(*redis.ClusterClient)
	pattern := globEscape(s.dataKey(prefix)) + "*"
	strip := len(s.dataKey(""))
	var mu sync.Mutex
	var keys []string
	err := c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		it := node.Scan(ctx, 0, pattern, 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			keys = append(keys, it.Val()[strip:])
			mu.Unlock()
		}
		return it.Err()
	})
	s.leave()
	if err != nil {
		return fmt.Errorf("store: scan: %w", s.failed(err))
	}
	slices.Sort(keys)
	for chunk := range slices.Chunk(keys, scanChunkKeys) {
		if err := s.visit(ctx, chunk, fn); err != nil {
			return err
		}
	}
	return nil
}

// globEscape escapes the glob characters of Redis' MATCH.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\', '^', '-':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// prefixEnd returns the smallest string greater than every string with the
// prefix, or false when there is none (the prefix is all 0xff).
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// Close implements Store.
func (s *RedisStore) Close() error {
	return s.end(func() error {
		if err := s.rdb.Close(); err != nil {
			return fmt.Errorf("store: close: %w", err)
		}
		return nil
	})
}
