package failovertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

// waitUntil polls cond every 50 ms and fails the test when it does not hold
// within a minute (a loaded machine is slow).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
	}
}

// info returns the field of INFO section on the server at addr, "" when it
// does not answer.
func info(addr, section, field string) string {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer c.Close()
	text, _ := c.Info(context.Background(), section).Result()
	for _, line := range strings.Split(text, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}

// TestSentinelFailover kills (SIGKILL) the master of a Sentinel setup (a
// master, two replicas, three Sentinels) while stores write through Sentinel,
// one with WaitReplicas 1 and one without. Both reconnect to the promoted
// replica by themselves and their writes resume; no batch is applied in
// part; with WaitReplicas no acknowledged write is lost, and a lease taken
// over before the failover still fences its old owner after it. Without
// WaitReplicas, acknowledged writes not yet replicated when the master died
// are lost (asynchronous replication): the test reports how many.
func TestSentinelFailover(t *testing.T) {
	ctx := t.Context()
	master := storetest.StartRedis(t, append(storetest.DurableRedis, storetest.FastReplication...)...)
	host, port, _ := strings.Cut(master.Addr, ":")
	// Two replicas: after the failover, the promoted one still has a
	// replica to wait for.
	for range 2 {
		r := storetest.StartRedis(t, append(storetest.DurableRedis, append(storetest.FastReplication, "--replicaof", host, port)...)...)
		waitUntil(t, "a replica's first sync", func() bool { return info(r.Addr, "replication", "master_link_status") == "up" })
	}
	const name = "mf"
	var sentinels []string
	for range 3 {
		sentinels = append(sentinels, storetest.StartSentinel(t, master.Addr, name, 2, time.Second).Addr)
	}
	for _, addr := range sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
		defer sc.Close()
		waitUntil(t, "sentinel "+addr+" knows the replicas and the other sentinels", func() bool {
			m, err := sc.Master(ctx, name).Result()
			return err == nil && m["num-slaves"] == "2" && m["num-other-sentinels"] == "2"
		})
	}
	cfg := store.RedisConfig{Addrs: sentinels, MasterName: name, DialTimeout: 500 * time.Millisecond, ReadTimeout: time.Second}
	cfg.Prefix = "async:"
	async := openRedis(t, cfg)
	cfg.Prefix, cfg.WaitReplicas, cfg.WaitTimeout = "wait:", 1, 500*time.Millisecond
	waiting := openRedis(t, cfg)
	if async.Capabilities().Durable || !waiting.Capabilities().Durable {
		t.Fatalf("Durable through Sentinel: %v without WaitReplicas (want false), %v with (want true)",
			async.Capabilities().Durable, waiting.Capabilities().Durable)
	}

	// A lease taken over before the failover: node-a's token is stale.
	leaseKey := store.PlayerKey("leased", "lease")
	old, err := store.Acquire(ctx, waiting, leaseKey, "node-a", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	owner, err := store.Acquire(ctx, waiting, leaseKey, "node-b", time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	players := make([]string, 4)
	for i := range players {
		players[i] = fmt.Sprint("p", i)
	}
	loads := map[string]*storetest.WriteLoad{"async": pairLoad(async, players), "wait": pairLoad(waiting, players)}
	for _, l := range loads {
		l.WaitAcked(t, 5)
	}
	master.Kill() // kill -9 in the middle of the writes
	killed := time.Now()
	for _, l := range loads {
		l.WaitAcked(t, 5) // resumed on the promoted replica
	}
	resumed := time.Since(killed)
	for _, l := range loads {
		l.Stop()
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinels[0]})
	defer sc.Close()
	if addr, err := sc.GetMasterAddrByName(ctx, name).Result(); err != nil || addr[0]+":"+addr[1] == master.Addr || info(addr[0]+":"+addr[1], "replication", "role") != "master" {
		t.Fatalf("the master after the failover: %v, %v", addr, err)
	}
	if lost := checkPairs(t, waiting, players, loads["wait"]); sum(lost) != 0 {
		t.Errorf("with WaitReplicas 1, acknowledged writes lost per player: %v", lost)
	}
	lostAsync := checkPairs(t, async, players, loads["async"])
	t.Logf("writes resumed %v after the kill; failed writes: %d with WaitReplicas, %d without; acknowledged writes lost without WaitReplicas: %d",
		resumed.Round(time.Millisecond), loads["wait"].Failed(), loads["async"].Failed(), sum(lostAsync))

	// Fencing holds across the failover.
	put := []store.Op{{Key: store.PlayerKey("leased", "data"), Value: []byte("x")}}
	if err := old.Batch(ctx, put); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("a write with the stale token after the failover: %v, want ErrLeaseLost", err)
	}
	if err := old.Renew(ctx); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("renewing the stale lease after the failover: %v, want ErrLeaseLost", err)
	}
	if err := owner.Batch(ctx, put); err != nil {
		t.Errorf("the owner's write after the failover: %v", err)
	}
	if _, err := store.Acquire(ctx, waiting, leaseKey, "node-a", time.Minute); !errors.Is(err, store.ErrLeaseHeld) {
		t.Errorf("node-a acquiring the lease node-b holds, after the failover: %v, want ErrLeaseHeld", err)
	}
}
