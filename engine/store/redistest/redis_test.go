package redistest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

func openRedis(t *testing.T, cfg store.RedisConfig) *store.RedisStore {
	t.Helper()
	s, err := store.OpenRedis(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestRedisConformance(t *testing.T) {
	srv := storetest.StartRedis(t, storetest.DurableRedis...)
	storetest.RunConformance(t, func(t *testing.T) store.Store {
		s := openRedis(t, store.RedisConfig{Addrs: []string{srv.Addr}, Prefix: "mf:" + storetest.RandomName() + ":"})
		if c := s.Capabilities(); !c.Durable || !c.AtomicBatch {
			t.Fatalf("capabilities of a single node with appendfsync always: %+v", c)
		}
		return s
	})
}

func TestRedisNotDurableWithoutFsync(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := openRedis(t, store.RedisConfig{Addrs: []string{srv.Addr}})
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
	if _, err := exec.LookPath("redis-cli"); err != nil {
		storetest.Missing(t, "redis-cli is not installed (Debian package redis-tools)")
	}
	var addrs []string
	for range 3 {
		srv := storetest.StartRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--appendonly", "yes", "--appendfsync", "always")
		addrs = append(addrs, srv.Addr)
	}
	out, err := exec.Command("redis-cli", append([]string{"--cluster", "create"}, append(addrs, "--cluster-yes")...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, _ := exec.Command("redis-cli", "-u", "redis://"+addrs[0], "cluster", "info").Output()
		if strings.Contains(string(info), "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster did not become ready: %s", info)
		}
		time.Sleep(100 * time.Millisecond)
	}
	storetest.RunConformance(t, func(t *testing.T) store.Store {
		s := openRedis(t, store.RedisConfig{Addrs: addrs, Cluster: true, Prefix: "c" + storetest.RandomName() + ":"})
		if c := s.Capabilities(); c.AtomicBatch || !c.Durable {
			t.Fatalf("capabilities of a cluster with appendfsync always: %+v", c)
		}
		return s
	})
}

// TestRedisSentinelConformance runs the suite through a Sentinel of its own
// that monitors a redis-server of its own: the client asks the Sentinel for
// the master.
func TestRedisSentinelConformance(t *testing.T) {
	master := storetest.StartRedis(t, storetest.DurableRedis...)
	sentinel := storetest.StartSentinel(t, master.Addr, "mf")
	storetest.RunConformance(t, func(t *testing.T) store.Store {
		s := openRedis(t, store.RedisConfig{Addrs: []string{sentinel.Addr}, MasterName: "mf", Prefix: "s" + storetest.RandomName() + ":"})
		if c := s.Capabilities(); !c.AtomicBatch || !c.Durable {
			t.Fatalf("capabilities through Sentinel: %+v", c)
		}
		return s
	})
}
