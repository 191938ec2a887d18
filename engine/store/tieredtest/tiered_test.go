package tieredtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

func openTiered(t *testing.T, cfg store.TieredConfig) *store.TieredStore {
	t.Helper()
	s, err := store.OpenTiered(t.Context(), cfg)
	return storetest.Opened(t, s, err)
}

func config(t *testing.T, redisAddr, dsn string) store.TieredConfig {
	name := storetest.RandomName()
	return store.TieredConfig{
		Front:     store.RedisConfig{Addrs: []string{redisAddr}, Prefix: "t" + name + ":"},
		Back:      store.MySQLConfig{DSN: dsn, Table: "kv_" + name},
		WriteBack: 50 * time.Millisecond,
	}
}

func TestTieredConformance(t *testing.T) {
	srv := storetest.StartRedis(t, storetest.DurableRedis...)
	dsn := storetest.MySQLDSN(t)
	storetest.RunConformance(t, func(t *testing.T) store.Store {
		s := openTiered(t, config(t, srv.Addr, dsn))
		if c := s.Capabilities(); !c.Durable || !c.AtomicBatch || c.Backend != "tiered" {
			t.Fatalf("capabilities: %+v", c)
		}
		return s
	})
}

// TestTieredWriteBack: MySQL gets values, versions and deletions; after
// Redis loses everything, reads come from MySQL and versions go on from
// there.
func TestTieredWriteBack(t *testing.T) {
	ctx := t.Context()
	srv := storetest.StartRedis(t) // no persistence: the loss is the point
	dsn := storetest.MySQLDSN(t)
	cfg := config(t, srv.Addr, dsn)
	cfg.WriteBack = time.Hour // only explicit flushes
	s := openTiered(t, cfg)
	back, err := store.OpenMySQL(ctx, cfg.Back)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()

	for _, k := range []string{"a", "b", "gone"} {
		if err := s.Put(ctx, k, []byte("v-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "a", []byte("v-a2")); err != nil {
		t.Fatal(err)
	}
	if _, err := back.Get(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("MySQL has a before the write-back: %v", err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, va, err := back.GetVersion(ctx, "a")
	if err != nil || va != 2 {
		t.Fatalf("MySQL a: version %d, %v; want 2", va, err)
	}
	if err := s.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "gone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted key before write-back: %v", err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := back.Get(ctx, "gone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("MySQL still has the deleted key: %v", err)
	}
	if err := s.Put(ctx, "unflushed", []byte("x")); err != nil {
		t.Fatal(err)
	}

	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	got, v, err := s.GetVersion(ctx, "a")
	if err != nil || string(got) != "v-a2" || v != 2 {
		t.Fatalf("after Redis lost its data: a = %q, %d, %v", got, v, err)
	}
	if err := store.CompareAndSet(ctx, s, "b", 1, []byte("b2")); err != nil {
		t.Fatalf("CAS at MySQL's version after Redis lost its data: %v", err)
	}
	if _, err := s.Get(ctx, "unflushed"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a write not written back survived the loss of a Redis without persistence: %v", err)
	}
}

func TestTieredErrors(t *testing.T) {
	ctx := context.Background()
	_, err := store.OpenTiered(ctx, store.TieredConfig{Front: store.RedisConfig{Addrs: []string{"x:1"}, Cluster: true}})
	if err == nil {
		t.Error("tiered on Cluster: no error")
	}
	srv := storetest.StartRedis(t)
	_, err = store.OpenTiered(ctx, store.TieredConfig{Front: store.RedisConfig{Addrs: []string{srv.Addr}}, Back: store.MySQLConfig{DSN: "root@tcp(127.0.0.1:1)/x"}})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("no MySQL: %v, want ErrUnavailable", err)
	}
}

// TestTieredWaitReplicas: the front's wait_replicas holds for the tiered
// store's writes too: without a replica a write fails with ErrUnavailable
// after the wait, with one it is acknowledged.
func TestTieredWaitReplicas(t *testing.T) {
	ctx := t.Context()
	srv := storetest.StartRedis(t, append(storetest.DurableRedis, storetest.FastReplication...)...)
	cfg := config(t, srv.Addr, storetest.MySQLDSN(t))
	cfg.Front.WaitReplicas, cfg.Front.WaitTimeout = 1, 100*time.Millisecond
	s := openTiered(t, cfg)
	if err := s.Put(ctx, "k", []byte("v")); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Put without the replica the front waits for: %v, want ErrUnavailable", err)
	}
	host, port, _ := strings.Cut(srv.Addr, ":")
	storetest.StartRedis(t, "--replicaof", host, port)
	var err error
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if err = s.Put(ctx, "k", []byte("v")); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("Put with a replica: %v", err)
	}
}
