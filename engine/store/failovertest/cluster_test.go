package failovertest

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

// clusterNode is one node of a test's Redis Cluster, with a client of its
// own (not the store's) for the test's checks.
type clusterNode struct {
	srv *storetest.Server
	c   *redis.Client
	id  string
}

func clusterNodes(t *testing.T, servers []*storetest.Server) []clusterNode {
	t.Helper()
	nodes := make([]clusterNode, len(servers))
	for i, srv := range servers {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { _ = c.Close() })
		id, err := c.ClusterMyID(t.Context()).Result()
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = clusterNode{srv: srv, c: c, id: id}
	}
	return nodes
}

// playersInSlots returns n player ids whose group's hash slot is below
// slots, as the server computes it.
func playersInSlots(t *testing.T, c *redis.Client, n int, slots int64) []string {
	t.Helper()
	var out []string
	for i := 0; len(out) < n; i++ {
		if i > 100000 {
			t.Fatal("no player ids in the slots")
		}
		id := fmt.Sprint("r", i)
		slot, err := c.ClusterKeySlot(t.Context(), store.PlayerKey(id, "a")).Result()
		if err != nil {
			t.Fatal(err)
		}
		if slot < slots {
			out = append(out, id)
		}
	}
	return out
}

// errorCount returns how many error replies of kind (MOVED, ASK, TRYAGAIN)
// the node sent, from INFO errorstats.
func errorCount(t *testing.T, n clusterNode, kind string) int {
	text, err := n.c.Info(t.Context(), "errorstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(text, "\r\n") {
		if v, ok := strings.CutPrefix(line, "errorstat_"+kind+":count="); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// TestClusterReshardUnderLoad moves slots between the masters of a Redis
// Cluster with redis-cli --cluster reshard, twice (the first master's
// lowest 300 slots to the second, then to the third), while players whose
// groups are in those slots write two keys per batch through two stores,
// with and without WaitReplicas (each master has a replica).
// Then one player's slot is moved back to the first by hand and held half
// migrated (its keys moved) while the writes go on. go-redis follows the
// MOVED and ASK redirections (and retries TRYAGAIN) by itself, and the
// store with WaitReplicas follows them itself: the writes go on, no batch
// is applied in part, nothing acknowledged is lost, and the players' keys
// end where their slots are.
func TestClusterReshardUnderLoad(t *testing.T) {
	ctx := t.Context()
	const moved = 300
	all := clusterNodes(t, storetest.StartRedisCluster(t, 3, 1, 5*time.Second, append(storetest.DurableRedis, storetest.FastReplication...)...))
	nodes := all[:3] // the masters
	var addrs []string
	for _, n := range all {
		addrs = append(addrs, n.srv.Addr)
	}
	cfg := store.RedisConfig{Addrs: addrs, Cluster: true, Prefix: "async:", ReadTimeout: time.Second}
	stores := map[string]store.Store{"async:": storetest.OpenRedis(t, cfg)}
	cfg.Prefix, cfg.WaitReplicas, cfg.WaitTimeout = "wait:", 1, 500*time.Millisecond
	stores["wait:"] = storetest.OpenRedis(t, cfg)
	players := playersInSlots(t, nodes[0].c, 6, moved)
	loads := map[string]*storetest.WriteLoad{}
	for prefix, s := range stores {
		loads[prefix] = pairLoad(s, players)
	}
	waitAcked := func() {
		for _, l := range loads {
			l.WaitAcked(t, 5, time.Minute)
		}
	}
	waitAcked()
	for _, hop := range [][2]int{{0, 1}, {1, 2}} {
		from, to := nodes[hop[0]], nodes[hop[1]]
		cmd := exec.Command("redis-cli", "--cluster", "reshard", from.srv.Addr, "--cluster-from", from.id, "--cluster-to", to.id,
			"--cluster-slots", fmt.Sprint(moved), "--cluster-yes", "--cluster-pipeline", "1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("redis-cli --cluster reshard %d→%d: %v\n%s", hop[0], hop[1], err, out)
		}
		waitAcked() // through the new owner
	}
	// A slot held half migrated, by hand: the writes of its player are
	// redirected with ASK to the importing master meanwhile.
	slot, err := nodes[2].c.ClusterKeySlot(ctx, store.PlayerKey(players[0], "a")).Result()
	if err != nil {
		t.Fatal(err)
	}
	from, to := nodes[2], nodes[0]
	host, port, _ := strings.Cut(to.srv.Addr, ":")
	for _, step := range []func() error{
		func() error { return to.c.Do(ctx, "cluster", "setslot", slot, "importing", from.id).Err() },
		func() error { return from.c.Do(ctx, "cluster", "setslot", slot, "migrating", to.id).Err() },
		func() error {
			keys, err := from.c.ClusterGetKeysInSlot(ctx, int(slot), 100).Result()
			if err != nil || len(keys) == 0 {
				return fmt.Errorf("keys in slot %d: %v, %v", slot, keys, err)
			}
			args := []any{"migrate", host, port, "", 0, 5000, "keys"}
			for _, k := range keys {
				args = append(args, k)
			}
			return from.c.Do(ctx, args...).Err()
		},
		func() error { waitAcked(); return nil }, // through ASK
		func() error { return to.c.Do(ctx, "cluster", "setslot", slot, "node", to.id).Err() },
		func() error { return from.c.Do(ctx, "cluster", "setslot", slot, "node", to.id).Err() },
		func() error { waitAcked(); return nil },
	} {
		if err := step(); err != nil {
			t.Fatalf("moving slot %d by hand: %v", slot, err)
		}
	}
	for prefix, l := range loads {
		l.Stop()
		if lost := checkPairs(t, stores[prefix], players, l); sum(lost) != 0 {
			t.Errorf("store %s: acknowledged writes lost per player: %v", prefix, lost)
		}
	}
	for i, p := range players {
		owner := nodes[2]
		if i == 0 {
			owner = nodes[0]
		}
		for _, key := range []string{"async:k:" + store.PlayerKey(p, "a"), "wait:k:" + store.PlayerKey(p, "b")} {
			if n, err := owner.c.Exists(ctx, key).Result(); err != nil || n != 1 {
				t.Errorf("player %s's key %s is not on its master after the moves: %v, %v", p, key, n, err)
			}
		}
	}
	redirects := map[string]int{}
	for _, n := range nodes {
		for _, kind := range []string{"MOVED", "ASK", "TRYAGAIN"} {
			redirects[kind] += errorCount(t, n, kind)
		}
	}
	if redirects["MOVED"] == 0 || redirects["ASK"] == 0 {
		t.Errorf("the masters sent %v: the test did not move the slots under the store", redirects)
	}
	t.Logf("writes failed (each as unavailable): %d without WaitReplicas, %d with; the masters sent %v", loads["async:"].Failed(), loads["wait:"].Failed(), redirects)
}

// TestClusterFailover kills (SIGKILL) a master of a Redis Cluster of three
// masters with two replicas each while two stores write to players of that
// master's slots: one with WaitReplicas 1, one without. A replica is
// promoted and the writes of both go on by themselves; no batch is applied
// in part; with WaitReplicas no acknowledged write is lost, and a lease
// taken over before the failover still fences its old owner after it.
// Without WaitReplicas a write acknowledged but not yet replicated may be
// lost (the test reports how many were).
func TestClusterFailover(t *testing.T) {
	ctx := t.Context()
	servers := storetest.StartRedisCluster(t, 3, 2, time.Second, append(storetest.DurableRedis, storetest.FastReplication...)...)
	var addrs []string
	for _, srv := range servers {
		addrs = append(addrs, srv.Addr)
	}
	cfg := store.RedisConfig{Addrs: addrs, Cluster: true, Prefix: "async:", DialTimeout: 500 * time.Millisecond, ReadTimeout: time.Second}
	async := storetest.OpenRedis(t, cfg)
	cfg.Prefix, cfg.WaitReplicas, cfg.WaitTimeout = "wait:", 1, 500*time.Millisecond
	waiting := storetest.OpenRedis(t, cfg)
	if async.Capabilities().Durable || !waiting.Capabilities().Durable {
		t.Fatalf("Durable on a Cluster with replicas: %v without WaitReplicas (want false), %v with (want true)",
			async.Capabilities().Durable, waiting.Capabilities().Durable)
	}

	// The players, and a lease, all on the master of the first player.
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer rc.Close()
	masterOf := func(player string) string {
		m, err := rc.MasterForKey(ctx, store.PlayerKey(player, "a"))
		if err != nil {
			t.Fatal(err)
		}
		return m.Options().Addr
	}
	victim := masterOf("f0")
	var players []string
	for i := 0; len(players) < 5; i++ {
		if id := fmt.Sprint("f", i); masterOf(id) == victim {
			players = append(players, id)
		}
	}
	failover{
		async: async, waiting: waiting, players: players[:4], leased: players[4],
		kill: func() {
			for _, srv := range servers {
				if srv.Addr == victim {
					srv.Kill()
				}
			}
		},
		promoted: func() {
			rc.ReloadState(ctx)
			waitUntil(t, "the Cluster's new master for the players", func() bool {
				m, err := rc.MasterForKey(ctx, store.PlayerKey(players[0], "a"))
				return err == nil && m.Options().Addr != victim
			})
		},
		// Well before go-redis would reload the slots' masters by itself
		// (every minute).
		within: 30 * time.Second,
	}.run(t)
}
