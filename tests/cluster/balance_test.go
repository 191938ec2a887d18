package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/registry"
)

// configFile writes a node's config file: the tests' config with more keys of its cluster section
// (a node started with -c path reads it instead of node.yaml).
func (e *env) configFile(name, cluster string) string {
	e.t.Helper()
	path := filepath.Join(e.dir, name)
	if err := os.WriteFile(path, []byte(testConfig+cluster), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// placement returns the node the placements bucket names for role and player ("" if none).
func (e *env) placement(role, player string) string {
	e.t.Helper()
	nc, err := nats.Connect(e.url, nats.UserInfo("mf", "cluster-test-secret"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, registry.PlacementsBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	entry, err := kv.Get(ctx, role+"/"+player)
	if err != nil {
		return ""
	}
	var p registry.Placement
	if err := json.Unmarshal(entry.Value(), &p); err != nil {
		e.t.Fatal(err)
	}
	return p.Node
}

// where asks the lobby that handles c for its node id.
func (e *env) where(c *client.Client) string {
	e.t.Helper()
	node, err := e.ask(c, "WhereReq", `{}`, "node")
	if err != nil {
		e.t.Fatalf("WhereReq: %v", err)
	}
	return node
}

// A player keeps its lobby node when its connection moves to another proxy, under round robin
// (each proxy's own turn would place it elsewhere): the placement is in the cluster's bucket.
// The players log in again (or resume) on proxy-2 in the reverse order, so that proxy-2's round
// robin alone would put each on the other lobby.
func TestLobbyAffinityAcrossProxies(t *testing.T) {
	e := newEnv(t)
	rr := e.configFile("rr.yaml", "  balance:\n    lobby: round_robin\n")
	e.start("proxy-1", "proxy", "-c", rr)
	e.start("proxy-2", "proxy", "-c", rr)
	e.start("login-1", "login") // one account store: a guest is the same player on both proxies
	e.start("lobby-1", "lobby")
	e.start("lobby-2", "lobby")
	e.waitNodes("proxy-1", "proxy-2", "login-1", "lobby-1", "lobby-2")

	devices := []string{"affine-1", "affine-2", "affine-3", "affine-4"}
	first := map[string]string{}
	var resumer *client.Client
	var resumerAck string
	var token string
	players := map[string]string{}
	for i, d := range devices {
		c, ack := e.dial("proxy-1", d)
		first[d] = e.where(c)
		players[d] = ack.PlayerId
		if i == 0 {
			resumer, resumerAck, token = c, ack.PlayerId, ack.Token
		}
	}
	if first[devices[0]] == first[devices[1]] {
		t.Fatalf("round robin put the first two players on one lobby: %v", first)
	}
	for _, d := range devices {
		waitFor(t, "the placement of "+d, func() bool { return e.placement("lobby", players[d]) == first[d] })
	}

	for i := len(devices) - 1; i >= 1; i-- { // a new login through proxy-2 replaces the session
		c, ack := e.dial("proxy-2", devices[i])
		if ack.PlayerId != players[devices[i]] {
			t.Fatalf("%s logged in as %s, then %s", devices[i], players[devices[i]], ack.PlayerId)
		}
		if got := e.where(c); got != first[devices[i]] {
			t.Errorf("%s: on %s through proxy-1, on %s through proxy-2", devices[i], first[devices[i]], got)
		}
	}
	_ = resumer.Close() // the first player's connection drops; it resumes through proxy-2
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := e.connect("proxy-2")
	if res, err := b.Resume(ctx, token, resumer.LastPushSeq()); err != nil || res.PlayerId != resumerAck {
		t.Fatalf("resume on proxy-2: %v %+v", err, res)
	}
	if got := e.where(b); got != first[devices[0]] {
		t.Errorf("%s: on %s through proxy-1, on %s after its resume through proxy-2", devices[0], first[devices[0]], got)
	}
}

// Logins through a proxy are spread over two lobby processes by the policy its config names:
// round robin and least load each put half of 200 players on each lobby, weighted round robin a
// quarter on lobby-1 (weight 1) and three quarters on lobby-2 (weight 3), each within 10% of its
// ideal count.
func TestBalancingPolicies(t *testing.T) {
	e := newEnv(t)
	e.start("proxy-rr", "proxy", "-c", e.configFile("rr.yaml", "  balance:\n    lobby: round_robin\n"))
	e.start("proxy-ll", "proxy", "-c", e.configFile("ll.yaml", "  balance:\n    lobby: least_load\n"))
	e.start("proxy-w", "proxy", "-c", e.configFile("w.yaml", "  balance:\n    lobby: weighted\n"))
	e.start("lobby-1", "lobby")
	e.start("lobby-2", "lobby", "-c", e.configFile("heavy.yaml", "  weight: 3\n"))
	e.waitNodes("proxy-rr", "proxy-ll", "proxy-w", "lobby-1", "lobby-2")

	const players, parallel = 200, 8
	for _, c := range []struct {
		proxy  string
		share1 int // lobby-1's ideal share of the players, in percent
	}{{"proxy-rr", 50}, {"proxy-ll", 50}, {"proxy-w", 25}} {
		var mu sync.Mutex
		count := map[string]int{}
		var wg sync.WaitGroup
		next := make(chan int)
		for range parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					node, err := e.placeOne(c.proxy, i)
					mu.Lock()
					if err != nil {
						count["error: "+err.Error()]++
					} else {
						count[node]++
					}
					mu.Unlock()
				}
			}()
		}
		for i := range players {
			next <- i
		}
		close(next)
		wg.Wait()
		t.Logf("%s: %v", c.proxy, count)
		if len(count) != 2 || count["lobby-1"]+count["lobby-2"] != players {
			t.Fatalf("%s placed %d players on %v, want the two lobbies", c.proxy, players, count)
		}
		for node, share := range map[string]int{"lobby-1": c.share1, "lobby-2": 100 - c.share1} {
			ideal := players * share / 100
			if n := count[node]; n < ideal-ideal/10 || n > ideal+ideal/10 {
				t.Errorf("%s placed %d of %d players on %s, want %d ± 10%%", c.proxy, n, players, node, ideal)
			}
		}
	}
}

// Least load counts the players that the placements bucket puts on each lobby, whichever proxy
// placed them: with players kept on lobby-1, placed through another proxy while it was the only
// lobby, the next logins through a least-load proxy go to lobby-2 until the two are even.
func TestLeastLoadCountsEveryProxysPlayers(t *testing.T) {
	e := newEnv(t)
	e.start("proxy-1", "proxy")
	e.start("proxy-ll", "proxy", "-c", e.configFile("ll.yaml", "  balance:\n    lobby: least_load\n"))
	e.start("lobby-1", "lobby")
	e.waitNodes("proxy-1", "proxy-ll", "lobby-1")
	const kept = 40
	for i := range kept {
		c, _ := e.dial("proxy-1", fmt.Sprintf("kept-on-lobby-1-%d", i)) // connected until the test ends
		if node, err := e.ask(c, "WhereReq", `{}`, "node"); node != "lobby-1" {
			t.Fatalf("player %d on %q (%v) with lobby-1 alone", i, node, err)
		}
	}
	e.start("lobby-2", "lobby")
	e.waitNodes("lobby-2")
	count := map[string]int{}
	for i := range kept {
		node, err := e.placeOne("proxy-ll", i)
		if err != nil {
			t.Fatal(err)
		}
		count[node]++
	}
	t.Logf("proxy-ll: %v", count)
	if count["lobby-2"] < kept*9/10 {
		t.Fatalf("least load put %v of %d new players on the lobbies, want at least %d on lobby-2, which had none", count, kept, kept*9/10)
	}
}

// placeOne logs a new guest in through proxy and returns the lobby node that handles it.
func (e *env) placeOne(proxy string, i int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Addr: e.nodes[proxy].tcp})
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.Login(ctx, "guest", fmt.Sprintf("%s-balanced-device-%d", proxy, i), "", nil); err != nil {
		return "", err
	}
	return e.ask(c, "WhereReq", `{}`, "node")
}
