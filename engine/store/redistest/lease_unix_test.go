//go:build unix

package redistest

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

// TestRedisLeaseUnsureRenewal: a renewal that fails because its replica
// did not take it within the wait (applied on the master) is not taken for
// a lost lease by the next renewal or write; one that another owner
// overwrote since still is.
func TestRedisLeaseUnsureRenewal(t *testing.T) {
	ctx := t.Context()
	master := storetest.StartRedis(t, append(storetest.DurableRedis, storetest.FastReplication...)...)
	host, port, _ := strings.Cut(master.Addr, ":")
	replica := storetest.StartRedis(t, "--replicaof", host, port)
	s := storetest.OpenRedis(t, store.RedisConfig{Addrs: []string{master.Addr}, WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond})
	key := store.PlayerKey("p", "lease")
	var l *store.Lease
	var err error
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if l, err = store.Acquire(ctx, s, key, "node-a", time.Second); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("Acquire once the replica syncs: %v", err)
	}
	put := []store.Op{{Key: store.PlayerKey("p", "data"), Value: []byte("x")}}
	unsure := func() {
		t.Helper()
		if err := replica.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer replica.Signal(syscall.SIGCONT)
		if err := l.Renew(ctx); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Renew with the replica frozen: %v, want ErrUnavailable", err)
		}
		if err := l.Batch(ctx, put); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("a write after it, the replica still frozen: %v, want ErrUnavailable", err)
		}
	}
	unsure()
	if err := l.Renew(ctx); err != nil {
		t.Fatalf("Renew after an unsure renewal: %v", err)
	}
	unsure()
	if err := l.Batch(ctx, put); err != nil {
		t.Fatalf("a write after an unsure renewal: %v", err)
	}
	unsure()
	time.Sleep(1100 * time.Millisecond) // node-a's lease expires
	if _, err := store.Acquire(ctx, s, key, "node-b", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := l.Renew(ctx); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Renew after an unsure renewal and a takeover: %v, want ErrLeaseLost", err)
	}
	if err := l.Batch(ctx, put); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("a write after an unsure renewal and a takeover: %v, want ErrLeaseLost", err)
	}
}
