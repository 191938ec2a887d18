package redistest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

func TestRedisConformance(t *testing.T) {
	srv := storetest.StartRedis(t, storetest.DurableRedis...)
	storetest.RunConformance(t, func(t *testing.T) store.Store {
		s := storetest.OpenRedis(t, store.RedisConfig{Addrs: []string{srv.Addr}, Prefix: "mf:" + storetest.RandomName() + ":"})
		if c := s.Capabilities(); !c.Durable || !c.AtomicBatch {
			t.Fatalf("capabilities of a single node with appendfsync always: %+v", c)
		}
		return s
	})
}

func TestRedisNotDurableWithoutFsync(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := storetest.OpenRedis(t, store.RedisConfig{Addrs: []string{srv.Addr}})
	if s.Capabilities().Durable {
		t.Fatal("a Redis without appendonly reports Durable")
	}
}

func TestOpenRedisErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := store.OpenRedis(ctx, store.RedisConfig{}); err == nil {
		t.Error("no address: no error")
	}
	if _, err := store.OpenRedis(ctx, store.RedisConfig{Addrs: []string{"127.0.0.1:1"}, Prefix: "a{b"}); err == nil {
		t.Error("prefix with a brace: no error")
	}
	_, err := store.OpenRedis(ctx, store.RedisConfig{Addrs: []string{"127.0.0.1:" + itoa(storetest.FreePort(t))}})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("nothing listening: %v, want ErrUnavailable", err)
	}
}

func itoa(n int) string { return fmt.Sprint(n) }

// TestRedisClusterConformance runs the suite on a Redis Cluster of three
// masters of its own: batches within a group are atomic, a conditional
// batch across groups is refused, scans list every master's keys in order.
func TestRedisClusterConformance(t *testing.T) {
	var addrs []string
	for _, srv := range storetest.StartRedisCluster(t, 3, 0, 15*time.Second, storetest.DurableRedis...) {
		addrs = append(addrs, srv.Addr)
	}
	storetest.RunConformance(t, func(t *testing.T) store.Store {
		s := storetest.OpenRedis(t, store.RedisConfig{Addrs: addrs, Cluster: true, Prefix: "c" + storetest.RandomName() + ":"})
		if c := s.Capabilities(); c.AtomicBatch || !c.Durable {
			t.Fatalf("capabilities of a cluster with appendfsync always: %+v", c)
		}
		return s
	})
}

// TestRedisSentinelConformance runs the suite through a Sentinel of its own
// that monitors a redis-server of its own: the client asks the Sentinel for
// the master. The failover itself is tested in engine/store/failovertest.
func TestRedisSentinelConformance(t *testing.T) {
	master := storetest.StartRedis(t, storetest.DurableRedis...)
	sentinel := storetest.StartSentinel(t, master.Addr, "mf", 1, 5*time.Second)
	storetest.RunConformance(t, func(t *testing.T) store.Store {
		s := storetest.OpenRedis(t, store.RedisConfig{Addrs: []string{sentinel.Addr}, MasterName: "mf", Prefix: "s" + storetest.RandomName() + ":"})
		if c := s.Capabilities(); !c.AtomicBatch || c.Durable {
			t.Fatalf("capabilities through Sentinel without wait_replicas (a failover may lose a write): %+v", c)
		}
		return s
	})
}

// TestRedisStateErrorsAreUnavailable: a write that the server refuses for
// its state, not for the write (a replica, such as a master demoted by a
// failover; too few replicas for min-replicas-to-write), fails with
// ErrUnavailable, so that callers retry it later (playerdata journals it).
func TestRedisStateErrorsAreUnavailable(t *testing.T) {
	master := storetest.StartRedis(t, append(storetest.FastReplication, "--min-replicas-to-write", "1")...)
	host, port, _ := strings.Cut(master.Addr, ":")
	replica := storetest.StartRedis(t, "--replicaof", host, port)
	s := storetest.OpenRedis(t, store.RedisConfig{Addrs: []string{replica.Addr}})
	if err := s.Put(t.Context(), "k", []byte("v")); !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "READONLY") {
		t.Errorf("Put on a replica: %v, want ErrUnavailable (READONLY)", err)
	}
	replica.Kill() // the master now counts no good replica
	s = storetest.OpenRedis(t, store.RedisConfig{Addrs: []string{master.Addr}})
	if err := s.Put(t.Context(), "k", []byte("v")); !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "NOREPLICAS") {
		t.Errorf("Put on a master without its replica: %v, want ErrUnavailable (NOREPLICAS)", err)
	}
}

// TestRedisWaitReplicas: with WaitReplicas a write is acknowledged once a
// replica has it; without a replica it fails with ErrUnavailable after
// WaitTimeout, though the master applied it.
func TestRedisWaitReplicas(t *testing.T) {
	ctx := t.Context()
	master := storetest.StartRedis(t, append(storetest.DurableRedis, storetest.FastReplication...)...)
	cfg := store.RedisConfig{Addrs: []string{master.Addr}, WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond}
	s := storetest.OpenRedis(t, cfg)
	err := s.Put(ctx, "k", []byte("alone"))
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "0 of 1 replicas") {
		t.Fatalf("Put without a replica: %v, want ErrUnavailable (0 of 1 replicas)", err)
	}
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "alone" {
		t.Fatalf("Get after an unreplicated Put: %q, %v; the master applies it", v, err)
	}
	host, port, _ := strings.Cut(master.Addr, ":")
	replica := storetest.StartRedis(t, "--replicaof", host, port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err = s.Put(ctx, "k", []byte("replicated")); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("Put with a replica: %v", err)
	}
	r := storetest.OpenRedis(t, store.RedisConfig{Addrs: []string{replica.Addr}})
	if v, err := r.Get(ctx, "k"); err != nil || string(v) != "replicated" {
		t.Fatalf("the replica has %q, %v right after the acknowledged Put", v, err)
	}
	if err := s.Batch(ctx, []store.Op{{Key: "k", Match: true, Version: 1}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a conflicting batch with WaitReplicas: %v, want ErrConflict", err)
	}
}

func TestRedisWaitReplicasOptions(t *testing.T) {
	for _, cfg := range []store.RedisConfig{
		{Addrs: []string{"127.0.0.1:1"}, WaitReplicas: -1},
		{Addrs: []string{"127.0.0.1:1"}, WaitReplicas: 1, WaitTimeout: 3 * time.Second},
		{Addrs: []string{"127.0.0.1:1"}, WaitReplicas: 1, WaitTimeout: time.Second, ReadTimeout: time.Second},
	} {
		_, err := store.OpenRedis(t.Context(), cfg)
		if err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("OpenRedis(%+v): %v, want an error naming the option", cfg, err)
		}
		if err := (store.Config{Backend: "redis", Redis: cfg, Timeout: time.Second}).Validate(); err == nil {
			t.Errorf("Config.Validate(%+v): no error", cfg)
		}
	}
}

// TestRedisWaitReplicasConformance runs the suite through WaitReplicas 1
// (the script and WAIT pipelined), on a master with a replica and on a
// Cluster of three masters with a replica each.
func TestRedisWaitReplicasConformance(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		master := storetest.StartRedis(t, append(storetest.DurableRedis, storetest.FastReplication...)...)
		host, port, _ := strings.Cut(master.Addr, ":")
		storetest.StartRedis(t, "--replicaof", host, port)
		storetest.RunConformance(t, func(t *testing.T) store.Store {
			s := storetest.OpenRedis(t, store.RedisConfig{Addrs: []string{master.Addr}, Prefix: "w" + storetest.RandomName() + ":", WaitReplicas: 1})
			for deadline := time.Now().Add(time.Minute); s.Put(t.Context(), "sync", nil) != nil; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the replica did not sync within a minute")
				}
			}
			if err := s.Delete(t.Context(), "sync"); err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
	t.Run("cluster", func(t *testing.T) {
		var addrs []string
		for _, srv := range storetest.StartRedisCluster(t, 3, 1, 15*time.Second, append(storetest.DurableRedis, storetest.FastReplication...)...) {
			addrs = append(addrs, srv.Addr)
		}
		storetest.RunConformance(t, func(t *testing.T) store.Store {
			s := storetest.OpenRedis(t, store.RedisConfig{Addrs: addrs, Cluster: true, Prefix: "w" + storetest.RandomName() + ":", WaitReplicas: 1})
			if c := s.Capabilities(); c.AtomicBatch || !c.Durable {
				t.Fatalf("capabilities of a cluster with replicas and WaitReplicas: %+v", c)
			}
			return s
		})
	})
}
