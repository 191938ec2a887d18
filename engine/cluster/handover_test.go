package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/bus"
	"github.com/moonforge/moonforge/engine/registry"
)

// A push a sender made while the session directory named the old proxy, still on its way through
// it when the session moves, reaches the client before a push the sender makes afterwards: the
// sender's first push after the move goes through the old proxy (pushTo), which forwards it behind
// the earlier one.
func TestPushAfterAMoveKeepsTheSendersOrder(t *testing.T) {
	ctx := context.Background()
	reg, start := fabric(t)
	// The old proxy no longer holds the session: it forwards, slowly.
	old := start("proxy-a", "proxy", func(string, uint16, []byte) bool { time.Sleep(200 * time.Millisecond); return false })
	old.moved.Store("p1", &moved{proxy: "proxy-b"})
	var mu sync.Mutex
	var got []string
	start("proxy-b", "proxy", func(_ string, _ uint16, payload []byte) bool {
		mu.Lock()
		got = append(got, string(payload))
		mu.Unlock()
		return true
	})
	sender := start("lobby-1", "lobby", nil)
	players := sender.Players(noPlayers{})
	waitEntry := func(proxy string) { waitSession(t, sender, proxy) }
	a, b := registry.Session{Proxy: "proxy-a", Session: "s1"}, registry.Session{Proxy: "proxy-b", Session: "s1"}
	if _, _, err := reg.ClaimSession(ctx, "p1", a); err != nil {
		t.Fatal(err)
	}
	waitEntry("proxy-a")
	if !players.Push("p1", 1, []byte("first")) {
		t.Fatal("first push refused")
	}
	if err := reg.MoveSession(ctx, "p1", a, b); err != nil {
		t.Fatal(err)
	}
	waitEntry("proxy-b")
	if !players.Push("p1", 1, []byte("second")) || !players.Push("p1", 1, []byte("third")) {
		t.Fatal("push refused after the move")
	}
	waitGot(t, &mu, &got, "[first second third]")
}

// A push a sender makes after a login on another proxy replaced the player's session goes to the
// new session, not to the old one still on the first proxy.
func TestPushAfterAReplacingLoginGoesToTheNewSession(t *testing.T) {
	ctx := context.Background()
	reg, start := fabric(t)
	var mu sync.Mutex
	var got []string
	record := func(proxy string) func(string, uint16, []byte) bool {
		return func(_ string, _ uint16, payload []byte) bool {
			mu.Lock()
			got = append(got, proxy+":"+string(payload))
			mu.Unlock()
			return true
		}
	}
	start("proxy-a", "proxy", record("a"))
	start("proxy-b", "proxy", record("b"))
	sender := start("lobby-1", "lobby", nil)
	players := sender.Players(noPlayers{})
	if _, _, err := reg.ClaimSession(ctx, "p1", registry.Session{Proxy: "proxy-a", Session: "s1"}); err != nil {
		t.Fatal(err)
	}
	waitSession(t, sender, "proxy-a")
	players.Push("p1", 1, []byte("first"))
	if _, _, err := reg.ClaimSession(ctx, "p1", registry.Session{Proxy: "proxy-b", Session: "s2"}); err != nil {
		t.Fatal(err)
	}
	waitSession(t, sender, "proxy-b")
	players.Push("p1", 1, []byte("second"))
	waitGot(t, &mu, &got, "[a:first b:second]")
}

// fabric starts an embedded bus and registry; start adds a member with a Push of its own.
func fabric(t *testing.T) (*registry.Registry, func(id, role string, push func(string, uint16, []byte) bool) *Cluster) {
	f, err := bus.Open(bus.Options{DataDir: t.TempDir(), MaxPayload: 1 << 20, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	reg, err := registry.Open(context.Background(), f.JS, registry.Config{Replicas: 1, NodeTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return reg, func(id, role string, push func(string, uint16, []byte) bool) *Cluster {
		c, err := New(Config{Node: id, Roles: []string{role}, Fabric: f, Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(Deps{Record: func() registry.Record { return registry.Record{} }, Push: push}, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Stop(time.Second) })
		return c
	}
}

// waitSession waits until c's view of the session directory puts p1 on proxy.
func waitSession(t *testing.T, c *Cluster, proxy string) {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	for s, _ := c.sessions.Of("p1"); s.Proxy != proxy; s, _ = c.sessions.Of("p1") {
		if time.Now().After(end) {
			t.Fatalf("%s never saw p1 on %s", c.cfg.Node, proxy)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitGot waits until *got, under mu, prints as want.
func waitGot(t *testing.T, mu *sync.Mutex, got *[]string, want string) {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		s := fmt.Sprint(*got)
		mu.Unlock()
		if s == want {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("pushes went to %s, want %s", s, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type noPlayers struct{}

func (noPlayers) Push(string, uint16, []byte) bool { return false }
func (noPlayers) PushAll(uint16, []byte) int       { return 0 }
