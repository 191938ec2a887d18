package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/moonforge/moonforge/engine/bus"
	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/registry"
)

// load keeps clients sending echoes and records every outcome.
type load struct {
	e        *env
	stop     chan struct{}
	wg       sync.WaitGroup
	ok       atomic.Int64
	mu       sync.Mutex
	codes    map[protocol.Code]int
	other    []error
	lastFail time.Time
}

func startLoad(e *env, clients []*client.Client) *load {
	l := &load{e: e, stop: make(chan struct{}), codes: map[protocol.Code]int{}}
	for i, c := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := int64(i*1000000 + 1); ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now()
				err := e.echo(c, n)
				switch code := codeOf(err); {
				case err == nil:
					l.ok.Add(1)
				case code == protocol.Unavailable || code == protocol.Timeout:
					l.mu.Lock()
					l.codes[code]++
					l.lastFail = time.Now()
					l.mu.Unlock()
					time.Sleep(50 * time.Millisecond)
				default:
					l.mu.Lock()
					l.other = append(l.other, fmt.Errorf("after %s: %w", time.Since(start), err))
					l.mu.Unlock()
					return
				}
			}
		}()
	}
	return l
}

func (l *load) finish() (ok int64, codes map[protocol.Code]int, other []error) {
	close(l.stop)
	l.wg.Wait()
	return l.ok.Load(), l.codes, l.other
}

// waitProgress waits until n more echoes succeeded.
func (l *load) waitProgress(t *testing.T, n int64) {
	t.Helper()
	start := l.ok.Load()
	end := time.Now().Add(20 * time.Second)
	for l.ok.Load() < start+n {
		if time.Now().After(end) {
			t.Fatalf("load made no progress: %d echoes in 20s", l.ok.Load()-start)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// One cluster, in order: requests through both proxies to both lobbies; status and reload;
// a duplicate login across proxies; kill -9 of a lobby under load; a drained lobby under load.
func TestCluster(t *testing.T) {
	e := newEnv(t)
	e.start("proxy-1", "proxy")
	e.start("proxy-2", "proxy")
	e.start("lobby-1", "lobby")
	e.start("lobby-2", "lobby")
	e.start("game-1", "game")
	e.start("login-1", "login")
	status := e.waitNodes("master-1", "proxy-1", "proxy-2", "login-1", "lobby-1", "lobby-2", "game-1")
	if !strings.Contains(status, "VERSION") {
		t.Fatalf("status:\n%s", status)
	}

	t.Run("requests through both proxies", func(t *testing.T) {
		for _, p := range []string{"proxy-1", "proxy-2"} {
			c, _ := e.dial(p, "dev-"+p)
			for i := range 20 {
				if err := e.echo(c, int64(i+1)); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
			}
		}
	})

	t.Run("cluster reload", func(t *testing.T) {
		out, err := e.moonforge("cluster", "reload", "-nats", e.url)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, id := range []string{"proxy-1", "lobby-2", "game-1", "master-1"} {
			if !strings.Contains(out, id+": unchanged: version ") {
				t.Fatalf("reload output lacks %s:\n%s", id, out)
			}
		}
		if out, err := e.moonforge("cluster", "status", "-nats", "nats://127.0.0.1:1"); err == nil {
			t.Fatalf("status against no bus succeeded:\n%s", out)
		}
		if out, err := e.moonforge("cluster", "frobnicate"); err == nil || !strings.Contains(out, "unknown cluster subcommand") {
			t.Fatalf("unknown subcommand: %v\n%s", err, out)
		}
	})

	t.Run("a node with wrong credentials is refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, built.moonforge, "node", "-role", "lobby", "-id", "intruder", "-nats", e.url,
			"-data", filepath.Join(e.dir, "intruder"), "-lua", filepath.Join(e.dir, "lua"), "-proto", filepath.Join(e.dir, "proto"), "-admin", "-")
		cmd.Env = append(os.Environ(), "MOONFORGE_NATS_PASSWORD=wrong")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(strings.ToLower(string(out)), "authorization") {
			t.Fatalf("want a refused start naming the authorization, got %v:\n%s", err, out)
		}
	})

	t.Run("duplicate login across proxies", func(t *testing.T) {
		first, _ := e.dial("proxy-1", "twice")
		e.dial("proxy-2", "twice")
		select {
		case <-first.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the first session was not kicked")
		}
		if k := first.Kicked(); k == nil || protocol.Code(k.Code) != protocol.KickedDuplicateLogin {
			t.Fatalf("kick %v, want KICKED_DUPLICATE_LOGIN", k)
		}
	})

	t.Run("kill -9 of a lobby under load", func(t *testing.T) {
		var clients []*client.Client
		for i := range 16 {
			c, _ := e.dial([]string{"proxy-1", "proxy-2"}[i%2], fmt.Sprintf("load-%d", i))
			clients = append(clients, c)
		}
		l := startLoad(e, clients)
		l.waitProgress(t, 200)
		killed := time.Now()
		e.kill9("lobby-1")
		time.Sleep(500 * time.Millisecond)
		l.waitProgress(t, 500)
		// Every client is served again: wait for a quiet second without failures.
		end := time.Now().Add(20 * time.Second)
		for {
			l.mu.Lock()
			quiet := time.Since(l.lastFail) > time.Second
			recovered := l.lastFail.Sub(killed)
			l.mu.Unlock()
			if quiet {
				t.Logf("last failure %s after the kill", recovered.Round(time.Millisecond))
				break
			}
			if time.Now().After(end) {
				t.Fatal("requests kept failing 20s after the kill")
			}
			time.Sleep(100 * time.Millisecond)
		}
		ok, codes, other := l.finish()
		t.Logf("echoes ok %d, failed %v", ok, codes)
		if len(other) > 0 {
			t.Fatalf("requests failed otherwise than UNAVAILABLE or TIMEOUT: %v", other)
		}
		// Every client still works (its player moved to lobby-2).
		for i, c := range clients {
			if err := e.echo(c, int64(i+1)); err != nil {
				t.Fatalf("client %d after the kill: %v", i, err)
			}
		}
	})

	t.Run("a proxy dies: its client logs in again on another with its token", func(t *testing.T) {
		e.start("proxy-3", "proxy")
		e.waitNodes("proxy-3")
		_, ack := e.dial("proxy-3", "token-player")
		e.kill9("proxy-3")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, client.Config{Addr: e.nodes["proxy-2"].tcp})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		again, err := c.Login(ctx, "token", "", ack.Token, nil)
		if err != nil || again.PlayerId != ack.PlayerId {
			t.Fatalf("token login on another proxy: %v %v, want player %s", again, err, ack.PlayerId)
		}
		if err := e.echo(c, 5); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("drain of a lobby under load fails no request", func(t *testing.T) {
		e.start("lobby-3", "lobby")
		e.waitNodes("lobby-3")
		var clients []*client.Client
		for i := range 8 {
			c, _ := e.dial([]string{"proxy-1", "proxy-2"}[i%2], fmt.Sprintf("drain-%d", i))
			clients = append(clients, c)
		}
		l := startLoad(e, clients)
		l.waitProgress(t, 200)
		out, err := e.moonforge("cluster", "drain", "-nats", e.url, "lobby-2")
		if err != nil {
			t.Fatalf("drain: %v\n%s", err, out)
		}
		select {
		case <-e.nodes["lobby-2"].done:
		case <-time.After(30 * time.Second):
			t.Fatal("the drained lobby did not exit")
		}
		if err := e.nodes["lobby-2"].err; err != nil {
			t.Fatalf("drained lobby exited with %v", err)
		}
		l.waitProgress(t, 200)
		ok, codes, other := l.finish()
		t.Logf("echoes ok %d, failed %v", ok, codes)
		if len(codes) > 0 || len(other) > 0 {
			t.Fatalf("requests failed during the drain: %v %v", codes, other)
		}
	})
}

// call sends CallReq and returns CallAck's n and role.
func (e *env) call(c *client.Client, target, name, via string, n int64) (int64, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, payload, err := e.msgs.Encode("CallReq", fmt.Sprintf(`{"target": %q, "name": %q, "via": %q, "n": "%d"}`, target, name, via, n))
	if err != nil {
		return 0, "", err
	}
	f, err := c.Request(ctx, id, payload)
	if err != nil {
		return 0, "", err
	}
	m, err := e.msgs.Message(f.MsgID, f.Payload)
	if err != nil {
		return 0, "", err
	}
	fields := m.Descriptor().Fields()
	return m.Get(fields.ByName("n")).Int(), m.Get(fields.ByName("role")).String(), nil
}

// mf.call from a lobby to the game role, direct and through the master; a served function on the
// game node that itself calls a third node (micro) and returns its answer; UNAVAILABLE at once
// when no game node lives.
func TestCalls(t *testing.T) {
	e := newEnv(t)
	e.start("proxy-1", "proxy")
	e.start("lobby-1", "lobby")
	e.start("game-1", "game")
	e.start("micro-1", "micro")
	e.waitNodes("proxy-1", "lobby-1", "game-1", "micro-1")
	c, _ := e.dial("proxy-1", "caller")
	for _, via := range []string{"", "master"} {
		n, role, err := e.call(c, "game", "relay", via, 5)
		if err != nil || n != 16 || role != "game>micro" {
			t.Fatalf("mf.call of a served function that waits, via %q: %d %q %v", via, n, role, err)
		}
	}
	for _, via := range []string{"", "master"} {
		n, role, err := e.call(c, "game", "double", via, 21)
		if err != nil || n != 42 || role != "game" {
			t.Fatalf("mf.call via %q: %d %q %v", via, n, role, err)
		}
	}
	if n, _, err := e.call(c, "game-1", "double", "", 5); err != nil || n != 10 {
		t.Fatalf("mf.call to a node id: %d %v", n, err)
	}
	if _, _, err := e.call(c, "game", "nothing", "", 1); codeOf(err) != protocol.Unavailable {
		t.Fatalf("a name nobody serves: %v, want UNAVAILABLE", err)
	}
	e.kill9("game-1")
	start := time.Now()
	_, _, err := e.call(c, "game-1", "double", "", 1)
	if codeOf(err) != protocol.Unavailable {
		t.Fatalf("a dead node: %v, want UNAVAILABLE", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("UNAVAILABLE took %s: it should come at once, not at the 2s timeout", took)
	}
}

// A player's session ends on a proxy (a second login replaces it): the game role's
// mf.on_session_end hook runs on the game node, carried over the bus.
func TestSessionEndReachesAnotherNode(t *testing.T) {
	e := newEnv(t)
	e.start("proxy-1", "proxy")
	e.start("lobby-1", "lobby")
	e.start("game-1", "game")
	e.waitNodes("proxy-1", "lobby-1", "game-1")
	e.dial("proxy-1", "replaced-player")
	c, _ := e.dial("proxy-1", "replaced-player") // the same guest: the first session is replaced
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		n, reason, err := e.call(c, "game", "session_ends", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if n >= 1 {
			if reason != "replaced" {
				t.Fatalf("the hook saw reason %q, want replaced", reason)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the game node's mf.on_session_end never ran")
		}
	}
}

// Three masters form the NATS cluster (routes, registry replicated 3 times); kill -9 of one:
// every node reconnects to another and the cluster keeps serving.
func TestThreeMasters(t *testing.T) {
	e := newEnvWithout(t)
	var client, route []string
	for range 3 {
		client = append(client, freePort(t))
		route = append(route, freePort(t))
	}
	for i := range 3 {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, "nats://"+route[j])
			}
		}
		cfg := fmt.Sprintf("%s\n    listen: %s\n    cluster_listen: %s\n    routes: [%s]\n    replicas: 3\n", testConfig, client[i], route[i], strings.Join(routes, ", "))
		path := filepath.Join(e.dir, fmt.Sprintf("master-%d.yaml", i+1))
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		e.startAsync(fmt.Sprintf("master-%d", i+1), "master", "-c", path)
	}
	for i := range 3 {
		e.waitReady(fmt.Sprintf("master-%d", i+1))
	}
	var urls []string
	for _, c := range client {
		urls = append(urls, "nats://"+c)
	}
	e.url = strings.Join(urls, ",")
	e.start("proxy-1", "proxy")
	e.start("lobby-1", "lobby")
	e.waitNodes("master-1", "master-2", "master-3", "proxy-1", "lobby-1")
	c, _ := e.dial("proxy-1", "three")
	if err := e.echo(c, 1); err != nil {
		t.Fatal(err)
	}
	// The proxy and the lobby (replicas 1 in their config) left the masters' buckets replicated.
	nc, err := nats.Connect(e.url, nats.UserInfo("mf", "cluster-test-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{registry.NodesBucket, registry.SessionsBucket, registry.RoomsBucket, registry.PlacementsBucket} {
		if si, err := js.StreamInfo("KV_" + b); err != nil || si.Config.Replicas != 3 {
			t.Fatalf("bucket %s after the other nodes joined: %v %+v", b, err, si)
		}
	}
	e.kill9("master-1")
	end := time.Now().Add(30 * time.Second)
	for n := int64(2); ; n++ {
		err := e.echo(c, n)
		if err == nil && n > 20 {
			break
		}
		if err != nil && time.Now().After(end) {
			t.Fatalf("the cluster did not recover after a master died: %v", err)
		}
		if err != nil {
			time.Sleep(200 * time.Millisecond)
		}
	}
	// The registry's streams that master-1 led elect new leaders first (Raft; slower on a loaded
	// machine).
	e.url = strings.Join(urls[1:], ",")
	e.waitNodesFor(60*time.Second, "master-2", "master-3", "proxy-1", "lobby-1")
}

// Bad input on the bus: an envelope that does not decode, names an unknown msg id or is past its
// deadline is answered with its code; a one-way one is dropped; the node keeps serving.
func TestBadEnvelopes(t *testing.T) {
	e := newEnv(t)
	e.start("proxy-1", "proxy")
	e.start("lobby-1", "lobby")
	e.waitNodes("proxy-1", "lobby-1")
	nc, err := nats.Connect(e.url, nats.UserInfo("mf", "cluster-test-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ask := func(data []byte) protocol.Code {
		t.Helper()
		m, err := nc.Request(bus.NodeSubject("lobby-1"), data, 5*time.Second)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		a, err := bus.Decode(m.Data)
		if err != nil {
			t.Fatalf("the answer does not decode: %v", err)
		}
		if a.Err() == nil {
			return 0
		}
		return a.Err().Code
	}
	req := func(msgID uint32, deadline time.Time) []byte {
		env := &bus.Envelope{Kind: bus.Kind_KIND_REQUEST, Source: "tester", MsgId: msgID, RequestId: 1, ReplyBox: 1, Player: "p"}
		env.SetDeadline(deadline)
		return bus.Encode(env)
	}
	for _, c := range []struct {
		name string
		data []byte
		want protocol.Code
	}{
		{"garbage", []byte{0xff, 0xff, 0xff}, protocol.DecodeFailed},
		{"unknown kind", append(bus.Encode(&bus.Envelope{Kind: bus.Kind_KIND_REQUEST})[:2], 0x10, 0x63), protocol.BadRequest},
		{"unknown msg id", req(65000, time.Now().Add(time.Second)), protocol.UnknownMessage},
		{"past its deadline", req(1001, time.Now().Add(-time.Second)), protocol.Timeout},
	} {
		if got := ask(c.data); got != c.want {
			t.Errorf("%s: answered %v, want %v", c.name, got, c.want)
		}
	}
	if err := nc.Publish(bus.NodeSubject("lobby-1"), []byte{0xff}); err != nil { // one-way: dropped
		t.Fatal(err)
	}
	c, _ := e.dial("proxy-1", "after-bad-input")
	if err := e.echo(c, 7); err != nil {
		t.Fatalf("the node stopped serving after bad input: %v", err)
	}
	// Kinds: an envelope refused (garbage, unknown kind, the one-way garbage), an unknown msg id,
	// a request past its deadline.
	if n := strings.Count(e.nodes["lobby-1"].logText(), "refused a message from the bus"); n != 3 {
		t.Errorf("logged %d refusals, want one per kind (3)", n)
	}
}

// The cluster commands' failure paths: a clear message and a non-zero exit, never a panic.
func TestCommandFailures(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("nodes:\n  - {id: a, role: lobby}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	typo := filepath.Join(dir, "typo.yaml")
	if err := os.WriteFile(typo, []byte("nodez: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		say  string
	}{
		{[]string{"node"}, 2, "node needs -role"},
		{[]string{"node", "-role", "lobby", "extra"}, 2, "takes no arguments"},
		{[]string{"node", "-role", "proxy,lobyy", "-lua", filepath.Join(built.root, "lua")}, 1, `unknown role "lobyy"`},
		{[]string{"node", "-role", "lobby", "-id", "bad.id", "-lua", dir, "-proto", dir}, 1, "cluster.node_id"},
		{[]string{"node", "-role", "lobby", "-nats", "nats://127.0.0.1:1", "-data", filepath.Join(dir, "d"), "-lua", filepath.Join(built.root, "lua"), "-proto", filepath.Join(built.root, "proto")}, 1, "nats://127.0.0.1:1"},
		{[]string{"cluster"}, 2, "needs a subcommand"},
		{[]string{"cluster", "frobnicate"}, 2, "unknown cluster subcommand"},
		{[]string{"cluster", "up", "-f", filepath.Join(dir, "missing.yaml")}, 1, "missing.yaml"},
		{[]string{"cluster", "up", "-f", bad}, 1, "exactly one node of role master"},
		{[]string{"cluster", "up", "-f", typo}, 1, "nodez"},
		{[]string{"cluster", "status", "-nats", "nats://127.0.0.1:1"}, 1, "127.0.0.1:1"},
		{[]string{"cluster", "drain", "-nats", "nats://127.0.0.1:1"}, 2, "ids of the nodes"},
		{[]string{"cluster", "status", "-bogus"}, 2, "flag provided but not defined"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, built.moonforge, c.args...).CombinedOutput()
		cancel()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != c.code || !strings.Contains(string(out), c.say) || strings.Contains(string(out), "panic") {
			t.Errorf("moonforge %s: exit %d, want %d with %q:\n%s", strings.Join(c.args, " "), code, c.code, c.say, out)
		}
	}
}
