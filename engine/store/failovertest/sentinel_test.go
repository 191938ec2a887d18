//go:build unix

package failovertest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

// sentinelSetup is a master, two replicas and three Sentinels (quorum 2,
// a master is down after 1 s without an answer), each server durable
// (appendfsync always). Two replicas: after a failover, the promoted one
// still has a replica to wait for.
type sentinelSetup struct {
	master    *storetest.Server
	replicas  []*storetest.Server
	sentinels []string
}

const masterName = "mf"

func startSentinelSetup(t *testing.T) *sentinelSetup {
	t.Helper()
	s := &sentinelSetup{master: storetest.StartRedis(t, append(storetest.DurableRedis, storetest.FastReplication...)...)}
	host, port, _ := strings.Cut(s.master.Addr, ":")
	for range 2 {
		r := storetest.StartRedis(t, append(storetest.DurableRedis, append(storetest.FastReplication, "--replicaof", host, port)...)...)
		waitUntil(t, "a replica's first sync", func() bool { return info(r.Addr, "replication", "master_link_status") == "up" })
		s.replicas = append(s.replicas, r)
	}
	for range 3 {
		s.sentinels = append(s.sentinels, storetest.StartSentinel(t, s.master.Addr, masterName, 2, time.Second).Addr)
	}
	for _, addr := range s.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
		defer sc.Close()
		waitUntil(t, "sentinel "+addr+" knows the replicas and the other sentinels", func() bool {
			m, err := sc.Master(t.Context(), masterName).Result()
			return err == nil && m["num-slaves"] == "2" && m["num-other-sentinels"] == "2"
		})
	}
	return s
}

// open opens a store through the Sentinels with the key prefix and
// WaitReplicas given.
func (s *sentinelSetup) open(t *testing.T, prefix string, waitReplicas int) *store.RedisStore {
	return storetest.OpenRedis(t, store.RedisConfig{Addrs: s.sentinels, MasterName: masterName, Prefix: prefix,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WaitReplicas: waitReplicas, WaitTimeout: 500 * time.Millisecond})
}

// promoted waits until the Sentinels name a master other than the first
// and it says it is a master.
func (s *sentinelSetup) promoted(t *testing.T) {
	t.Helper()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0]})
	defer sc.Close()
	waitUntil(t, "a replica promoted", func() bool {
		addr, err := sc.GetMasterAddrByName(t.Context(), masterName).Result()
		return err == nil && addr[0]+":"+addr[1] != s.master.Addr && info(addr[0]+":"+addr[1], "replication", "role") == "master"
	})
}

// TestSentinelFailover kills (SIGKILL) the master of a Sentinel setup
// while stores write through Sentinel, one with WaitReplicas 1 and one
// without. Both reconnect to the promoted replica by themselves and their
// writes resume; no batch is applied in part; with WaitReplicas no
// acknowledged write is lost, and a lease taken over before the failover
// still fences its old owner after it. Without WaitReplicas, acknowledged
// writes not yet replicated when the master died may be lost (on loopback
// the replicas are rarely behind: the test reports how many were).
func TestSentinelFailover(t *testing.T) {
	setup := startSentinelSetup(t)
	async := setup.open(t, "async:", 0)
	waiting := setup.open(t, "wait:", 1)
	if async.Capabilities().Durable || !waiting.Capabilities().Durable {
		t.Fatalf("Durable through Sentinel: %v without WaitReplicas (want false), %v with (want true)",
			async.Capabilities().Durable, waiting.Capabilities().Durable)
	}

	players := make([]string, 4)
	for i := range players {
		players[i] = fmt.Sprint("p", i)
	}
	failover{
		async: async, waiting: waiting, players: players, leased: "leased",
		kill:     setup.master.Kill,
		promoted: func() { setup.promoted(t) },
		within:   time.Minute,
	}.run(t)
}

// TestSentinelFailoverWindowOfLoss makes the window of loss of
// asynchronous replication certain: the replicas are frozen (SIGSTOP) and
// writes go on until the master holds some in its output buffers for them
// (what the kernel's socket buffers took may still reach them); then the
// master is killed and the replicas resumed. A store without WaitReplicas
// acknowledged writes that the promoted replica never received: they are
// lost. A store with WaitReplicas acknowledged none of its writes while the
// replicas were frozen (each failed with ErrUnavailable), so it lost none.
func TestSentinelFailoverWindowOfLoss(t *testing.T) {
	ctx := t.Context()
	setup := startSentinelSetup(t)
	async := setup.open(t, "async:", 0)
	waiting := setup.open(t, "wait:", 1)
	key := store.PlayerKey("p", "n")
	put := func(s store.Store, i int, pad []byte) error {
		return s.Batch(ctx, []store.Op{{Key: key, Value: []byte(fmt.Sprint(i))}, {Key: store.PlayerKey("p", "pad"), Value: pad}})
	}
	if err := put(waiting, 1, nil); err != nil {
		t.Fatal(err) // replicated
	}
	if err := put(async, 1, nil); err != nil {
		t.Fatal(err)
	}
	mc := redis.NewClient(&redis.Options{Addr: setup.master.Addr})
	defer mc.Close()
	waitUntil(t, "both replicas have the first writes", func() bool {
		return mc.Set(ctx, "mark", "1", 0).Err() == nil && mc.Wait(ctx, 2, time.Second).Val() == 2
	})
	for _, r := range setup.replicas {
		if err := r.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	resume := func() {
		for _, r := range setup.replicas {
			_ = r.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	if err := put(waiting, 2, nil); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a write with WaitReplicas while the replicas are frozen: %v, want ErrUnavailable", err)
	}
	pad := make([]byte, 512<<10)
	_, _ = rand.Read(pad) // incompressible, though nothing compresses it
	acked := 1
	for buffered(t, setup.master.Addr) < 1<<20 {
		if acked == 100 { // 50 MiB, below the replica output buffer's 64 MiB soft limit
			t.Fatal("the master's output buffers for its replicas stay empty")
		}
		if err := put(async, acked+1, pad); err != nil {
			t.Fatal(err)
		}
		acked++
	}
	setup.master.Kill()
	resume()
	setup.promoted(t)
	var got []byte
	var err error
	waitUntil(t, "a read through the promoted replica", func() bool {
		got, err = async.Get(ctx, key)
		return !errors.Is(err, store.ErrUnavailable)
	})
	stored, _ := strconv.Atoi(string(got))
	if err != nil || stored < 1 || stored >= acked {
		t.Fatalf("without WaitReplicas after the failover: %q (%v); acknowledged 1 before the freeze and up to %d during it, want a loss", got, err, acked)
	}
	if got, err := waiting.Get(ctx, key); err != nil || string(got) == "" {
		t.Fatalf("with WaitReplicas after the failover: %q, %v; want its acknowledged write", got, err)
	}
	t.Logf("without WaitReplicas: acknowledged %d writes, %d lost in the failover", acked, acked-stored)
}

// buffered returns the largest output buffer (bytes) that the master at
// addr holds for one of its replicas.
func buffered(t *testing.T, addr string) int {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	list, err := c.ClientList(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	most := 0
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, "flags=S") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "omem="); ok {
				n, _ := strconv.Atoi(v)
				most = max(most, n)
			}
		}
	}
	return most
}
