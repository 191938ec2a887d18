package storebench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/playerdata"
	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

// backends opens each backend once per benchmark run.
func backends(b *testing.B) []store.Store {
	ctx := context.Background()
	name := storetest.RandomName()
	bolt, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(b.TempDir(), "db")})
	if err != nil {
		b.Fatal(err)
	}
	redisAddr := storetest.StartRedis(b, storetest.DurableRedis...).Addr
	rd, err := store.OpenRedis(ctx, store.RedisConfig{Addrs: []string{redisAddr}, Prefix: "b" + name + ":"})
	if err != nil {
		b.Fatal(err)
	}
	dsn := storetest.MySQLDSN(b)
	my, err := store.OpenMySQL(ctx, store.MySQLConfig{DSN: dsn, Table: "kv"})
	if err != nil {
		b.Fatal(err)
	}
	mongoURL := storetest.MongoURL(b)
	mg, err := store.OpenMongo(ctx, store.MongoConfig{URL: mongoURL, Database: storetest.MongoDatabase(b, mongoURL)})
	if err != nil {
		b.Fatal(err)
	}
	ti, err := store.OpenTiered(ctx, store.TieredConfig{
		Front: store.RedisConfig{Addrs: []string{redisAddr}, Prefix: "t" + name + ":"},
		Back:  store.MySQLConfig{DSN: dsn, Table: "tiered"},
	})
	if err != nil {
		b.Fatal(err)
	}
	all := []store.Store{bolt, rd, my, mg, ti}
	b.Cleanup(func() {
		for _, s := range all {
			_ = s.Close()
		}
	})
	return all
}

// parallel runs op from 8 goroutines b.N times in all, and reports
// operations per second and the 99th percentile latency.
func parallel(b *testing.B, op func(ctx context.Context, g, i int) error) {
	const workers = 8
	ctx := context.Background()
	var next atomic.Int64
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	b.ResetTimer()
	start := time.Now()
	for g := range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := op(ctx, g, i); err != nil {
					errs <- err
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}

func BenchmarkStore(b *testing.B) {
	value := make([]byte, 512)
	for _, s := range backends(b) {
		name := s.Capabilities().Backend
		ctx := context.Background()
		for i := range 1000 {
			if err := s.Put(ctx, fmt.Sprintf("k/%d", i), value); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(name+"/get", func(b *testing.B) {
			parallel(b, func(ctx context.Context, _, i int) error {
				_, err := s.Get(ctx, fmt.Sprintf("k/%d", i%1000))
				return err
			})
		})
		b.Run(name+"/put", func(b *testing.B) {
			parallel(b, func(ctx context.Context, _, i int) error {
				return s.Put(ctx, fmt.Sprintf("k/%d", i%1000), value)
			})
		})
		b.Run(name+"/batch10", func(b *testing.B) {
			parallel(b, func(ctx context.Context, _, i int) error {
				ops := make([]store.Op, 10)
				for j := range ops {
					ops[j] = store.Op{Key: store.PlayerKey(strconv.Itoa(i%100), strconv.Itoa(j)), Value: value}
				}
				return s.Batch(ctx, ops)
			})
		})
		b.Run(name+"/cas", func(b *testing.B) {
			// Each goroutine has its own counter: the cost of a read and a
			// conditional write, without contention.
			parallel(b, func(ctx context.Context, g, _ int) error {
				return storetest.Increment(ctx, s, fmt.Sprintf("cas/%d", g))
			})
		})
	}
}

// BenchmarkWriteBehind: players saved per second through playerdata (lease,
// journal with fsync, fenced batch), 8 players saved concurrently.
func BenchmarkWriteBehind(b *testing.B) {
	for _, s := range backends(b) {
		b.Run(s.Capabilities().Backend, func(b *testing.B) {
			m, err := playerdata.Open(playerdata.Config{Store: s, Owner: "bench", Dir: b.TempDir(), FlushEvery: time.Hour, LeaseTTL: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(context.Background())
			players := make([]*playerdata.Data, 8)
			for g := range players {
				if players[g], err = m.Load(context.Background(), fmt.Sprint("w", g)); err != nil {
					b.Fatal(err)
				}
			}
			state := make([]byte, 2048)
			parallel(b, func(ctx context.Context, g, i int) error {
				_ = players[g].Set("state", state)
				_ = players[g].Set("n", []byte(strconv.Itoa(i)))
				return m.Save(ctx, fmt.Sprint("w", g))
			})
		})
	}
}

// BenchmarkRedisWaitReplicas: the cost of WaitReplicas 1 on a master with
// one replica (both appendfsync always), beside the same master without
// it, in the same run.
func BenchmarkRedisWaitReplicas(b *testing.B) {
	ctx := context.Background()
	master := storetest.StartRedis(b, append(storetest.DurableRedis, storetest.FastReplication...)...)
	host, port, _ := strings.Cut(master.Addr, ":")
	storetest.StartRedis(b, append(storetest.DurableRedis, "--replicaof", host, port)...)
	value := make([]byte, 512)
	for _, wait := range []int{0, 1} {
		s, err := store.OpenRedis(ctx, store.RedisConfig{Addrs: []string{master.Addr}, Prefix: fmt.Sprint("w", wait, ":"), WaitReplicas: wait})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		for deadline := time.Now().Add(time.Minute); s.Put(ctx, "k/0", value) != nil; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("the replica did not sync within a minute")
			}
		}
		b.Run(fmt.Sprint("wait", wait, "/put"), func(b *testing.B) {
			parallel(b, func(ctx context.Context, _, i int) error {
				return s.Put(ctx, fmt.Sprintf("k/%d", i%1000), value)
			})
		})
		b.Run(fmt.Sprint("wait", wait, "/batch10"), func(b *testing.B) {
			parallel(b, func(ctx context.Context, _, i int) error {
				ops := make([]store.Op, 10)
				for j := range ops {
					ops[j] = store.Op{Key: store.PlayerKey(strconv.Itoa(i%100), strconv.Itoa(j)), Value: value}
				}
				return s.Batch(ctx, ops)
			})
		})
	}
}
