package redistest

import (
	"context"
	"errors"
	"fmt"
	"testing"

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
